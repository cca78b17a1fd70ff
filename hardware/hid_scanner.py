"""USB keyboard-wedge scanners read headless through evdev (the optional `hid` extra).

The device is grabbed exclusively so the codes it types don't reach a console or the screen.
Key presses become characters through a layout table (`hardware.keymaps`); Enter ends a code.
The reconnecting thread is the shared `hardware.reader.ReaderLoop`: unplugging never stops the
kiosk, the fault shows in status and the device is reopened until it is back.
"""

from __future__ import annotations

import logging
import select
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from kiosk.config import Config
from kiosk.errors import ConfigError, ScannerError
from kiosk.ports import Faults, Scan, Submit

from .keymaps import load_layout
from .reader import ReaderLoop

log = logging.getLogger(__name__)

MAX_CODE = 256
KEY_UP, KEY_DOWN = 0, 1  # evdev key event values; 2 (autorepeat) is ignored: scanners don't hold keys
UNKNOWN = "\ufffd"


def ecodes() -> Any:
    try:
        from evdev import ecodes as codes
    except ImportError as exc:
        raise ScannerError("python-evdev is not installed; install the kiosk with the `hid` extra "
                           "(pip install 'gate-kiosk[hid]') or `sudo apt install python3-evdev`") from exc
    return codes


class KeyDecoder:
    """Key events in, codes out: tracks Shift and AltGr, maps keys through a layout, Enter ends a code."""

    def __init__(self, layout: Mapping[str, tuple[str, ...]], max_len: int = MAX_CODE):
        codes = ecodes()
        self.ev_key = codes.EV_KEY
        self.keys = {codes.ecodes[name]: chars for name, chars in layout.items() if name in codes.ecodes}
        self.shift_keys = {codes.KEY_LEFTSHIFT, codes.KEY_RIGHTSHIFT}
        self.altgr_keys = {codes.KEY_RIGHTALT}
        self.enter_keys = {codes.KEY_ENTER, codes.KEY_KPENTER}
        self.max_len = max_len
        self._held: set[int] = set()
        self._chars: list[str] = []

    def feed(self, event: Any) -> str | None:
        """One InputEvent; returns a code when Enter completes one."""
        if event.type != self.ev_key:
            return None
        code, value = event.code, event.value
        if code in self.shift_keys or code in self.altgr_keys:
            if value == KEY_DOWN:
                self._held.add(code)
            elif value == KEY_UP:
                self._held.discard(code)
            return None
        if value != KEY_DOWN:
            return None
        if code in self.enter_keys:
            text, self._chars = "".join(self._chars), []
            return text
        chars = self.keys.get(code)
        level = 2 if self._held & self.altgr_keys else (1 if self._held & self.shift_keys else 0)
        char = chars[level] if chars and level < len(chars) else UNKNOWN
        if char == UNKNOWN:
            log.debug("key code %d (level %d) is not in the layout", code, level)
        # an endless run without Enter is kept to max_len + 1 so the parser rejects it as too long
        if len(self._chars) <= self.max_len:
            self._chars.append(char)
        return None

    def feed_all(self, events: Iterable[Any]) -> list[str]:
        return [text for text in map(self.feed, events) if text is not None]


def open_evdev(path: str) -> Any:
    from evdev import InputDevice

    return InputDevice(path)


@dataclass(frozen=True)
class HidSettings:
    """The [hid] section, checked once; the layout is loaded (and a bad layout file reported) here."""

    device: str
    layout: Mapping[str, tuple[str, ...]]
    grab: bool
    reconnect_max_s: float
    reconnect_min_s: float = 0.5
    poll_s: float = 0.2  # how often a quiet device's read returns, so stop() is seen

    @classmethod
    def from_config(cls, config: Config) -> "HidSettings":
        section, source = config.hid, config.source
        if not section.device:
            raise ConfigError(source, "hid.device", "is empty; name the scanner's event device, e.g. "
                              "/dev/input/by-id/usb-...-event-kbd (see `ls /dev/input/by-id`)")
        return cls(device=section.device, layout=load_layout(section.layout, source=source), grab=section.grab,
                   reconnect_max_s=float(section.reconnect_max_s))


class HidScanner:
    """A ScanSource over an evdev keyboard device. It is also the `Device` its ReaderLoop reads:
    open/read/close are called on the loop's thread only."""

    name = "hid"

    def __init__(self, settings: HidSettings, faults: Faults, *, open_device: Callable[[str], Any] = open_evdev):
        self.settings = settings
        self.open_device = open_device
        self._dev: Any = None
        self._decoder = KeyDecoder(settings.layout)  # needs evdev: fails now, not on the reader thread
        self._submit: Submit | None = None
        self._loop = ReaderLoop(self, faults, fault="hid", what=f"keyboard scanner {settings.device}",
                                thread_name="hid-scanner", logger=log, reconnect_min_s=settings.reconnect_min_s,
                                reconnect_max_s=settings.reconnect_max_s)

    @property
    def connected(self) -> threading.Event:
        """Set while the device is open (and grabbed)."""
        return self._loop.connected

    @property
    def device(self) -> str:  # what `kiosk selftest` names
        return self.settings.device

    @property
    def grab(self) -> bool:
        return self.settings.grab

    def start(self, submit: Submit) -> None:
        self._submit = submit
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    # -- the Device the loop reads -----------------------------------------------------------
    def open(self) -> None:
        s = self.settings
        try:
            dev = self.open_device(s.device)
        except OSError as exc:
            raise ScannerError(f"Keyboard scanner not connected ({s.device})") from exc
        if s.grab:
            try:
                dev.grab()
            except OSError as exc:  # EBUSY: another program (a console, a second kiosk) holds it
                _close_quietly(dev)
                raise ScannerError(f"Keyboard scanner cannot be grabbed ({s.device})") from exc
        self._dev = dev
        self._decoder = KeyDecoder(s.layout)  # Shift held when it was unplugged is not held any more

    def read(self) -> None:
        dev = self._dev
        try:
            readable, _, _ = select.select([dev.fd], [], [], self.settings.poll_s)
            if not readable:
                return
            events = list(dev.read())
        except BlockingIOError:
            return
        except OSError as exc:
            raise ScannerError(f"Keyboard scanner disconnected ({self.settings.device})") from exc
        for text in self._decoder.feed_all(events):
            if text and self._submit is not None:
                self._submit(Scan(raw=text, source=self.name))

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            _close_quietly(dev)


def _close_quietly(dev: Any) -> None:
    try:
        dev.close()
    except OSError as exc:  # a device that went away may fail to close; it is let go either way
        log.debug("closing %s: %s", getattr(dev, "path", dev), exc)
