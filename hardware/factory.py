"""Adapters chosen by config: the composition root (`kiosk.app`) calls `make_sources` and `make_outputs`.

Nothing falls back to a fake on its own. A simulated device is used when the config names it
(camera.backend = "simulated", gpio.pin_factory = "mock") or when the user asked with
`--simulate`, which is logged as a warning.
"""

from __future__ import annotations

import logging
from typing import Any

from kiosk.config import Config
from kiosk.decoder import FrameDecoder
from kiosk.ports import Faults, Output, ScanSource

log = logging.getLogger(__name__)

SIMULATED_SERIAL_URL = "loop://"


def make_camera(config: Config, faults: Faults, *, simulate: bool, demo_scans: list[str]) -> Any:
    from .camera import Camera, picamera2_class

    decoder = FrameDecoder.from_config(config.camera, stream=True)
    if simulate or config.camera.backend == "simulated":
        from .camera_sim import AfModeEnum, SimulatedPicamera2

        if config.camera.backend != "simulated":
            log.warning("--simulate: the camera is simulated (demo codes), not picamera2")
        return Camera(config.camera, decoder, faults, open_camera=lambda: SimulatedPicamera2(demo_scans),
                      af_modes=lambda: AfModeEnum)
    picamera2 = picamera2_class()  # raises CameraError with the install hint now, not on a thread later
    return Camera(config.camera, decoder, faults, open_camera=picamera2)


def make_sources(config: Config, faults: Faults, *, names: list[str], simulate: bool,
                 demo_scans: list[str]) -> list[ScanSource]:
    sources: list[ScanSource] = []
    for name in dict.fromkeys(names):
        if name == "camera":
            sources.append(make_camera(config, faults, simulate=simulate, demo_scans=demo_scans))
        elif name == "serial":
            from .serial_scanner import SerialScanner

            url = None
            if simulate and not config.serial.url.startswith("loop://"):
                log.warning("--simulate: the serial scanner is %s, not %s", SIMULATED_SERIAL_URL, config.serial.url)
                url = SIMULATED_SERIAL_URL
            sources.append(SerialScanner.from_config(config.serial, faults, url=url, source=config.source))
        elif name == "hid":
            if simulate and not config.hid.device:
                log.warning("--simulate: no keyboard scanner is configured (hid.device); reading none")
                continue
            from .hid_scanner import HidScanner

            sources.append(HidScanner.from_config(config.hid, config.serial, faults, source=config.source))
        else:
            raise ValueError(f"unknown scan source {name!r}")
    return sources


def make_outputs(config: Config, faults: Faults, gate: Any, *, simulate: bool) -> list[Output]:
    from . import gpio

    pins = gpio.configured_pins(config, simulate)
    if not pins:
        log.info("no GPIO devices configured")
        return []
    name = config.gpio.pin_factory
    if simulate and name != "mock":
        log.warning("--simulate: GPIO runs on gpiozero's MockFactory, not %s", name)
        name = "mock"
    factory = gpio.pin_factory(name)
    try:
        board = build_board(config, factory, pins, faults, gate, simulate=simulate)
    except BaseException:
        factory.close()
        raise
    return [board]


def build_board(config: Config, factory: Any, pins: dict[str, Any], faults: Faults, gate: Any, *,
                simulate: bool = False) -> Any:
    """Every fitted device on `factory`: only pins that are configured are created."""
    from gpiozero import LED, Buzzer, DigitalInputDevice, DigitalOutputDevice, LEDBoard

    from .gpio import GpioBoard, Lights, Relay, Signals, make_device
    from .gpio_inputs import DoorMonitor, ExitButton, PassageMonitor

    made: list[Any] = []
    relay: Relay | None = None

    def device(name: str, build: Any) -> Any:
        if name not in pins:
            return None
        made.append(make_device(config, name, build))
        return made[-1]

    def high(name: str) -> bool:
        return config.get(f"gpio.{name}.active_high")

    try:
        relay_device = device("relay", lambda: DigitalOutputDevice(
            pins["relay"], active_high=high("relay"), initial_value=False, pin_factory=factory))
        relay = Relay(relay_device, config.relay.pulse_ms / 1000) if relay_device is not None else None
        if config.gpio.lights == "rgb" and "red" in pins and "green" in pins:
            # one package: the red channel's active_high serves both (common anode or cathode)
            pair = device("red", lambda: LEDBoard(red=pins["red"], green=pins["green"], active_high=high("red"),
                                                  pin_factory=factory))
            lights = Lights(green=pair.green, red=pair.red, amber=pair, rgb=True,
                            blink_s=config.signals.fault_blink_s)
        else:
            leds = {colour: device(colour, lambda c=colour: LED(pins[c], active_high=high(c), pin_factory=factory))
                    for colour in ("green", "red", "amber")}
            lights = Lights(**leds, blink_s=config.signals.fault_blink_s) if any(leds.values()) else None
        buzzer = device("buzzer", lambda: Buzzer(pins["buzzer"], active_high=high("buzzer"), pin_factory=factory))

        def button(name: str) -> Any:
            return device(name, lambda: DigitalInputDevice(
                pins[name], pull_up=config.get(f"gpio.{name}.pull_up"), bounce_time=0.02, pin_factory=factory))

        inputs: list[Any] = []
        exit_button = button("exit_button")
        if exit_button is not None:
            inputs.append(ExitButton(exit_button, gate))
        door = button("door")
        if door is not None:
            if simulate:  # the simulated door starts shut: its contact is closed
                door.pin.drive_low() if door.pull_up else door.pin.drive_high()
            pulse_end = (lambda: relay.last_pulse_end) if relay is not None else (lambda: float("-inf"))
            inputs.append(DoorMonitor(door, gate, faults, held_open_s=config.door.held_open_s,
                                      grace_s=config.door.grace_s, unlocked_until=pulse_end))
        passage = None
        passage_sensor = button("passage")
        if passage_sensor is not None:
            passage = PassageMonitor(passage_sensor, gate, timeout_s=config.passage.timeout_s)
            inputs.append(passage)
    except BaseException:
        if relay is not None:
            relay.close()
        for d in made:
            d.close()
        raise
    return GpioBoard(factory=factory, signals=Signals.from_config(config.signals), lights=lights, buzzer=buzzer,
                     relay=relay, passage=passage, inputs=inputs, faults=faults)
