""""+1 guest" on the result screen and the staff panel's occupancy correction (issue 11), on a real App
(demo snapshot, real journal) and SDL's dummy video driver: taps go through the gate's scan queue."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
import pytest  # noqa: E402

from hardware.screen import Screen  # noqa: E402
from kiosk import compose  # noqa: E402
from kiosk.app import App  # noqa: E402
from kiosk.config import Config, validate  # noqa: E402
from kiosk.counts import OCCUPANCY_SET  # noqa: E402
from kiosk.display import RESULT, STAFF, hash_pin  # noqa: E402
from kiosk.gate import OCCUPANCY_SOURCE  # noqa: E402
from kiosk.model import Verdict  # noqa: E402
from kiosk.ports import Scan  # noqa: E402

from test_screen import PIN_CODE, Ticker, enter_pin, finger, long_press, step, target  # noqa: E402


@pytest.fixture
def app(tmp_path, clock):
    # Pieter (I-1002, members + patrons) may bring 2 guests; Jane (I-1001, members) none
    values = {"state_dir": str(tmp_path / "state"), "gate": {"groups": ["members", "patrons"]},
              "screen": {"size": [800, 480], "fullscreen": False, "locale": "en", "result_s": 3},
              "staff": {"pin_hash": hash_pin(PIN_CODE, iterations=1000), "long_press_s": 2},
              "rules": {"guests": ["patrons: 2"], "capacity": 10}}
    a = App(Config(validate(values, "test.toml"), "test.toml"), simulate=True, clock=clock)
    yield a
    a.close()


@pytest.fixture
def screen(app):
    s = compose.open_screen(app, required=True)
    assert isinstance(s, Screen)
    s.monotonic = Ticker()
    app.gate.add_output(s)
    pygame.event.clear()
    s.tick()
    yield s
    s.close()


def run_queue(app) -> None:
    """What the gate's loop does with the queued scans, in order, on this thread."""
    while not app.gate.scans.empty():
        app.gate.handle(app.gate.scans.get_nowait())


def events(app, **match) -> list[dict]:
    return [e for e in app.journal.recent(50) if all(e[k] == v for k, v in match.items())]


def hits(screen) -> set[str]:
    return {action for _, action in screen.frame.hits}


def test_plus_one_guest_is_queued_journalled_counted_and_gone_when_used(app, screen, tmp_path):
    member = app.gate.handle(Scan("I-1002", "stdin"))
    assert (member.verdict, member.guests) == (Verdict.ADMIT, 2)
    step(screen)
    pygame.image.save(screen.frame.surface, str(tmp_path / "guest_offered.png"))
    assert "guest" in hits(screen) and screen.display.guests(screen.monotonic()) == (0, 2)
    assert app.gate.counts.occupancy(app.clock()) == 1
    for used in (1, 2):
        finger(screen, target(screen, "guest"))
        assert [s.source for s in list(app.gate.scans.queue)] == ["guest"]  # asked, not decided on the spot
        assert len(events(app, source="guest")) == used - 1
        run_queue(app)
        step(screen)
        guests = events(app, source="guest", verdict="admit")
        assert len(guests) == used and guests[0]["raw"] == "guest:I-1002"
        assert app.gate.counts.occupancy(app.clock()) == 1 + used
        assert screen.display.view(screen.monotonic()) == RESULT
        assert screen.display.guests(screen.monotonic()) == (used, 2)
    pygame.image.save(screen.frame.surface, str(tmp_path / "guests_used.png"))
    assert "guest" not in hits(screen)  # the allowance is used: no button
    finger(screen, (650, 330))  # where the button was: nothing more is asked
    assert app.gate.scans.empty()


def test_no_guest_button_for_a_member_without_guests_or_after_the_next_scan(app, screen):
    app.gate.handle(Scan("I-1001", "stdin"))
    step(screen)
    assert screen.display.view(screen.monotonic()) == RESULT and "guest" not in hits(screen)
    app.gate.handle(Scan("I-1002", "stdin"))
    step(screen)
    assert "guest" in hits(screen)
    app.gate.handle(Scan("I-1003", "stdin"))  # someone else: Pieter's guests are not theirs
    step(screen)
    assert "guest" not in hits(screen)


def test_the_staff_panel_corrects_the_occupancy_through_the_queue(app, screen, tmp_path):
    app.gate.handle(Scan("I-1001", "stdin"))
    step(screen, 3.1)  # the result is gone
    long_press(screen)
    enter_pin(screen, PIN_CODE)
    assert screen.display.view(screen.monotonic()) == STAFF
    assert screen.display.inside == 1 and "inside" in screen.frame.boxes
    for change, expected in (("+1", 2), ("+1", 3), ("-1", 2), ("0", 0), ("-1", 0)):
        finger(screen, target(screen, f"occupancy:{change}"))
        assert [(s.source, s.raw) for s in list(app.gate.scans.queue)] == [(OCCUPANCY_SOURCE, change)]
        run_queue(app)
        step(screen)
        assert app.gate.counts.occupancy(app.clock()) == expected == screen.display.inside
    pygame.image.save(screen.frame.surface, str(tmp_path / "staff_occupancy.png"))
    corrections = events(app, verdict=OCCUPANCY_SET)
    assert sorted(e["raw"] for e in corrections) == ["0", "0", "2", "2", "3"]
    assert {e["source"] for e in corrections} == {"staff"}


def test_a_bad_occupancy_correction_is_refused_and_journals_nothing(app):
    before = len(app.journal.recent(50))
    for raw in ("+2", "many", "", "-1\x1b[2J"):
        assert app.gate.handle(Scan(raw, OCCUPANCY_SOURCE)) is None
    assert len(app.journal.recent(50)) == before and app.gate.counts.occupancy(app.clock()) == 0
