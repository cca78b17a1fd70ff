"""The access rules' verdicts on the GPIO header (gpiozero MockFactory): denials, so red, two beeps, no relay."""

from __future__ import annotations

import time

import pytest

from kiosk import compose
from kiosk.config import Config, validate
from kiosk.gate import Gate, utc_now
from kiosk.model import Decision, Verdict
from kiosk.ports import Faults
from kiosk.rules import Policy

RULE_VERDICTS = [Verdict.OUTSIDE_HOURS, Verdict.LIMIT_REACHED, Verdict.FULL, Verdict.ALREADY_INSIDE]


@pytest.fixture
def board(snapshot, journal, clock):
    config = Config(validate({"gpio": {"pin_factory": "mock", "green": {"pin": 17}, "red": {"pin": 27},
                                       "buzzer": {"pin": 23}, "relay": {"pin": 24}},
                              "relay": {"pulse_ms": 100},
                              "signals": {"deny_light_s": 30, "beep_s": 0.02, "deny_beeps": 2}}, "t.toml"), "t.toml")
    gate = Gate(gate_id="t", snapshot=snapshot, journal=journal, policy=Policy(), clock=clock)
    (made,) = compose.gpio_outputs(config, Faults(), gate, simulate=False)
    yield made
    made.close()


@pytest.mark.parametrize("verdict", RULE_VERDICTS)
def test_rule_verdicts_show_red_beep_twice_and_never_open_the_door(board, verdict):
    board.act(Decision(verdict, at=utc_now(), event_id="e1"))
    buzzer = board.factory.pin(23)
    deadline = time.monotonic() + 10
    while sum(1 for s in buzzer.states if s.state) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(1 for s in buzzer.states if s.state) == 2  # the deny pattern
    assert board.factory.pin(27).state is True and board.factory.pin(17).state is False
    assert [s.state for s in board.factory.pin(24).states] == [False]  # the relay never moved
