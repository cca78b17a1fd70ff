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
from typing import Any, Callable

from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.ports import Faults, Scan

from . import gpio

log = logging.getLogger(__name__)

LIGHT_S = 0.3


@dataclass(frozen=True)
class Check:
    device: str
    ok: bool
    detail: str


def run(config: Config, *, simulate: bool, timeout_s: float, demo_scans: list[str],
        progress: Callable[[str], None] = lambda _: None) -> list[Check]:
    checks = check_gpio(config, simulate=simulate, progress=progress)
    names = list(dict.fromkeys(config.gate.sources))
    if "camera" in names:
        checks.append(check_camera(config, simulate=simulate, timeout_s=timeout_s, demo_scans=demo_scans,
                                   progress=progress))
    if "serial" in names:
        checks.append(check_serial(config, simulate=simulate, timeout_s=timeout_s, progress=progress))
    if "hid" in names:
        checks.append(check_hid(config, simulate=simulate, timeout_s=timeout_s, progress=progress))
    return checks


def _guard(device: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except KioskError as exc:
        return Check(device, False, str(exc))
    except Exception as exc:  # a device library failing in its own way is a failed check, not a crash
        log.debug("%s check failed", device, exc_info=True)
        return Check(device, False, f"{type(exc).__name__}: {exc}")


# -- GPIO --------------------------------------------------------------------------------

def check_gpio(config: Config, *, simulate: bool, progress: Callable[[str], None]) -> list[Check]:
    pins = gpio.configured_pins(config, simulate)
    if not pins:
        return []
    name = "mock" if simulate else config.gpio.pin_factory
    try:
        factory = gpio.pin_factory(name)
    except KioskError as exc:
        return [Check("gpio", False, str(exc))]
    checks: list[Check] = []
    try:
        for colour in ("green", "red", "amber"):
            if colour in pins:
                progress(f"{colour} light on for {LIGHT_S:g} s")
                checks.append(_guard(f"{colour} light", lambda c=colour: _check_light(config, factory, c, pins[c])))
        if "buzzer" in pins:
            progress("buzzer: two beeps")
            checks.append(_guard("buzzer", lambda: _check_buzzer(config, factory, pins["buzzer"])))
        if "relay" in pins:
            progress(f"relay: one {config.relay.pulse_ms} ms pulse")
            checks.append(_guard("relay", lambda: _check_relay(config, factory, pins["relay"])))
        for name in gpio.INPUTS:
            if name in pins:
                checks.append(_guard(name.replace("_", " "), lambda n=name: _check_input(config, factory, n, pins[n])))
    finally:
        factory.close()
    return checks


def _check_light(config: Config, factory: Any, colour: str, pin: Any) -> Check:
    from gpiozero import LED

    led = gpio.make_device(config, colour, lambda: LED(pin, active_high=config.get(f"gpio.{colour}.active_high"),
                                                       pin_factory=factory))
    try:
        led.on()
        lit = led.is_lit
        time.sleep(LIGHT_S)
        led.off()
        dark = not led.is_lit
    finally:
        led.close()
    ok = lit and dark
    return Check(f"{colour} light", ok, f"pin {pin} switched on and off (look at the light)" if ok
                 else f"pin {pin} did not follow: on={lit}, off={dark}")


def _check_buzzer(config: Config, factory: Any, pin: Any) -> Check:
    from gpiozero import Buzzer

    buzzer = gpio.make_device(config, "buzzer", lambda: Buzzer(
        pin, active_high=config.get("gpio.buzzer.active_high"), pin_factory=factory))
    try:
        buzzer.beep(on_time=0.1, off_time=0.1, n=2, background=False)
        silent = not buzzer.is_active
    finally:
        buzzer.close()
    return Check("buzzer", silent, f"pin {pin} beeped twice (listen for it)" if silent
                 else f"pin {pin} stayed on after the beeps")


def _check_relay(config: Config, factory: Any, pin: Any) -> Check:
    from gpiozero import DigitalOutputDevice

    device = gpio.make_device(config, "relay", lambda: DigitalOutputDevice(
        pin, active_high=config.get("gpio.relay.active_high"), initial_value=False, pin_factory=factory))
    relay = gpio.Relay(device, config.relay.pulse_ms / 1000)
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
        return Check("relay", True, f"pin {pin} on for {config.relay.pulse_ms} ms, then off (listen for the click)")
    return Check("relay", False, f"pin {pin}: on during the pulse={was_on}, off after it={off_again}")


def _check_input(config: Config, factory: Any, name: str, pin: Any) -> Check:
    from gpiozero import DigitalInputDevice

    button = gpio.make_device(config, name, lambda: DigitalInputDevice(
        pin, pull_up=config.get(f"gpio.{name}.pull_up"), pin_factory=factory))
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


def check_camera(config: Config, *, simulate: bool, timeout_s: float, demo_scans: list[str],
                 progress: Callable[[str], None]) -> Check:
    from .factory import make_camera

    def check() -> Check:
        faults = Faults()
        camera = make_camera(config, faults, simulate=simulate, demo_scans=demo_scans)
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
        w, h = config.camera.lores_size
        seen = f"decoded {scans[0].raw!r}" if scans else "no code seen"
        return Check("camera", True, f"{stats.captured} frames of {w}x{h} in {took:.1f} s, {seen}")

    return _guard("camera", check)


def check_serial(config: Config, *, simulate: bool, timeout_s: float, progress: Callable[[str], None]) -> Check:
    from .factory import SIMULATED_SERIAL_URL
    from .serial_scanner import SerialScanner

    def check() -> Check:
        faults = Faults()
        url = SIMULATED_SERIAL_URL if simulate else None
        scanner = SerialScanner.from_config(config.serial, faults, url=url, source=config.source)
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
        seen = f"read {bytes(scans[0].raw).decode('utf-8', 'replace')!r}" if scans \
            else f"no code scanned within {timeout_s:g} s"
        return Check("serial scanner", True, f"{scanner.url} open, {seen}")

    return _guard("serial scanner", check)


def check_hid(config: Config, *, simulate: bool, timeout_s: float, progress: Callable[[str], None]) -> Check:
    from .hid_scanner import HidScanner

    if simulate and not config.hid.device:
        return Check("keyboard scanner", True, "not simulated (no hid.device configured)")

    def check() -> Check:
        faults = Faults()
        scanner = HidScanner.from_config(config.hid, config.serial, faults, source=config.source)
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
