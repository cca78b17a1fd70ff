"""USB keyboard-wedge scanners read headless through evdev (the optional `hid` extra).

The device is grabbed exclusively so the codes it types don't reach a console or the screen.
Key presses become characters through a layout table (`hardware.keymaps`); Enter ends a code.
Unplugging never stops the kiosk: the fault shows in status and the device is reopened with
backoff.
"""

from __future__ import annotations

import logging
import select
import threading
from typing import Any, Callable, Iterable

from kiosk.errors import ConfigError, ScannerError
from kiosk.ports import Faults, Scan, Submit

from .backoff import DeviceWatch
from .keymaps import load_layout

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

    def __init__(self, layout: dict[str, tuple[str, ...]], max_len: int = MAX_CODE):
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


class HidScanner:
    """A ScanSource over an evdev keyboard device, read on its own thread."""

    name = "hid"

    def __init__(self, device: str, layout: dict[str, tuple[str, ...]], faults: Faults, *, grab: bool = True,
                 reconnect_max_s: float = 30.0, reconnect_min_s: float = 0.5,
                 open_device: Callable[[str], Any] = open_evdev):
        self.device = device
        self.layout = layout
        self.faults = faults
        self.grab = grab
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_min_s = reconnect_min_s
        self.open_device = open_device
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        ecodes()  # fail now, not on the reader thread, when evdev is missing

    @classmethod
    def from_config(cls, hid: Any, serial: Any, faults: Faults, *, source: str = "") -> "HidScanner":
        if not hid.device:
            raise ConfigError(source, "hid.device", "is empty; name the scanner's event device, e.g. "
                              "/dev/input/by-id/usb-...-event-kbd (see `ls /dev/input/by-id`)")
        return cls(hid.device, load_layout(hid.layout, source=source), faults, grab=hid.grab,
                   reconnect_max_s=serial.reconnect_max_s)

    def start(self, submit: Submit) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(submit,), name="hid-scanner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _run(self, submit: Submit) -> None:
        watch = DeviceWatch(self.faults, "hid", log, first=self.reconnect_min_s, maximum=self.reconnect_max_s)
        while not self._stop.is_set():
            try:
                dev = self.open_device(self.device)
            except OSError as exc:
                watch.lost(f"keyboard scanner {self.device} not available ({exc}); retrying in the background",
                           f"Keyboard scanner not connected ({self.device})")
                self._stop.wait(watch.next_delay())
                continue
            try:
                if self.grab:
                    dev.grab()
                watch.back(f"keyboard scanner {self.device} is back")
                self.connected.set()
                self._read(dev, submit)
            except OSError as exc:
                if not self._stop.is_set():
                    watch.lost(f"keyboard scanner {self.device} went away ({exc}); retrying in the background",
                               f"Keyboard scanner disconnected ({self.device})")
                    self._stop.wait(watch.next_delay())
            finally:
                self.connected.clear()
                try:
                    dev.close()
                except OSError:
                    pass

    def _read(self, dev: Any, submit: Submit) -> None:
        decoder = KeyDecoder(self.layout)
        while not self._stop.is_set():
            readable, _, _ = select.select([dev.fd], [], [], 0.2)
            if not readable:
                continue
            try:
                events = list(dev.read())
            except BlockingIOError:
                continue
            for text in decoder.feed_all(events):
                if text:
                    submit(Scan(raw=text, source=self.name))
