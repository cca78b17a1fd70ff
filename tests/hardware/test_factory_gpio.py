"""The one GPIO builder: `kiosk run`, `kiosk selftest` and `kiosk relay-off` build their devices the same way,
from GpioSettings made once from the config (gpiozero's MockFactory, pins read back through their histories)."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory
from hwutil import make_config

from hardware import factory as builder_module
from hardware import gpio, selftest
from hardware.factory import GpioBuilder
from hardware.gpio import GpioSettings, PinSettings
from kiosk import compose
from kiosk.cli import main

RGB = {"gpio": {"pin_factory": "mock", "lights": "rgb", "red": {"pin": 27, "active_high": False},
                "green": {"pin": 17}, "relay": {"pin": 24}},
       "relay": {"pulse_ms": 20}}


def states(pin) -> list[bool]:
    return [entry.state for entry in pin.states]


def test_settings_are_read_once_with_only_the_fitted_pins():
    settings = GpioSettings.from_config(make_config(RGB))
    assert settings.pin_factory == "mock" and settings.rgb and settings.pulse_s == 0.02
    assert settings.pins == {"red": PinSettings(27, active_high=False), "green": PinSettings(17),
                             "relay": PinSettings(24)}


def test_simulate_chooses_mockfactory_in_the_settings_and_says_so(caplog):
    settings = GpioSettings.from_config(make_config(), simulate=True)  # pin_factory "lgpio", nothing fitted
    assert settings.pin_factory == "mock" and settings.door_starts_shut
    assert {name: p.pin for name, p in settings.pins.items()} == gpio.SIMULATED_PINS
    assert any("MockFactory" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert GpioSettings.from_config(make_config()).pins == {}  # without --simulate: nothing made up


def test_the_rgb_package_lights_both_channels_on_the_red_channels_level():
    factory = MockFactory()
    red, green = factory.pin(27), factory.pin(17)
    lights = GpioBuilder(GpioSettings.from_config(make_config(RGB)), factory).lights()
    try:
        assert lights is not None and lights.rgb
        assert red.state is True and green.state is True  # off on a common-anode (active-low) package
        lights.green.on()
        assert green.state is False and red.state is True
        lights.amber.on()
        assert green.state is False and red.state is False
    finally:
        lights.close()
        factory.close()


def test_selftest_honours_rgb_lights():
    """The selftest drives the RGB package as `kiosk run` does: the green channel active-low like the red one,
    and amber as red+green, although no amber pin is configured."""
    factory = MockFactory()
    green = factory.pin(17)
    checks = selftest.check_gpio(GpioSettings.from_config(make_config(RGB)), progress=lambda _: None,
                                 factory=factory)
    by_device = {c.device: c for c in checks}
    assert {"green light", "red light", "amber light", "relay"} <= set(by_device)
    assert all(c.ok for c in checks), checks
    assert "RGB pins 27+17" in by_device["amber light"].detail
    # lit means low on this package: green went low (twice: alone and as half of amber) and ended high (off)
    assert states(green).count(False) >= 3 and states(green)[-1] is True


def test_selftest_reports_each_separate_light_on_its_own():
    config = make_config({"gpio": {"pin_factory": "mock", "green": {"pin": 17}, "red": {"pin": 99}}})
    checks = compose.selftest(config, simulate=False, timeout_s=0.1)
    by_device = {c.device: c for c in checks}
    assert by_device["green light"].ok
    assert not by_device["red light"].ok and "gpio.red.pin" in by_device["red light"].detail


def test_relay_off_drives_an_active_low_relay_to_its_off_level(monkeypatch):
    factory = MockFactory()
    relay = factory.pin(24)
    monkeypatch.setattr(gpio, "pin_factory", lambda name: factory)
    config = make_config({"gpio": {"pin_factory": "mock", "relay": {"pin": 24, "active_high": False}}})
    assert compose.relay_off(config) == 24
    assert states(relay)[1:] == [True] and relay.state is True  # off is high on an active-low board; never on


@pytest.fixture
def relays_built(monkeypatch):
    """Every relay the builder makes, by whichever command made it."""
    built = []
    original = GpioBuilder.relay

    def relay(self):
        made = original(self)
        built.append(made)
        return made

    monkeypatch.setattr(builder_module.GpioBuilder, "relay", relay)
    return built


def test_run_selftest_and_relay_off_all_build_the_relay_with_the_one_builder(tmp_path, relays_built, gate, faults,
                                                                           capsys):
    path = tmp_path / "kiosk.toml"
    path.write_text('[gate]\nsources = []\n[gpio]\npin_factory = "mock"\n[gpio.relay]\npin = 24\nactive_high = false\n'
                    '[relay]\npulse_ms = 20\n', encoding="utf-8")
    assert main(["relay-off", "--config", str(path)]) == 0
    assert main(["selftest", "--config", str(path), "--timeout", "0.1"]) == 0
    (board,) = compose.gpio_outputs(make_config({"gpio": {"pin_factory": "mock", "relay": {"pin": 24}}}), faults,
                                    gate, simulate=False)
    board.close()
    assert len(relays_built) == 3 and all(isinstance(r, gpio.Relay) for r in relays_built)
    assert all(r.closed for r in relays_built)
    assert "relay on pin 24 is off" in capsys.readouterr().out
