"""`kiosk selftest`: exercise every configured device once and say what worked.

Each check drives the real adapter (or its simulated backend with --simulate) and reads back
what it can: output pins are read after being set, the relay must be on during its pulse and
off after it, the camera must deliver frames, a scanner must open (and, on `loop://`, echo a
code through the framer).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from kiosk.errors import KioskError
from kiosk.ports import Faults, Scan

from . import gpio
from .factory import COLOURS, GpioBuilder
from .gpio import GpioSettings

log = logging.getLogger(__name__)

LIGHT_S = 0.3


@dataclass(frozen=True)
class Check:
    device: str
    ok: bool
    detail: str


Reader = Callable[[Faults], Any]  # builds one scan source (camera, serial, hid) on a fresh Faults


def run(gpio: GpioSettings, readers: dict[str, Reader | None], *, timeout_s: float,
        progress: Callable[[str], None] = lambda _: None) -> list[Check]:
    """Every fitted GPIO device, then each reader in `readers` (by source name), as the composition
    root (`kiosk.compose.selftest`) built them from the config."""
    checks = check_gpio(gpio, progress=progress)
    if (camera := readers.get("camera")) is not None:
        checks.append(check_camera(camera, timeout_s=timeout_s, progress=progress))
    if (serial := readers.get("serial")) is not None:
        checks.append(check_serial(serial, timeout_s=timeout_s, progress=progress))
    if "hid" in readers:
        checks.append(check_hid(readers["hid"], timeout_s=timeout_s, progress=progress))
    return checks


def _guard(device: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a device library failing in its own way is a failed check, not a crash
        return _failed(device, exc)


def _failed(device: str, exc: Exception) -> Check:
    if isinstance(exc, KioskError):
        return Check(device, False, str(exc))
    log.debug("%s check failed", device, exc_info=exc)
    return Check(device, False, f"{type(exc).__name__}: {exc}")


# -- GPIO --------------------------------------------------------------------------------

def check_gpio(settings: GpioSettings, *, progress: Callable[[str], None], factory: Any = None) -> list[Check]:
    """Each fitted device, built by the same GpioBuilder as `kiosk run` builds them. `factory`: a pin factory
    to use instead of the one the settings name (tests); it is closed all the same."""
    if not settings.pins:
        return []
    if factory is None:
        try:
            factory = gpio.pin_factory(settings.pin_factory)
        except KioskError as exc:
            return [Check("gpio", False, str(exc))]
    pins = settings.pins
    checks: list[Check] = []
    try:
        checks += _check_lights(GpioBuilder(settings, factory), progress)
        if "buzzer" in pins:
            progress("buzzer: two beeps")
            checks.append(_guard("buzzer", partial(_check_buzzer, GpioBuilder(settings, factory))))
        if "relay" in pins:
            progress(f"relay: one {settings.pulse_s * 1000:g} ms pulse")
            checks.append(_guard("relay", partial(_check_relay, GpioBuilder(settings, factory))))
        for name in gpio.INPUTS:
            if name in pins:
                builder = GpioBuilder(settings, factory)
                checks.append(_guard(name.replace("_", " "), partial(_check_input, builder, name)))
    finally:
        factory.close()
    return checks


def _check_lights(builder: GpioBuilder, progress: Callable[[str], None]) -> list[Check]:
    """Each light the kiosk shows, built as `kiosk run` builds it: separate LEDs one by one, or one RGB
    package (`gpio.lights = "rgb"`) whose green and red are its channels and whose amber is both."""
    settings = builder.settings
    if not settings.rgb:
        checks = []
        for colour in COLOURS:
            if colour in settings.pins:
                progress(f"{colour} light on for {LIGHT_S:g} s")
                checks.append(_guard(f"{colour} light", partial(_check_led, builder, colour)))
        return checks
    try:
        lights = builder.lights()
    except Exception as exc:
        builder.close_made()
        return [_failed("rgb light", exc)]
    assert lights is not None  # rgb: both its pins are fitted
    try:
        checks = []
        for colour in COLOURS:
            progress(f"{colour} light on for {LIGHT_S:g} s")
            checks.append(_guard(f"{colour} light", partial(_blink, getattr(lights, colour), f"{colour} light",
                                                            _light_pins(settings, colour))))
        return checks
    finally:
        lights.close()


def _light_pins(settings: GpioSettings, colour: str) -> str:
    if settings.rgb and colour == "amber":
        return f"RGB pins {settings.pins['red'].pin}+{settings.pins['green'].pin}"
    return f"pin {settings.pins[colour].pin}"


def _check_led(builder: GpioBuilder, colour: str) -> Check:
    led = builder.light(colour)
    try:
        return _blink(led, f"{colour} light", _light_pins(builder.settings, colour))
    finally:
        led.close()


def _blink(led: Any, device: str, where: str) -> Check:
    led.on()
    lit = led.is_lit
    time.sleep(LIGHT_S)
    led.off()
    dark = not led.is_lit
    ok = lit and dark
    return Check(device, ok, f"{where} switched on and off (look at the light)" if ok
                 else f"{where} did not follow: on={lit}, off={dark}")


def _check_buzzer(builder: GpioBuilder) -> Check:
    buzzer = builder.buzzer()
    pin = builder.settings.pins["buzzer"].pin
    try:
        buzzer.beep(on_time=0.1, off_time=0.1, n=2, background=False)
        silent = not buzzer.is_active
    finally:
        buzzer.close()
    return Check("buzzer", silent, f"pin {pin} beeped twice (listen for it)" if silent
                 else f"pin {pin} stayed on after the beeps")


def _check_relay(builder: GpioBuilder) -> Check:
    relay = builder.relay()
    assert relay is not None  # fitted: check_gpio asks only for fitted devices
    pin = builder.settings.pins["relay"].pin
    pulse_ms = f"{relay.pulse_s * 1000:g}"
    try:
        relay.pulse()
        time.sleep(relay.pulse_s / 2)
        was_on = relay.is_on
        deadline = time.monotonic() + relay.pulse_s + 1.0
        while relay.is_on and time.monotonic() < deadline:
            time.sleep(0.01)
        off_again = not relay.is_on
    finally:
        relay.close()
    if was_on and off_again:
        return Check("relay", True, f"pin {pin} on for {pulse_ms} ms, then off (listen for the click)")
    return Check("relay", False, f"pin {pin}: on during the pulse={was_on}, off after it={off_again}")


def _check_input(builder: GpioBuilder, name: str) -> Check:
    button = builder.input(name)
    pin = builder.settings.pins[name].pin
    try:
        closed = button.is_active
    finally:
        button.close()
    meaning = {"door": ("door shut", "door open"), "exit_button": ("pressed", "not pressed"),
               "passage": ("sensor active", "sensor idle")}[name]
    return Check(name.replace("_", " "), True, f"pin {pin} reads {meaning[0] if closed else meaning[1]}")


# -- scan sources ------------------------------------------------------------------------

def _collect() -> tuple[list[Scan], threading.Event, Callable[[Scan], None]]:
    scans: list[Scan] = []
    got = threading.Event()

    def submit(scan: Scan) -> None:
        scans.append(scan)
        got.set()

    return scans, got, submit


def check_camera(make: Reader, *, timeout_s: float, progress: Callable[[str], None]) -> Check:
    def check() -> Check:
        faults = Faults()
        camera = make(faults)
        scans, got, submit = _collect()
        progress(f"camera: hold a code in front of it (up to {timeout_s:g} s)")
        started = time.monotonic()
        camera.start(submit)
        try:
            got.wait(timeout_s)
        finally:
            camera.stop()
        took = time.monotonic() - started
        stats = camera.stats
        if stats.captured == 0:
            return Check("camera", False, faults.active().get("camera", f"no frame within {timeout_s:g} s"))
        seen = f"decoded {scans[0].raw!r}" if scans else "no code seen"
        return Check("camera", True, f"{stats.captured} frames of {camera.lores_w}x{camera.lores_h} in {took:.1f} s, "
                                     f"{seen}")

    return _guard("camera", check)


def check_serial(make: Reader, *, timeout_s: float, progress: Callable[[str], None]) -> Check:
    def check() -> Check:
        faults = Faults()
        scanner = make(faults)
        scans, got, submit = _collect()
        scanner.start(submit)
        try:
            if not scanner.connected.wait(timeout_s):
                return Check("serial scanner", False, faults.active().get("serial", f"{scanner.url} did not open"))
            if scanner.url.startswith("loop://"):
                scanner.port.write(b"SELFTEST" + scanner.terminator)
            else:
                progress(f"serial scanner: scan a code (up to {timeout_s:g} s)")
            got.wait(timeout_s)
        finally:
            scanner.stop()
        if scanner.url.startswith("loop://") and not scans:
            return Check("serial scanner", False, "loop:// opened but the test code did not come back")
        raw = scans[0].raw if scans else b""
        seen = f"read {(raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else raw)!r}" if scans \
            else f"no code scanned within {timeout_s:g} s"
        return Check("serial scanner", True, f"{scanner.url} open, {seen}")

    return _guard("serial scanner", check)


def check_hid(make: Reader | None, *, timeout_s: float, progress: Callable[[str], None]) -> Check:
    """`make` is None under --simulate without a configured hid.device: nothing to simulate."""
    if make is None:
        return Check("keyboard scanner", True, "not simulated (no hid.device configured)")

    def check() -> Check:
        faults = Faults()
        scanner = make(faults)
        scans, got, submit = _collect()
        scanner.start(submit)
        try:
            if not scanner.connected.wait(timeout_s):
                return Check("keyboard scanner", False, faults.active().get("hid", f"{scanner.device} did not open"))
            progress(f"keyboard scanner: scan a code (up to {timeout_s:g} s)")
            got.wait(timeout_s)
        finally:
            scanner.stop()
        seen = f"read {scans[0].raw!r}" if scans else f"no code scanned within {timeout_s:g} s"
        return Check("keyboard scanner", True, f"{scanner.device} open{' and grabbed' if scanner.grab else ''}, {seen}")

    return _guard("keyboard scanner", check)
