"""Serial (USB CDC / RS-232) barcode scanners through pyserial.

`serial.serial_for_url` makes `/dev/serial/by-id/...`, `/dev/ttyACM0`, `loop://` (tests) and
`spy://` (debugging) one code path. Framing (`LineFramer`) is separate from I/O, and the
reconnecting thread is the shared `hardware.reader.ReaderLoop`: unplugging the scanner never
stops the kiosk, the fault shows in status and the port is reopened until the scanner is back.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import serial

from kiosk.config import Config
from kiosk.errors import ConfigError, ScannerError
from kiosk.ports import Faults, Scan, Submit

from .reader import ReaderLoop

log = logging.getLogger(__name__)

MAX_CODE = 256  # longer runs without a terminator are cut off and become a not_recognised verdict
TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}


def terminator_bytes(name: str) -> bytes:
    """"CR", "LF", "CRLF" or one byte written "0x03" (the config schema checks the spelling)."""
    if name in TERMINATORS:
        return TERMINATORS[name]
    return bytes([int(name, 16)])


class LineFramer:
    """Bytes in, complete codes out. A run longer than `max_len` is cut: its first `max_len + 1`
    bytes come out once (so the credential parser rejects it with a reason) and the rest of it,
    up to the next terminator, is dropped rather than buffered."""

    def __init__(self, terminator: bytes, max_len: int = MAX_CODE):
        self.terminator = terminator
        self.max_len = max_len
        self._buffer = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        lines: list[bytes] = []
        while True:
            end = self._buffer.find(self.terminator)
            if end < 0:
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + len(self.terminator):]
            if self._discarding:
                self._discarding = False
            else:
                lines.append(line[:self.max_len + 1])
        if len(self._buffer) > self.max_len:
            if not self._discarding:
                lines.append(self._buffer[:self.max_len + 1])
                self._discarding = True
            # keep a possible first half of a two-byte terminator
            self._buffer = self._buffer[-(len(self.terminator) - 1):] if len(self.terminator) > 1 else b""
        return lines


@dataclass(frozen=True)
class SerialSettings:
    """The [serial] section, checked and converted once."""

    url: str
    baudrate: int
    terminator: bytes
    prefix: bytes  # stripped from the start of a code when present
    suffix: bytes
    reconnect_max_s: float
    reconnect_min_s: float = 0.5
    read_timeout_s: float = 0.1  # how often a quiet port's read returns, so stop() is seen

    @classmethod
    def from_config(cls, config: Config, *, url: str | None = None) -> "SerialSettings":
        """`url` replaces serial.url (`--simulate` reads loop://)."""
        section = config.serial
        url = url or section.url
        if not url:
            raise ConfigError(config.source, "serial.url",
                              "is empty; name the scanner's port, e.g. /dev/serial/by-id/...")
        return cls(url=url, baudrate=int(section.baudrate), terminator=terminator_bytes(section.terminator),
                   prefix=section.prefix.encode("utf-8"), suffix=section.suffix.encode("utf-8"),
                   reconnect_max_s=float(section.reconnect_max_s))


class SerialScanner:
    """A ScanSource reading codes from a serial port. It is also the `Device` its ReaderLoop reads:
    open/read/close are called on the loop's thread only."""

    name = "serial"

    def __init__(self, settings: SerialSettings, faults: Faults, *,
                 open_port: Callable[..., Any] = serial.serial_for_url):
        self.settings = settings
        self.open_port = open_port
        self.port: Any = None
        self._framer = LineFramer(settings.terminator)
        self._submit: Submit | None = None
        self._loop = ReaderLoop(self, faults, fault="serial", what=f"serial scanner {settings.url}",
                                thread_name="serial-scanner", logger=log, reconnect_min_s=settings.reconnect_min_s,
                                reconnect_max_s=settings.reconnect_max_s)

    @property
    def connected(self) -> threading.Event:
        """Set while the port is open."""
        return self._loop.connected

    @property
    def url(self) -> str:  # what `kiosk selftest` names and, on loop://, writes a test code to
        return self.settings.url

    @property
    def terminator(self) -> bytes:
        return self.settings.terminator

    def start(self, submit: Submit) -> None:
        self._submit = submit
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def clean(self, line: bytes) -> bytes:
        """A framed line without stray CR/LF (a CRLF scanner on a CR setting) and the configured prefix/suffix."""
        s = self.settings
        line = line.strip(b"\r\n")
        if s.prefix and line.startswith(s.prefix):
            line = line[len(s.prefix):]
        if s.suffix and line.endswith(s.suffix):
            line = line[:-len(s.suffix)]
        return line

    # -- the Device the loop reads -----------------------------------------------------------
    def open(self) -> None:
        s = self.settings
        try:
            self.port = self.open_port(s.url, baudrate=s.baudrate, timeout=s.read_timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ScannerError(f"Barcode scanner not connected ({s.url})") from exc
        self._framer = LineFramer(s.terminator)  # a code cut off by the last unplugging is not glued to the next

    def read(self) -> None:
        port = self.port
        try:
            data = port.read(max(1, port.in_waiting))
        except (serial.SerialException, OSError) as exc:
            raise ScannerError(f"Barcode scanner disconnected ({self.settings.url})") from exc
        for line in self._framer.feed(data):
            code = self.clean(line)
            if code and self._submit is not None:
                self._submit(Scan(raw=code, source=self.name))

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("closing %s: %s", self.settings.url, exc)
