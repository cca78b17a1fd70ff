"""The one builder of GPIO devices: lights, buzzer, relay and inputs from `GpioSettings` on one pin factory.

`kiosk run` (through the composition root, `kiosk.compose`), `kiosk selftest` and `kiosk relay-off`
all build their devices here, so a wiring option (`gpio.lights = "rgb"`, active-low boards,
pull-ups) means the same thing to each of them. Only fitted pins are created.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from kiosk.ports import AlarmRecorder, Faults, Submit

from .gpio import GpioBoard, GpioSettings, Lights, PinSettings, Relay, make_device
from .gpio_inputs import DoorMonitor, ExitButton, PassageMonitor

log = logging.getLogger(__name__)

COLOURS = ("green", "red", "amber")


class GpioBuilder:
    """Makes each fitted device on `factory` (a gpiozero pin factory, closed by whoever opened it).

    Every device made is remembered, so `close_made()` can release them when building fails halfway.
    """

    def __init__(self, settings: GpioSettings, factory: Any):
        self.settings = settings
        self.factory = factory
        self.made: list[Any] = []

    def _device(self, name: str, build: Callable[[PinSettings], Any]) -> Any:
        """`build(pin)` for a fitted device, else None; a bad pin is a ConfigError naming gpio.<name>.pin."""
        pin = self.settings.pins.get(name)
        if pin is None:
            return None
        device = make_device(self.settings.config_file, name, lambda: build(pin))
        self.made.append(device)
        return device

    def close_made(self) -> None:
        for device in reversed(self.made):
            device.close()
        self.made.clear()

    # -- outputs -----------------------------------------------------------------------
    def lights(self) -> Lights | None:
        """Separate green/red/amber LEDs, or one RGB package (`gpio.lights = "rgb"`) whose amber is red+green."""
        from gpiozero import LEDBoard

        pins, f, s = self.settings.pins, self.factory, self.settings
        if s.rgb:
            # one package: the red channel's active_high serves both (common anode or cathode)
            pair = self._device("red", lambda red: LEDBoard(red=red.pin, green=pins["green"].pin,
                                                           active_high=red.active_high, pin_factory=f))
            return Lights(green=pair.green, red=pair.red, amber=pair, rgb=True, blink_s=s.signals.fault_blink_s)
        leds = {colour: self.light(colour) for colour in COLOURS}
        return Lights(**leds, blink_s=s.signals.fault_blink_s) if any(leds.values()) else None

    def light(self, colour: str) -> Any:
        """One separate LED (gpio.lights = "separate"), or None when its pin is not fitted."""
        from gpiozero import LED

        return self._device(colour, lambda p: LED(p.pin, active_high=p.active_high, pin_factory=self.factory))

    def buzzer(self) -> Any:
        from gpiozero import Buzzer

        return self._device("buzzer", lambda p: Buzzer(p.pin, active_high=p.active_high, pin_factory=self.factory))

    def relay(self) -> Relay | None:
        """The door relay, created off (its off level on an active-low board)."""
        from gpiozero import DigitalOutputDevice

        device = self._device("relay", lambda p: DigitalOutputDevice(p.pin, active_high=p.active_high,
                                                                     initial_value=False, pin_factory=self.factory))
        if device is None:
            return None
        self.made.remove(device)  # the Relay owns it now: its close() switches the relay off first
        relay = Relay(device, self.settings.pulse_s)
        self.made.append(relay)
        return relay

    # -- inputs ------------------------------------------------------------------------
    def input(self, name: str, *, bounce_s: float | None = None) -> Any:
        """The raw DigitalInputDevice of an input (exit_button, door, passage), or None when not fitted."""
        from gpiozero import DigitalInputDevice

        return self._device(name, lambda p: DigitalInputDevice(p.pin, pull_up=p.pull_up, bounce_time=bounce_s,
                                                               pin_factory=self.factory))

    def board(self, *, submit: Submit, alarms: AlarmRecorder, faults: Faults) -> GpioBoard:
        """Every fitted device as the gate's Output; the inputs talk to the gate only through the ports."""
        s = self.settings
        try:
            relay = self.relay()
            lights = self.lights()
            buzzer = self.buzzer()
            inputs: list[Any] = []
            exit_button = self.input("exit_button", bounce_s=0.02)
            if exit_button is not None:
                inputs.append(ExitButton(exit_button, submit))
            door = self.input("door", bounce_s=0.02)
            if door is not None:
                if s.door_starts_shut:  # the simulated door starts shut: its contact is closed
                    door.pin.drive_low() if door.pull_up else door.pin.drive_high()
                pulse_end = (lambda: relay.last_pulse_end) if relay is not None else (lambda: float("-inf"))
                inputs.append(DoorMonitor(door, alarms, faults, held_open_s=s.held_open_s, grace_s=s.grace_s,
                                          unlocked_until=pulse_end))
            passage = None
            passage_sensor = self.input("passage", bounce_s=0.02)
            if passage_sensor is not None:
                passage = PassageMonitor(passage_sensor, alarms, timeout_s=s.passage_timeout_s)
                inputs.append(passage)
        except BaseException:
            self.close_made()
            raise
        self.made.clear()  # the board owns them now
        return GpioBoard(factory=self.factory, signals=s.signals, lights=lights, buzzer=buzzer, relay=relay,
                         passage=passage, inputs=inputs, faults=faults)
