"""Serial (USB CDC / RS-232) barcode scanners through pyserial.

`serial.serial_for_url` makes `/dev/serial/by-id/...`, `/dev/ttyACM0`, `loop://` (tests) and
`spy://` (debugging) one code path. Framing (`LineFramer`) is separate from I/O. Unplugging
the scanner never stops the kiosk: the fault shows in status and the port is reopened with
backoff until the scanner is back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import serial

from kiosk.errors import ConfigError
from kiosk.ports import Faults, Scan, Submit

from .backoff import DeviceWatch

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


class SerialScanner:
    """A ScanSource reading codes from a serial port on its own thread."""

    name = "serial"

    def __init__(self, url: str, faults: Faults, *, baudrate: int = 9600, terminator: str = "CR", prefix: str = "",
                 suffix: str = "", reconnect_max_s: float = 30.0, reconnect_min_s: float = 0.5,
                 read_timeout_s: float = 0.1, open_port: Callable[..., Any] = serial.serial_for_url):
        self.url = url
        self.faults = faults
        self.baudrate = baudrate
        self.terminator = terminator_bytes(terminator)
        self.prefix = prefix.encode("utf-8")
        self.suffix = suffix.encode("utf-8")
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_min_s = reconnect_min_s
        self.read_timeout_s = read_timeout_s
        self.open_port = open_port
        self.port: Any = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, section: Any, faults: Faults, *, url: str | None = None, source: str = "") -> "SerialScanner":
        url = url or section.url
        if not url:
            raise ConfigError(source, "serial.url", "is empty; name the scanner's port, e.g. /dev/serial/by-id/...")
        return cls(url, faults, baudrate=section.baudrate, terminator=section.terminator, prefix=section.prefix,
                   suffix=section.suffix, reconnect_max_s=section.reconnect_max_s)

    def start(self, submit: Submit) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(submit,), name="serial-scanner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._close()

    def clean(self, line: bytes) -> bytes:
        """A framed line without stray CR/LF (a CRLF scanner on a CR setting) and the configured prefix/suffix."""
        line = line.strip(b"\r\n")
        if self.prefix and line.startswith(self.prefix):
            line = line[len(self.prefix):]
        if self.suffix and line.endswith(self.suffix):
            line = line[:-len(self.suffix)]
        return line

    def _close(self) -> None:
        port, self.port = self.port, None
        self.connected.clear()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("closing %s: %s", self.url, exc)

    def _run(self, submit: Submit) -> None:
        watch = DeviceWatch(self.faults, "serial", log, first=self.reconnect_min_s, maximum=self.reconnect_max_s)
        while not self._stop.is_set():
            try:
                self.port = self.open_port(self.url, baudrate=self.baudrate, timeout=self.read_timeout_s)
            except (serial.SerialException, OSError, ValueError) as exc:
                watch.lost(f"serial scanner {self.url} not available ({exc}); retrying in the background",
                           f"Barcode scanner not connected ({self.url})")
                self._stop.wait(watch.next_delay())
                continue
            watch.back(f"serial scanner {self.url} is back")
            self.connected.set()
            try:
                self._read(submit)
            except (serial.SerialException, OSError) as exc:
                if not self._stop.is_set():
                    watch.lost(f"serial scanner {self.url} went away ({exc}); retrying in the background",
                               f"Barcode scanner disconnected ({self.url})")
            finally:
                self._close()

    def _read(self, submit: Submit) -> None:
        framer = LineFramer(self.terminator)
        port = self.port
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            for line in framer.feed(data):
                code = self.clean(line)
                if code:
                    submit(Scan(raw=code, source=self.name))
