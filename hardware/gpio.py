"""Lights, buzzer and the door relay on the GPIO header, through gpiozero.

The pin factory is chosen by name through gpiozero's own entry points ("lgpio", "rpigpio",
"pigpio", "native", "mock"), never imported here; `--simulate` and the tests use gpiozero's
MockFactory. `act()` only starts gpiozero's background blinks and returns at once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kiosk.errors import ConfigError, OutputError
from kiosk.model import Decision
from kiosk.ports import Faults

log = logging.getLogger(__name__)

OUTPUTS = ("green", "red", "amber", "buzzer", "relay")
INPUTS = ("exit_button", "door", "passage")
# The simulated board's wiring when the config fits nothing. No passage sensor: nobody walks
# through a simulated turnstile, so every demo admit would be journalled as not passed.
SIMULATED_PINS: dict[str, int] = {"green": 17, "red": 27, "amber": 22, "buzzer": 23, "relay": 24,
                                  "exit_button": 5, "door": 6}


@dataclass(frozen=True)
class Signals:
    """What lights and buzzer do per verdict (config section [signals])."""

    admit_light_s: float = 2.0
    deny_light_s: float = 3.0
    admit_beeps: int = 1
    deny_beeps: int = 2
    beep_s: float = 0.1
    fault_blink_s: float = 0.5

    @classmethod
    def from_config(cls, section: Any) -> "Signals":
        return cls(**{k: section.as_dict()[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class PinSettings:
    """One fitted device's pin and wiring (config section [gpio.<name>])."""

    pin: str | int
    active_high: bool = True  # outputs
    pull_up: bool = True  # inputs: a contact to ground against the pull-up


@dataclass(frozen=True)
class GpioSettings:
    """Everything on the GPIO header, read once from the config. `pins` holds only fitted devices."""

    pin_factory: str
    pins: dict[str, PinSettings]
    lights: str = "separate"  # or "rgb": one red+green package, amber is both
    pulse_s: float = 1.0
    signals: Signals = field(default_factory=Signals)
    held_open_s: float = 30.0
    grace_s: float = 3.0
    passage_timeout_s: float = 10.0
    door_starts_shut: bool = False  # the simulated door: its contact is driven closed at start
    config_file: str = "<config>"

    @classmethod
    def from_config(cls, config: Any, *, simulate: bool = False) -> "GpioSettings":
        """`simulate` (--simulate): gpiozero's MockFactory, logged as a warning, and the simulated board's
        wiring when the config fits nothing. The one place the pin factory is chosen."""
        pins: dict[str, PinSettings] = {}
        for name in OUTPUTS + INPUTS:
            pin = config.get(f"gpio.{name}.pin")
            if pin != "":
                pins[name] = PinSettings(pin, active_high=config.get(f"gpio.{name}.active_high")) if name in OUTPUTS \
                    else PinSettings(pin, pull_up=config.get(f"gpio.{name}.pull_up"))
        if simulate and not pins:
            pins = {name: PinSettings(pin) for name, pin in SIMULATED_PINS.items()}
        factory = config.gpio.pin_factory
        if simulate and factory != "mock":
            log.warning("--simulate: GPIO runs on gpiozero's MockFactory, not %s", factory)
            factory = "mock"
        return cls(pin_factory=factory, pins=pins, lights=config.gpio.lights, pulse_s=config.relay.pulse_ms / 1000,
                   signals=Signals.from_config(config.signals), held_open_s=float(config.door.held_open_s),
                   grace_s=float(config.door.grace_s), passage_timeout_s=float(config.passage.timeout_s),
                   door_starts_shut=simulate, config_file=config.source)

    @property
    def rgb(self) -> bool:
        """One RGB package: needs both its red and green pins."""
        return self.lights == "rgb" and "red" in self.pins and "green" in self.pins


def pin_factory(name: str) -> Any:
    """A new gpiozero pin factory by its entry-point name."""
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    if name not in found:
        raise OutputError(f"gpiozero has no pin factory {name!r}; installed: {', '.join(sorted(found))}")
    try:
        return found[name].load()()
    except Exception as exc:  # each backend fails its own way: ImportError, OSError, its own errors
        hint = " (on the Pi: `sudo apt install python3-lgpio`, venv with --system-site-packages)" \
            if name == "lgpio" else ""
        raise OutputError(f"GPIO pin factory {name!r} cannot start: {exc}{hint}") from exc


def make_device(config_file: str, name: str, build: Callable[[], Any]) -> Any:
    """Build one gpiozero device, turning a bad pin into a config error that names the key."""
    from gpiozero import GPIOZeroError

    try:
        return build()
    except (GPIOZeroError, ValueError) as exc:
        raise ConfigError(config_file, f"gpio.{name}.pin", f"cannot use this pin: {exc}") from exc


