"""The keyboard-wedge scanner with synthetic evdev InputEvents (no /dev/uinput needed)."""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import replace

import pytest
from hwutil import drain, make_config

evdev = pytest.importorskip("evdev")
from evdev import InputEvent, ecodes  # noqa: E402

from hardware.hid_scanner import MAX_CODE, HidScanner, HidSettings, KeyDecoder  # noqa: E402
from hardware.keymaps import DE, US, load_layout  # noqa: E402
from kiosk.errors import ConfigError  # noqa: E402
from kiosk.model import Verdict  # noqa: E402
from tests.kiosk.waits import wait_for  # noqa: E402


def key(name: str, value: int) -> InputEvent:
    return InputEvent(0, 0, ecodes.EV_KEY, ecodes.ecodes[name], value)


def typed(text: str, layout=US, enter: str = "KEY_ENTER") -> list[InputEvent]:
    """The events a scanner sends to type `text` in `layout`, with the SYN/MSC noise real devices add."""
    reverse = {}
    for name, chars in reversed(list(layout.items())):
        for level, char in enumerate(chars):
            reverse[char] = (name, level)
    events = []
    for char in text:
        name, level = reverse[char]
        modifier = {1: "KEY_LEFTSHIFT", 2: "KEY_RIGHTALT"}.get(level)
        if modifier:
            events.append(key(modifier, 1))
        events += [InputEvent(0, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 458756), key(name, 1),
                   InputEvent(0, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0), key(name, 0)]
        if modifier:
            events.append(key(modifier, 0))
    return events + [key(enter, 1), key(enter, 0)]


@pytest.mark.parametrize("text", ["I-1001", "https://members.example.org/card/0b6f3f0e-6a4e-4c59-9d8e-3f6b1f2d9a10",
                                  "Hello World!@#$%^&*()_+{}|:\"<>?~"])
def test_us_layout_round_trip(text):
    assert KeyDecoder(US).feed_all(typed(text)) == [text]


def test_shift_is_released_and_keypad_enter_ends_a_code():
    events = typed("Ab", enter="KEY_KPENTER") + typed("ab")
    assert KeyDecoder(US).feed_all(events) == ["Ab", "ab"]


def test_autorepeat_and_unknown_keys():
    events = [key("KEY_A", 1), key("KEY_A", 2), key("KEY_A", 0), key("KEY_F5", 1), key("KEY_F5", 0),
              key("KEY_ENTER", 1)]
    assert KeyDecoder(US).feed_all(events) == ["a\ufffd"]


def test_german_layout_swaps_y_and_z_and_has_altgr():
    events = typed("Zy@", layout=DE)
    assert [e.code for e in events if e.value == 1][:3] == [ecodes.KEY_LEFTSHIFT, ecodes.KEY_Y, ecodes.KEY_Z]
    assert KeyDecoder(DE).feed_all(events) == ["Zy@"]
    assert KeyDecoder(US).feed_all(events) == ["Yz\ufffd"]  # the wrong layout gives a different text


def test_layout_file_overrides_the_us_table(tmp_path):
    path = tmp_path / "custom.toml"
    path.write_text('KEY_Z = ["y", "Y"]\nKEY_Y = ["z", "Z"]\n', encoding="utf-8")
    layout = load_layout(str(path))
    assert layout["KEY_Z"] == ("y", "Y") and layout["KEY_A"] == ("a", "A")
    assert KeyDecoder(layout).feed_all([key("KEY_Z", 1), key("KEY_ENTER", 1)]) == ["y"]


@pytest.mark.parametrize("name, content", [("nope", None), ("bad.toml", 'KEY_Z = "y"'), ("bad2.toml", "[[[")])
def test_bad_layouts_are_config_errors(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="hid.layout"):
        load_layout(str(path) if content is not None else name)


def test_endless_typing_without_enter_is_cut():
    decoder = KeyDecoder(US)
    out = decoder.feed_all([key("KEY_A", 1)] * 5000 + [key("KEY_ENTER", 1)])
    assert out == ["a" * (MAX_CODE + 1)]


