"""The screen adapter on a real App (demo snapshot, real journal) and SDL's dummy video driver."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import logging  # noqa: E402
import time  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from hardware.screen import Screen  # noqa: E402
from kiosk import compose  # noqa: E402
from kiosk.app import App  # noqa: E402
from kiosk.config import Config, validate  # noqa: E402
from kiosk.display import IDLE, PIN, REASONS, RECENT, RESULT, STAFF, hash_pin  # noqa: E402
from kiosk.errors import OutputError  # noqa: E402
from kiosk.model import Verdict  # noqa: E402
from kiosk.ports import Scan  # noqa: E402

PIN_CODE = "2468"


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make_app(tmp_path, clock, *, pin: bool = True, locale: str = "en", size=(800, 480)) -> App:
    values = {"state_dir": str(tmp_path / "state"),
              "screen": {"size": list(size), "fullscreen": False, "locale": locale, "result_s": 3},
              "staff": {"pin_hash": hash_pin(PIN_CODE, iterations=1000) if pin else "", "long_press_s": 2}}
    return App(Config(validate(values, "test.toml"), "test.toml"), simulate=True, clock=clock)


@pytest.fixture
def app(tmp_path, clock):
    a = make_app(tmp_path, clock)
    yield a
    a.close()


@pytest.fixture
def screen(app):
    s = compose.open_screen(app, required=True)
    assert isinstance(s, Screen)
    s.monotonic = Ticker()
    app.gate.add_output(s)  # as kiosk.compose.run does
    pygame.event.clear()
    s.tick()
    yield s
    s.close()


def target(screen: Screen, action: str) -> tuple[int, int]:
    rects = [rect for rect, a in screen.frame.hits if a == action]
    assert rects, f"no {action!r} button on the {screen.display.view(screen.monotonic())} screen"
    return rects[0].center


def step(screen: Screen, seconds: float = 0.05) -> None:
    """One main-loop tick a little later (the frame-rate cap allows a frame every 1/fps s)."""
    screen.monotonic.t += seconds
    assert screen.tick()


def finger(screen: Screen, pos: tuple[int, int], *, up: bool = True) -> None:
    w, h = screen.window.get_size()
    args = {"x": pos[0] / w, "y": pos[1] / h, "dx": 0.0, "dy": 0.0, "touch_id": 1, "finger_id": 0, "pressure": 1.0}
    pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, args))
    if up:
        pygame.event.post(pygame.event.Event(pygame.FINGERUP, args))
    step(screen)


def mouse(screen: Screen, pos: tuple[int, int], *, up: bool = True) -> None:
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, {"pos": pos, "button": 1, "touch": False}))
    if up:
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, {"pos": pos, "button": 1, "touch": False}))
    step(screen)


def long_press(screen: Screen, press=finger) -> None:
    press(screen, (screen.window.get_width() // 2, screen.window.get_height() // 2), up=False)
    step(screen, 2.05)


def enter_pin(screen: Screen, code: str, tap=finger) -> None:
    for digit in code:
        tap(screen, target(screen, f"digit:{digit}"))
    tap(screen, target(screen, "ok"))


def test_a_decision_shows_at_once_then_idle_returns(app, screen):
    drawn = screen.frames
    decision = app.gate.handle(Scan("I-1003", "stdin"))
    assert screen.display.view(screen.monotonic()) == RESULT  # act() only set state...
    assert screen.frames == drawn
    step(screen)  # ...the main loop's tick draws it
    assert screen.frames == drawn + 1
    assert screen.window.get_at((5, 5))[:3] == (198, 40, 40)
    assert screen.display.recent[0].verdict == decision.verdict.value == "not_in_group"
    step(screen)
    assert screen.frames == drawn + 1  # nothing changed, nothing drawn
    step(screen, 3.1)
    assert screen.display.view(screen.monotonic()) == IDLE and screen.frames == drawn + 2


def test_a_new_scan_replaces_the_result_at_once(app, screen):
    app.gate.handle(Scan("I-1003", "stdin"))
    step(screen)
    screen.monotonic.t += 2
    app.gate.handle(Scan("I-1001", "stdin"))
    step(screen)
    assert screen.display.result.verdict is Verdict.ADMIT
    assert screen.window.get_at((5, 5))[:3] == (27, 133, 60)


def test_touch_opens_the_staff_panel_and_admits_manually_with_a_reason(app, screen):
    long_press(screen)
    assert screen.display.view(screen.monotonic()) == PIN
    enter_pin(screen, "1111")
    assert screen.display.view(screen.monotonic()) == PIN and screen.display.pin_error == "wrong"
    enter_pin(screen, PIN_CODE)
    assert screen.display.view(screen.monotonic()) == STAFF
    assert screen.display.status is not None and screen.display.status.cursor == "demo-1"
    before = app.journal.counts()["total"]
    finger(screen, target(screen, "goto:reasons"))
    assert screen.display.view(screen.monotonic()) == REASONS
    finger(screen, target(screen, "admit:guest"))
    assert app.journal.counts()["total"] == before  # queued for the gate's loop, not decided inside the screen's tick
    app.gate.handle(app.gate.scans.get_nowait())  # what the loop does next, on this thread
    assert app.gate.scans.empty()
    latest = app.journal.recent(1)[0]
    assert app.journal.counts()["total"] == before + 1
    assert (latest["source"], latest["verdict"], latest["reason"]) == ("staff", "admit", "Guest of a member")
    assert screen.display.view(screen.monotonic()) == RESULT
    assert screen.display.result.source == "staff"
    step(screen, 3.1)
    assert screen.display.view(screen.monotonic()) == STAFF  # back to the panel after the confirmation
    finger(screen, target(screen, "goto:recent"))
    assert screen.display.view(screen.monotonic()) == RECENT and screen.display.recent[0].source == "staff"
    finger(screen, target(screen, "goto:staff"))
    finger(screen, target(screen, "close"))
    assert screen.display.view(screen.monotonic()) == IDLE


def test_mouse_clicks_drive_the_panel_and_sync_now_calls_the_upstream(app, screen):
    calls = []
    app.sync.connect(lambda: calls.append("sync"))
    long_press(screen, press=mouse)
    enter_pin(screen, PIN_CODE, tap=mouse)
    assert screen.display.view(screen.monotonic()) == STAFF
    mouse(screen, target(screen, "sync"))
    assert calls == ["sync"] and screen.display.notice == "staff.sync_requested"


def test_sync_without_an_upstream_says_so(app, screen):
    long_press(screen)
    enter_pin(screen, PIN_CODE)
    finger(screen, target(screen, "sync"))
    assert screen.display.notice == "staff.sync_unavailable"


def test_synthesised_mouse_events_from_a_touch_are_not_counted_twice(app, screen):
    long_press(screen)
    pos = target(screen, "digit:5")
    w, h = screen.window.get_size()
    pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, {"x": pos[0] / w, "y": pos[1] / h, "touch_id": 1,
                                                             "finger_id": 0}))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, {"pos": pos, "button": 1, "touch": True}))
    step(screen)
    assert screen.display.pin_entry == "5"


def test_faults_show_a_banner_until_cleared(app, screen):
    app.faults.set("camera", "camera not responding")
    step(screen)
    w = screen.window.get_width()
    assert screen.window.get_at((w - 3, 3))[:3] == (255, 179, 0)
    app.faults.clear("camera")
    step(screen)
    assert screen.window.get_at((w - 3, 3))[:3] != (255, 179, 0)


def test_closing_the_window_stops_the_loop(screen):
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert screen.tick() is False


def test_without_a_pin_hash_the_panel_says_it_is_disabled(tmp_path, clock):
    app = make_app(tmp_path, clock, pin=False, locale="nl", size=(480, 320))
    screen = compose.open_screen(app, required=True)
    try:
        screen.monotonic = Ticker()
        step(screen)
        long_press(screen)
        assert screen.display.view(screen.monotonic()) == "disabled"
        assert [a for _, a in screen.frame.hits] == ["close"]
    finally:
        screen.close()
        app.close()


def test_recent_scans_are_seeded_from_the_journal(tmp_path, clock):
    app = make_app(tmp_path, clock)
    app.gate.handle(Scan("I-1001", "stdin"))
    app.gate.handle(Scan("HELLO-WORLD", "stdin"))
    screen = compose.open_screen(app, required=True)
    try:
        assert [(r.name, r.verdict) for r in screen.display.recent] == [("", "not_recognised"),
                                                                        ("Jane Smith", "admit")]
    finally:
        screen.close()
        app.close()


def test_no_display_means_no_screen_or_a_clear_error(app, monkeypatch, caplog):
    monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-driver")
    with caplog.at_level(logging.WARNING, logger="hardware.screen"):
        assert compose.open_screen(app, required=False) is None
    assert "running without the screen" in caplog.text
    with pytest.raises(OutputError, match='screen.enabled = "on" but the screen cannot open'):
        compose.open_screen(app, required=True)


def test_the_members_photo_appears_beside_the_name_when_show_photo_is_on(tmp_path, clock):
    """A real reference upstream serves the photo; the screen asks for it on the result and shows it."""
    from kiosk import demo
    from kiosk.photos import demo_photo, photo_field
    from kiosk.upstream.reference import RefStore, RefUpstream
    from kiosk.snapshot import load_records

    ref = RefUpstream(RefStore(tmp_path / "up.sqlite"), "tok").start()
    photo = demo_photo("I-1001")
    ref.photos["I-1001.png"] = photo
    records = demo.records(clock().date())
    for rec in records:
        if rec.get("id") == "I-1001":
            rec["photo"] = photo_field("photos/I-1001.png", photo)
    (tmp_path / "state").mkdir()
    load_records(tmp_path / "state" / "snapshot.sqlite", records,
                 {"cursor": "t-1", "synced_at": clock().isoformat(), "source": "test"}, mode="full")
    token = tmp_path / "token"
    token.write_text("tok\n")
    token.chmod(0o600)
    values = {"state_dir": str(tmp_path / "state"),
              "screen": {"size": [800, 480], "fullscreen": False, "show_photo": True},
              "upstream": {"url": ref.url, "token_file": str(token), "sync_interval_s": 3600}}
    app = App(Config(validate(values, "test.toml"), "test.toml"), simulate=True, clock=clock)
    screen = compose.open_screen(app, required=True)
    screen.monotonic = Ticker()
    app.gate.add_output(screen)
    try:
        app.gate.handle(Scan("I-1003", "stdin"))  # Bob has no photo: the screen is as without photos
        step(screen)
        assert screen.display.result.name == "Bob Jones" and "photo" not in screen.frame.boxes
        app.gate.handle(Scan("I-1001", "stdin"))
        for _ in range(400):  # until the background fetch lands (a state, not a time bound)
            step(screen, 0.001)
            if "photo" in screen.frame.boxes:
                break
            time.sleep(0.01)
        boxes = screen.frame.boxes
        assert screen.display.result.name == "Jane Smith"
        assert "photo" in boxes and boxes["name"].right < boxes["photo"].left
        assert list((tmp_path / "state" / "photos").glob("*.png"))
    finally:
        screen.close()
        app.close()
        ref.stop()