class Lights:
    """Green and red verdict lights and the amber fault light.

    Separate LEDs, or one RGB LED (`rgb=True`): then `amber` is the red+green pair blinking
    together, and a verdict interrupts the fault blinking, which resumes afterwards.
    """

    def __init__(self, *, green: Any = None, red: Any = None, amber: Any = None, rgb: bool = False,
                 blink_s: float = 0.5):
        self.green, self.red, self.amber = green, red, amber
        self.rgb = rgb
        self.blink_s = blink_s
        self._fault = False
        self._lock = threading.Lock()
        self._resume: threading.Timer | None = None

    def show(self, colour: str, seconds: float) -> None:
        led = self.green if colour == "green" else self.red
        with self._lock:
            self._cancel_resume()
            if self.rgb and self.amber is not None:
                self.amber.off()
            for other in (self.green, self.red):
                if other is not None:
                    other.off()
            if led is not None:
                led.blink(on_time=seconds, off_time=0, n=1, background=True)
            if self.rgb and self._fault:
                self._resume = threading.Timer(seconds, self._resume_fault)
                self._resume.daemon = True
                self._resume.start()

    def fault(self, on: bool) -> None:
        with self._lock:
            self._fault = on
            if self.amber is None or (self.rgb and self._resume is not None):
                return  # an RGB verdict is showing; the resume timer picks up the new state
            if on:
                self.amber.blink(on_time=self.blink_s, off_time=self.blink_s, background=True)
            else:
                self.amber.off()

    def _resume_fault(self) -> None:
        with self._lock:
            self._resume = None
            if self._fault and self.amber is not None:
                self.amber.blink(on_time=self.blink_s, off_time=self.blink_s, background=True)

    def _cancel_resume(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None

    def close(self) -> None:
        with self._lock:
            self._cancel_resume()
        for device in (self.amber, self.green, self.red):
            if device is not None:
                device.close()


class Relay:
    """The door strike / turnstile relay: created off, energised only for a pulse, off again on a timer.

    gpiozero's one-shot blink turns it off after `pulse_s`; `close()` and interpreter exit turn it
    off too (the composition root closes outputs on SIGTERM and when the loop dies).
    """

    def __init__(self, device: Any, pulse_s: float):
        self.device = device
        self.pulse_s = pulse_s
        self.last_pulse_end = float("-inf")
        self.closed = False
        self._lock = threading.Lock()  # gpiozero's blink() is not safe against a concurrent blink()/off()
        device.off()
        atexit.register(self.off)

    @property
    def is_on(self) -> bool:
        return bool(self.device.is_active)

    def pulse(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.last_pulse_end = time.monotonic() + self.pulse_s
            # on now, on this thread: the blink thread may wait for the GIL, the door must not
            self.device.on()
            self.device.blink(on_time=self.pulse_s, off_time=0, n=1, background=True)

    def off(self) -> None:
        with self._lock:
            if not self.closed:
                self.device.off()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.device.off()
            finally:
                self.closed = True
                atexit.unregister(self.off)
                self.device.close()


class GpioBoard:
    """The Output for the GPIO header: verdict lights, buzzer and relay; the inputs' watchers ride along."""

    def __init__(self, *, factory: Any, signals: Signals, lights: Lights | None = None, buzzer: Any = None,
                 relay: Relay | None = None, passage: Any = None, inputs: list[Any] | None = None,
                 faults: Faults | None = None):
        self.factory = factory
        self.signals = signals
        self.lights = lights
        self.buzzer = buzzer
        self.relay = relay
        self.passage = passage
        self.inputs = list(inputs or [])
        self._closed = False
        if faults is not None and lights is not None:
            faults.subscribe(lambda name, message: None if self._closed else lights.fault(bool(faults.active())))
            lights.fault(bool(faults.active()))

    def act(self, decision: Decision) -> None:
        if self._closed:
            return
        s = self.signals
        if decision.admitted:
            if self.relay is not None:
                self.relay.pulse()
            if self.passage is not None and decision.event_id:
                self.passage.expect(decision.event_id)
        if self.lights is not None:
            self.lights.show("green" if decision.admitted else "red",
                             s.admit_light_s if decision.admitted else s.deny_light_s)
        beeps = s.admit_beeps if decision.admitted else s.deny_beeps
        if self.buzzer is not None and beeps:
            self.buzzer.beep(on_time=s.beep_s, off_time=s.beep_s, n=beeps, background=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.relay is not None:
                self.relay.close()
        finally:
            for part in [*self.inputs, self.lights, self.buzzer]:
                if part is not None:
                    try:
                        part.close()
                    except Exception:
                        log.exception("closing %s failed", type(part).__name__)
            self.factory.close()