class FakeInputDevice:
    """evdev.InputDevice's calls the scanner makes: fd (a pipe), grab, read, close. `unplug()` breaks it."""

    def __init__(self):
        self._r, self._w = os.pipe()
        self.fd = self._r
        self.grabbed = False
        self.gone = False
        self.closed = False
        self._events: list = []
        self._lock = threading.Lock()

    def grab(self):
        self.grabbed = True

    def type(self, events):
        with self._lock:
            self._events += events
        os.write(self._w, b"x")

    def unplug(self):
        self.gone = True
        os.write(self._w, b"x")

    def read(self):
        os.read(self._r, 4096)
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        with self._lock:
            events, self._events = self._events, []
        if not events:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return iter(events)

    def close(self):
        self.closed = True
        os.close(self._r)
        os.close(self._w)


def test_scanner_grabs_reads_and_survives_unplugging(gate, faults):
    devices = [FakeInputDevice(), FakeInputDevice()]
    attempts = []

    def open_device(path):
        attempts.append(path)
        if len(attempts) in (2, 3):  # unplugged: the by-id path is gone for a while
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return devices[0] if len(attempts) == 1 else devices[1]

    settings = HidSettings("/dev/input/by-id/usb-scanner-event-kbd", US, grab=True, reconnect_max_s=0.05,
                           reconnect_min_s=0.01)
    scanner = HidScanner(settings, faults, open_device=open_device)
    scanner.start(gate.submit)
    try:
        wait_for(scanner.connected.is_set, "the first device grabbed")
        devices[0].type(typed("I-1001"))
        (first,) = drain(gate, 1)
        devices[0].unplug()
        wait_for(lambda: "hid" in faults.active(), "the unplugging seen as a fault")
        wait_for(lambda: devices[1].grabbed, "the device plugged back in grabbed")
        wait_for(lambda: "hid" not in faults.active(), "the fault cleared")
        devices[1].type(typed("HELLO"))
        (second,) = drain(gate, 1)
    finally:
        scanner.stop()
    assert devices[0].grabbed and devices[0].closed
    assert first.verdict is Verdict.ADMIT and first.source == "hid"
    assert second.verdict is Verdict.NOT_RECOGNISED
    assert len(attempts) == 4


def test_grab_can_be_turned_off(faults):
    device = FakeInputDevice()
    config = make_config({"hid": {"device": "/dev/input/event3", "grab": False}})
    scanner = HidScanner(HidSettings.from_config(config), faults, open_device=lambda path: device)
    scanner.start(lambda scan: None)
    try:
        wait_for(scanner.connected.is_set, "the device opened")
    finally:
        scanner.stop()
    assert not device.grabbed


def test_hid_without_a_device_is_a_config_error(faults):
    config = make_config({"hid": {"device": ""}})
    with pytest.raises(ConfigError, match=r"^test\.toml: hid\.device: is empty; name the scanner's event device"):
        HidSettings.from_config(config)


def test_settings_take_the_reconnect_delay_from_the_hid_section_not_the_serial_one():
    config = make_config({"hid": {"device": "/dev/input/event3", "layout": "de", "reconnect_max_s": 4},
                          "serial": {"reconnect_max_s": 90}})
    settings = HidSettings.from_config(config)
    assert settings.reconnect_max_s == 4.0
    assert settings.device == "/dev/input/event3" and settings.layout == DE and settings.grab is True


def test_a_device_that_cannot_be_grabbed_is_a_fault_and_is_let_go(faults):
    class Busy(FakeInputDevice):
        def grab(self):
            raise OSError(errno.EBUSY, "Device or resource busy")

    busy = Busy()
    settings = replace(HidSettings.from_config(make_config({"hid": {"device": "/dev/input/event3"}})),
                       reconnect_min_s=0.01, reconnect_max_s=0.05)
    scanner = HidScanner(settings, faults, open_device=lambda path: busy)
    scanner.start(lambda scan: None)
    try:
        wait_for(lambda: "hid" in faults.active(), "the busy device seen as a fault")
    finally:
        scanner.stop()
    assert faults.active()["hid"] == "Keyboard scanner cannot be grabbed (/dev/input/event3)"
    assert busy.closed and not scanner.connected.is_set()
