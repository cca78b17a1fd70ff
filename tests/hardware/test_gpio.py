"""Lights, buzzer, relay and inputs on gpiozero's MockFactory, asserted through the pins' state histories."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hwutil import drain, make_config, wait_for

from hardware import gpio
from kiosk import compose
from kiosk.errors import ConfigError, OutputError
from kiosk.gate import utc_now
from kiosk.model import Decision, Verdict
from kiosk.ports import Faults, Scan

PINS = {"green": 17, "red": 27, "amber": 22, "buzzer": 23, "relay": 24}
FAST = {"admit_light_s": 0.08, "deny_light_s": 0.08, "beep_s": 0.02, "fault_blink_s": 0.02}
ROOT = Path(__file__).resolve().parents[2]
# A pulse no test waits out: a relay found off before it ended was switched off by close or shutdown.
LONG_PULSE_S = 30  # the longest pulse the config allows


def gpio_config(pins=PINS, *, pulse_ms=100, signals=FAST, lights="separate", gpio_extra=None, **sections):
    data = {"gpio": {"pin_factory": "mock", "lights": lights, **{name: {"pin": pin} for name, pin in pins.items()}},
            "relay": {"pulse_ms": pulse_ms}, "signals": dict(signals), **sections}
    for name, extra in (gpio_extra or {}).items():
        data["gpio"].setdefault(name, {}).update(extra)
    return make_config(data)


@pytest.fixture
def boards():
    made = []
    yield made
    for board in made:
        board.close()


def board_for(boards, gate, config, faults=None):
    (board,) = compose.gpio_outputs(config, faults or Faults(), gate, simulate=False)
    boards.append(board)
    return board


def pin(board, number):
    return board.factory.pin(number)


def decision(verdict=Verdict.ADMIT, event_id="e1"):
    return Decision(verdict, at=utc_now(), event_id=event_id)


def went_on(pin, since: int = 0) -> bool:
    """Whether the pin was driven high at any point of its history from entry `since` on."""
    return any(entry.state for entry in pin.states[since:])


def on_periods(states):
    """(start offset, length) of every high period in a MockPin history, in seconds since its first entry."""
    t, periods, since = 0.0, [], None
    for entry in states[1:]:
        t += entry.timestamp
        if entry.state and since is None:
            since = t
        elif not entry.state and since is not None:
            periods.append((since, t - since))
            since = None
    return periods, since is not None


def test_relay_is_created_off_and_pulses_once_on_admit(boards, gate):
    board = board_for(boards, gate, gpio_config())
    relay = pin(board, 24)
    assert relay.state is False and [s.state for s in relay.states] == [False]
    board.act(decision())
    wait_for(lambda: len(relay.states) >= 3)
    (period,), still_on = on_periods(relay.states)
    assert not still_on
    assert period[1] >= 0.09  # no upper bound: a loaded machine may switch it off late


@pytest.mark.parametrize("verdict", [Verdict.REPEAT, Verdict.NOT_IN_GROUP, Verdict.EXPIRED, Verdict.NOT_RECOGNISED])
def test_no_relay_pulse_on_repeat_or_denial(boards, verdict, gate):
    board = board_for(boards, gate, gpio_config())
    board.act(decision(verdict))
    wait_for(lambda: went_on(pin(board, 27)))  # red instead
    assert [s.state for s in pin(board, 24).states] == [False]


def test_active_low_relay_board(boards, gate):
    board = board_for(boards, gate, gpio_config(gpio_extra={"relay": {"active_high": False}}))
    relay = pin(board, 24)
    assert relay.state is True  # off is the high level on an active-low board
    board.act(decision())
    wait_for(lambda: relay.state is False)
    wait_for(lambda: relay.state is True)


def test_relay_never_stays_on_under_a_burst_of_admits(boards, gate):
    board = board_for(boards, gate, gpio_config(pulse_ms=50))
    relay = pin(board, 24)
    for i in range(30):  # admits faster than the pulse: each restarts it, none may leave it on
        board.act(decision(event_id=str(i)))
        time.sleep(0.003)
    wait_for(lambda: relay.state is False)
    time.sleep(0.1)
    assert relay.state is False
    periods, still_on = on_periods(relay.states)
    assert periods and not still_on


def test_close_during_a_pulse_switches_the_relay_off_at_once(boards, gate):
    board = board_for(boards, gate, gpio_config(pulse_ms=LONG_PULSE_S * 1000))
    relay = pin(board, 24)
    board.act(decision())
    wait_for(lambda: relay.state is True)
    board.close()
    assert relay.state is False
    (period,), still_on = on_periods(relay.states)
    assert period[1] < LONG_PULSE_S and not still_on  # ended by close, not by the pulse's timer
    board.act(decision())  # a late decision after close does nothing
    assert relay.state is False


def test_admit_shows_green_and_beeps_once_denial_red_and_two_beeps(boards, gate):
    board = board_for(boards, gate, gpio_config())
    green, red, buzzer = pin(board, 17), pin(board, 27), pin(board, 23)
    board.act(decision(Verdict.ADMIT))
    wait_for(lambda: went_on(green))
    assert not went_on(red)
    wait_for(lambda: len(green.states) >= 3 and len(buzzer.states) >= 3)
    (light,), _ = on_periods(green.states)
    assert light[1] >= 0.07
    beeps, _ = on_periods(buzzer.states)
    assert len(beeps) == 1 and beeps[0][1] >= 0.015
    buzzer.clear_states()
    green_seen = len(green.states)
    board.act(decision(Verdict.NOT_IN_GROUP))
    wait_for(lambda: went_on(red))
    assert not went_on(green, since=green_seen)
    wait_for(lambda: len(on_periods(buzzer.states)[0]) >= 2 and not on_periods(buzzer.states)[1])
    assert len(on_periods(buzzer.states)[0]) == 2


def test_a_new_verdict_replaces_the_light_of_the_previous_one(boards, gate):
    board = board_for(boards, gate, gpio_config(signals={**FAST, "admit_light_s": 5, "deny_light_s": 5}))
    board.act(decision(Verdict.ADMIT))
    board.act(decision(Verdict.EXPIRED))
    wait_for(lambda: pin(board, 27).state is True)  # 5 s lights: still on when looked at, however loaded
    assert pin(board, 17).state is False


def test_faults_blink_amber_until_cleared(boards, gate):
    faults = Faults()
    board = board_for(boards, gate, gpio_config(), faults=faults)
    amber = pin(board, 22)
    assert amber.state is False
    faults.set("camera", "Camera not working")
    wait_for(lambda: len(amber.states) >= 6)  # blinking, 20 ms on / 20 ms off
    faults.set("serial", "Barcode scanner disconnected")
    faults.clear("camera")
    count = len(amber.states)
    wait_for(lambda: len(amber.states) >= count + 4)  # still one fault: still blinking
    faults.clear("serial")
    assert amber.state is False
    count = len(amber.states)
    time.sleep(0.08)
    assert len(amber.states) == count


def test_rgb_led_shows_amber_as_red_and_green_and_resumes_it_after_a_verdict(boards, gate):
    faults = Faults()
    pins = {"green": 17, "red": 27, "relay": 24}
    # a 1 s verdict: long enough that the checks below see it still showing, however loaded the machine
    config = gpio_config(pins, lights="rgb", signals={**FAST, "admit_light_s": 1})
    board = board_for(boards, gate, config, faults=faults)
    green, red = pin(board, 17), pin(board, 27)
    faults.set("snapshot_stale", "Member list out of date")
    wait_for(lambda: len(red.states) >= 5)
    board.act(decision(Verdict.ADMIT))
    wait_for(lambda: green.state is True)
    assert red.state is False  # the verdict wins over the fault
    red.clear_states()
    time.sleep(0.05)
    during = [s.state for s in red.states]
    if green.state:  # read after red's history: the verdict was still showing all that time
        assert during == [False]
    wait_for(lambda: len(red.states) >= 4)  # after the verdict the fault blinks again
    faults.clear("snapshot_stale")
    assert green.state is False and red.state is False


def test_only_configured_pins_are_created(boards, gate):
    board = board_for(boards, gate, gpio_config({"relay": 24}))
    assert board.lights is None and board.buzzer is None and board.inputs == []
    assert {info.name for info in board.factory.pins} == {"GPIO24"}


def test_no_pins_no_board(faults, gate):
    assert compose.gpio_outputs(make_config({"gpio": {"pin_factory": "mock"}}), faults, gate, simulate=False) == []


def test_simulate_uses_mockfactory_and_the_simulated_wiring(boards, caplog, gate, faults):
    config = make_config()  # pin_factory "lgpio", nothing fitted
    (board,) = compose.gpio_outputs(config, faults, gate, simulate=True)
    boards.append(board)
    assert type(board.factory).__name__ == "MockFactory"
    assert {info.name for info in board.factory.pins} == {f"GPIO{n}" for n in gpio.SIMULATED_PINS.values()}
    assert any("MockFactory" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert "door" not in faults.active()  # the simulated door starts shut


@pytest.mark.parametrize("pins, key", [({"green": 99}, "gpio.green.pin"), ({"green": 17, "red": 17}, "gpio.red.pin"),
                                       ({"relay": "GPIO_NOPE"}, "gpio.relay.pin")])
def test_bad_pins_are_config_errors(faults, gate, pins, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose.gpio_outputs(gpio_config(pins), faults, gate, simulate=False)


def test_pin_factory_by_name():
    assert type(gpio.pin_factory("mock")).__name__ == "MockFactory"
    with pytest.raises(OutputError, match="no pin factory 'nope'"):
        gpio.pin_factory("nope")


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None, reason="lgpio is installed")
def test_missing_lgpio_says_how_to_get_it():
    with pytest.raises(OutputError, match="python3-lgpio"):
        gpio.pin_factory("lgpio")


# -- inputs ------------------------------------------------------------------------------

def test_exit_button_is_a_journalled_admit_that_pulses_the_relay(boards, gate, journal):
    board = board_for(boards, gate, gpio_config({"relay": 24, "exit_button": 5}))
    gate.add_output(board)
    button = pin(board, 5)
    button.drive_low()  # pressed: contact to ground against the pull-up
    button.drive_high()
    (d,) = drain(gate, 1)
    assert d.verdict is Verdict.ADMIT and d.source == "exit_button" and d.reason == "Request to exit"
    assert [e["source"] for e in journal.pending()] == ["exit_button"]
    wait_for(lambda: on_periods(pin(board, 24).states)[0])


def door_board(boards, gate, faults, **door):
    config = gpio_config({"relay": 24, "door": 6}, pulse_ms=50, door={"held_open_s": 0.1, "grace_s": 0.05, **door})
    board = board_for(boards, gate, config, faults=faults)
    gate.add_output(board)
    door = pin(board, 6)
    door.drive_low()  # shut: the contact closes against the pull-up
    assert "door" not in faults.active()
    return board, door


def test_door_opened_after_an_admit_is_fine_until_held_open(boards, gate, journal, faults):
    _, door = door_board(boards, gate, faults)
    gate.handle(Scan(raw="I-1001", source="camera"))
    door.drive_high()  # opened during the pulse
    assert "door" not in faults.active()
    wait_for(lambda: faults.active().get("door") == "Door held open")
    door.drive_low()
    assert "door" not in faults.active()
    assert [e["verdict"] for e in journal.pending()] == ["admit", "door_held_open"]


def test_door_opened_without_an_admit_is_forced(boards, gate, journal, faults):
    _, door = door_board(boards, gate, faults, held_open_s=5)
    door.drive_high()
    assert faults.active()["door"] == "Door forced open"
    door.drive_low()
    assert "door" not in faults.active()
    (event,) = journal.pending()
    assert event["verdict"] == "door_forced" and event["source"] == "door"


def test_door_opened_after_the_grace_period_is_forced(boards, gate, journal, faults):
    _, door = door_board(boards, gate, faults, held_open_s=5)
    gate.handle(Scan(raw="I-1001", source="camera"))
    time.sleep(0.05 + 0.05 + 0.05)  # pulse, grace, and then some
    door.drive_high()
    assert faults.active()["door"] == "Door forced open"


def test_passage_within_the_timeout_is_passed_else_not(boards, gate, journal):
    config = gpio_config({"relay": 24, "passage": 13}, passage={"timeout_s": 0.15})
    board = board_for(boards, gate, config)
    gate.add_output(board)
    first = gate.handle(Scan(raw="I-1001", source="camera"))
    second = gate.handle(Scan(raw="O-2001", source="camera"))
    sensor = pin(board, 13)
    sensor.drive_low()  # one person through: the oldest admit passed
    sensor.drive_high()

    def passed():
        return {e["id"]: e["passed"] for e in journal.pending()}

    wait_for(lambda: passed()[second.event_id] is not None)
    assert passed() == {first.event_id: True, second.event_id: False}
    gate.handle(Scan(raw="I-1005", source="camera"))  # expired: no admit, nothing to wait for
    time.sleep(0.2)
    assert len([p for p in passed().values() if p is None]) == 1


# -- the relay when things go wrong ------------------------------------------------------

def test_sigterm_during_a_pulse_leaves_the_relay_off(state_dir):
    from kiosk.app import App
    from kiosk.compose import run

    config = make_config({"state_dir": str(state_dir), "gate": {"sources": ["serial"]},
                          "serial": {"url": "loop://"}, "screen": {"enabled": "off"},
                          "gpio": {"pin_factory": "mock", "relay": {"pin": 24}},
                          "relay": {"pulse_ms": LONG_PULSE_S * 1000}})
    app = App(config)
    relay_pins = []

    def admit_then_sigterm():
        wait_for(lambda: app.gate.outputs)
        board = app.gate.outputs[0]
        relay_pins.append(board.factory.pin(24))
        app.gate.submit(Scan(raw="I-1001", source="serial"))
        wait_for(lambda: board.relay.is_on)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=admit_then_sigterm, daemon=True)
    helper.start()
    try:
        assert run(app, headless=True) == 0
        helper.join(5)
    finally:
        app.close()
    (period,), still_on = on_periods(relay_pins[0].states)
    assert not still_on and period[1] < LONG_PULSE_S  # ended by the shutdown, not by the pulse's timer


def test_relay_is_off_when_the_loop_dies(state_dir, monkeypatch):
    from kiosk.app import App
    from kiosk.compose import run

    config = make_config({"state_dir": str(state_dir), "gate": {"sources": ["serial"]},
                          "serial": {"url": "loop://"}, "gpio": {"pin_factory": "mock", "relay": {"pin": 24}},
                          "relay": {"pulse_ms": 20000}})
    app = App(config)
    original = app.gate.handle
    seen = []

    def handle_then_die(scan):
        original(scan)
        seen.append(app.gate.outputs[0].factory.pin(24))
        assert seen[0].state is True
        raise RuntimeError("the loop died")

    monkeypatch.setattr(app.gate, "handle", handle_then_die)
    threading.Timer(0.3, app.gate.submit, args=(Scan(raw="I-1001", source="serial"),)).start()
    try:
        with pytest.raises(RuntimeError, match="the loop died"):
            run(app, headless=True)
    finally:
        app.close()
    assert seen[0].state is False
    assert not on_periods(seen[0].states)[1]


def test_relay_is_off_when_the_interpreter_exits_mid_pulse(tmp_path):
    script = textwrap.dedent("""
        import atexit, sys
        from hardware import gpio
        from gpiozero import DigitalOutputDevice
        factory = gpio.pin_factory("mock")
        pin = factory.pin(24)
        atexit.register(lambda: print("relay at exit:", pin.state, flush=True))  # runs after the relay's own hook
        relay = gpio.Relay(DigitalOutputDevice(24, pin_factory=factory), pulse_s=30)
        relay.pulse()
        assert pin.state is True
        raise SystemExit("crashed mid-pulse")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "crashed mid-pulse" in result.stderr
    assert "relay at exit: False" in result.stdout


def test_signals_from_config():
    config = gpio_config(signals={"admit_beeps": 0, "deny_light_s": 1.5})
    assert gpio.Signals.from_config(config.signals) == replace(gpio.Signals(), admit_beeps=0, deny_light_s=1.5)
