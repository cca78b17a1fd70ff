"""Hostile records (issue 9): any Unicode, NUL, escapes, bidi overrides and 100k-character fields go in
through CSV and NDJSON, then their ids are scanned through the gate with every headless output and the
screen renderer attached: always a decision, never a crash, nothing unprintable out; a bad record is
refused with its line. Speed is measured in scripts/bench_records.py, not asserted here."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hardware import screen_render  # noqa: E402
from hardware.screen import Screen, ScreenSettings  # noqa: E402
from kiosk.display import Display  # noqa: E402
from kiosk.errors import ImportRejected  # noqa: E402
from kiosk.gate import Gate  # noqa: E402
from kiosk.i18n import Messages  # noqa: E402
from kiosk.importer import import_files  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.model import Decision, Verdict  # noqa: E402
from kiosk.outputs import DecisionLog, EventPrinter  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.records import MAX_EMAIL, MAX_ID, MAX_NAME  # noqa: E402
from kiosk.rules import Policy  # noqa: E402
from kiosk.snapshot import SnapshotStore  # noqa: E402
from kiosk.text import has_unsafe  # noqa: E402
from kiosk.upstream.client import ClientSettings, UpstreamClient  # noqa: E402
from kiosk.upstream.limits import SyncLimits  # noqa: E402
from kiosk.upstream.sync import SyncError, sync_snapshot  # noqa: E402

LIMITS = SyncLimits(deadline_s=60, max_bytes=1 << 30, max_records=5_000_000, max_shrink=1.0)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
POLICY = Policy(groups="all", repeat_window_s=0, tz=timezone.utc)
UNSAFE = ["\x00", "\x1b", "\x1b]0;owned\x07", "\x1b[2J", "\x07", "\x7f", "\x9b", "\u202e", "\u2066", "\n", "\r", "\t"]

# -- strategies ---------------------------------------------------------------------------------

# any text but lone surrogates (a UTF-8 file cannot hold them) and line breaks (so that a row's line
# number is known: hostile values below do carry line breaks, in the middle of a field)
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
hostile = st.builds(lambda a, bad, b: f"a{a}{bad}{b}z", any_text, st.sampled_from(UNSAFE), any_text)
huge = st.builds(lambda c: c * 100_000, st.sampled_from(["x", "\u00e9", "\x1b", "\u202e", "\U0001d518", " a"]))
field = st.one_of(any_text, any_text, hostile, huge)
group_id = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n;|"),
                             max_size=12), hostile.filter(lambda g: ";" not in g and "|" not in g), huge)
customers = st.lists(st.tuples(field, field, field, field, st.lists(group_id, max_size=3)), min_size=1, max_size=4)


def bad(value: str, cap: int) -> bool:
    """The documented rule: a field, trimmed, is over its cap or holds an unsafe character."""
    value = value.strip()
    return len(value) > cap or has_unsafe(value)


def bad_customer(cid: str, first: str, last: str, email: str, groups: list[str]) -> bool:
    return (bad(cid, MAX_ID) or bad(first, MAX_NAME) or bad(last, MAX_NAME) or bad(email, MAX_EMAIL)
            or any(bad(g, MAX_ID) for g in groups))


def customer_id(i: int, suffix: str) -> str:
    return f"I-{i}x{suffix}"  # the digits then "x": unique whatever the suffix


# -- the loop -----------------------------------------------------------------------------------

class Renders:
    """An Output that draws each decision as the screen would (pygame, SDL dummy driver)."""

    def __init__(self) -> None:
        self.display = Display(result_s=3, long_press_s=2, pin_hash="")
        self.frames = 0

    def act(self, decision: Decision) -> None:
        self.display.show(decision, 1000.0)
        scene = screen_render.Scene(display=self.display, msg=Messages("en"), gate_name="Lounge", now=1000.0,
                                    wall=NOW, tz=timezone.utc)
        screen_render.render(scene, (480, 320))
        self.frames += 1

    def close(self) -> None:
        pass


def scan_all(snapshot_path: Path, journal_path: Path, raws: list[str], caplog) -> list[Decision]:
    """Scan every text through a Gate with the log, the events and the renderer attached; check what came out."""
    store = SnapshotStore(snapshot_path)
    journal = Journal(journal_path)
    events = io.StringIO()
    renders = Renders()
    gate = Gate(gate_id="g", snapshot=store, journal=journal, policy=POLICY,
                outputs=[DecisionLog(), EventPrinter("g", events), renders], clock=lambda: NOW)
    caplog.clear()
    try:
        decisions = [gate.handle(Scan(raw=raw, source="stdin")) for raw in raws]
        assert len(list(journal.events())) == len(raws)
    finally:
        journal.close()
        store.close()
    assert all(isinstance(d.verdict, Verdict) for d in decisions)
    assert renders.frames == len(raws)  # every decision drawn, none raised
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.outputs"]
    assert len(lines) == len(raws) and not any(has_unsafe(line) or len(line) > 1000 for line in lines)
    printed = events.getvalue().splitlines()
    assert len(printed) == len(raws) and not any(has_unsafe(line) for line in printed)
    assert [json.loads(line)["verdict"] for line in printed] == [d.verdict.value for d in decisions]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no output failed
    return decisions


# -- CSV ----------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=customers)
def test_hostile_csv_records_are_refused_with_their_line_or_import_and_scan_cleanly(rows, caplog):
    caplog.set_level(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.csv"
        records = [(customer_id(i, s), first, last, email, groups)
                   for i, (s, first, last, email, groups) in enumerate(rows)]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "first_name", "last_name", "email", "groups"])
            for cid, first, last, email, groups in records:
                writer.writerow([cid, first, last, email, ";".join(groups)])
        snapshot = Path(tmp) / "snapshot.sqlite"
        first_bad = next((i for i, r in enumerate(records) if bad_customer(*r)), None)
        if first_bad is not None:
            with pytest.raises(ImportRejected) as err:
                import_files(snapshot, [path], replace=True, now=NOW)
            message = str(err.value)
            # clean rows hold no line breaks, so the first bad row starts on line first_bad + 2
            assert message.startswith(f"{path}:{first_bad + 2}: ") and message.isprintable() and len(message) < 600
            assert not snapshot.exists()
            return
        import_files(snapshot, [path], replace=True, now=NOW)
        decisions = scan_all(snapshot, Path(tmp) / "journal.sqlite", [r[0] for r in records], caplog)
        store = SnapshotStore(snapshot)
        try:
            for (cid, *_), decision in zip(records, decisions, strict=True):
                held = store.customer(cid.strip())
                assert held is not None and not has_unsafe(held.display_name)
                if decision.customer_id:
                    assert decision.customer_id == held.id
        finally:
            store.close()


# -- NDJSON (the upstream's snapshot) ---------------------------------------------------------------

class _Upstream(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# in JSON a lone surrogate can travel (escaped), so NDJSON gets those too
json_field = st.one_of(field, st.builds(lambda a: f"a{a}\ud800z", any_text))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(st.tuples(json_field, json_field, json_field, json_field, st.lists(group_id, max_size=3)),
                     min_size=1, max_size=4))
def test_hostile_ndjson_records_are_refused_with_their_line_or_sync_and_scan_cleanly(rows, upstream, caplog):
    caplog.set_level(logging.INFO)
    records = [(customer_id(i, s), first, last, email, groups)
               for i, (s, first, last, email, groups) in enumerate(rows)]
    lines = [{"type": "header", "version": 1, "cursor": "c-1", "full": True}]
    lines += [{"type": "customer", "id": cid, "first_name": first, "last_name": last, "email": email, "groups": groups}
              for cid, first, last, email, groups in records]
    lines += [{"type": "group", "id": g.strip(), "name": g.strip()} for g in sorted({g for r in records for g in r[4]})
              if g.strip() and not bad(g, MAX_ID)]
    lines.append({"type": "end", "records": len(lines) - 1})
    _Upstream.body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    with tempfile.TemporaryDirectory() as tmp:
        token = Path(tmp) / "token"
        token.write_text("t0ken\n")
        token.chmod(0o600)
        client = UpstreamClient(ClientSettings(url=f"http://127.0.0.1:{upstream.server_address[1]}",
                                               token_file=str(token), ca_file="", timeout_s=5, device="test"))
        snapshot = Path(tmp) / "snapshot.sqlite"
        first_bad = next((i for i, r in enumerate(records) if bad_customer(*r)), None)
        try:
            if first_bad is not None:
                with pytest.raises(SyncError) as err:
                    sync_snapshot(client, snapshot, {}, NOW, limits=LIMITS)
                message = str(err.value)
                assert re.search(rf"\bline {first_bad + 2}\b", message), message
                assert message.isprintable() and len(message) < 600
                assert not snapshot.exists()
                return
            sync_snapshot(client, snapshot, {}, NOW, limits=LIMITS)
        finally:
            client.http.close()
        scan_all(snapshot, Path(tmp) / "journal.sqlite", [r[0] for r in records], caplog)


# -- a snapshot written before the checks existed -------------------------------------------------

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(name=st.one_of(field, st.text()), group=st.one_of(field, st.text()))
def test_unchecked_names_in_an_old_snapshot_are_still_decided_logged_and_drawn_safely(state_dir, caplog, name, group):
    caplog.set_level(logging.INFO)
    path = state_dir / "snapshot.sqlite"
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE customers SET first_name = ?, last_name = ?, groups = ? WHERE key = 'I-1001'",
                   (name, name, json.dumps([group, "members"])))
        db.execute("INSERT OR REPLACE INTO groups VALUES (?, ?, 1)", (group, group))
    db.close()
    with tempfile.TemporaryDirectory() as tmp:
        decisions = scan_all(path, Path(tmp) / "journal.sqlite", ["I-1001", "O-2001"], caplog)
    assert decisions[0].customer_id == "I-1001"


# -- the screen -----------------------------------------------------------------------------------

class _CountingFont:
    """A real font that records the length of every text it is asked to measure or draw."""

    def __init__(self, font, seen: list[str]):
        self._font, self._seen = font, seen

    def size(self, text):
        self._seen.append(text)
        return self._font.size(text)

    def render(self, text, *args):
        self._seen.append(text)
        return self._font.render(text, *args)

    def __getattr__(self, name):
        return getattr(self._font, name)


def _measured(monkeypatch, name: str) -> list[str]:
    real = screen_render.Fonts()
    seen: list[str] = []

    class Counting:
        def get(self, size, bold=False, narrow=False):
            return _CountingFont(real.get(size, bold, narrow), seen)

        def __getattr__(self, name):  # cap_ratio, size_for_cap: the font's measures, not the text's
            return getattr(real, name)

    monkeypatch.setattr(screen_render, "fonts", lambda: Counting())
    display = Display(result_s=3, long_press_s=2, pin_hash="")
    display.show(Decision(Verdict.ADMIT, at=NOW, customer_id="I-1", name=name, groups=(name, "Members"),
                          matched_groups=("Members",), reason="Member"), 1000.0)
    scene = screen_render.Scene(display=display, msg=Messages("en"), gate_name=name, now=1000.0, wall=NOW,
                                tz=timezone.utc)
    frame = screen_render.render(scene, (800, 480))
    assert frame.boxes["name"].width > 0
    return seen


def test_a_60000_character_name_with_nul_and_escapes_renders_with_bounded_text(monkeypatch):
    pygame.font.init()
    hostile_name = ("Jane\x00Smith\x1b]0;owned\x07 " * 3000)[:60_000]
    seen = _measured(monkeypatch, hostile_name)
    assert seen and max(len(t) for t in seen) <= screen_render.TEXT_LIMIT
    assert not any(has_unsafe(t) for t in seen)
    # the work is the same as for a name already at the cap: the length beyond it costs nothing
    at_cap = _measured(monkeypatch, hostile_name[:screen_render.TEXT_LIMIT - 1] + "\u2026")
    assert len(seen) == len(at_cap) and sum(map(len, seen)) == sum(map(len, at_cap))


def test_a_screen_that_cannot_draw_is_a_fault_logged_once_and_the_gate_keeps_deciding(tmp_path, clock, monkeypatch,
                                                                                      caplog):
    from kiosk import compose
    from kiosk.app import App
    from kiosk.config import Config, validate

    values = {"state_dir": str(tmp_path / "state"), "screen": {"size": [480, 320], "fullscreen": False}}
    app = App(Config(validate(values, "t.toml"), "t.toml"), simulate=True, clock=clock)
    pygame.display.init()
    settings = ScreenSettings.from_config(app.config)
    screen = Screen(settings, compose.screen_ports(app, settings), pygame.display.set_mode((480, 320)))
    app.gate.add_output(screen)
    calls = []

    def broken(*args):
        calls.append(args)
        raise pygame.error("out of video memory")

    monkeypatch.setattr(screen_render, "render", broken)
    ticker = iter(range(1000, 2000))
    screen.monotonic = lambda: float(next(ticker))
    try:
        with caplog.at_level(logging.ERROR):
            for raw in ("I-1001", "I-1003", "O-2001"):
                decision = app.gate.handle(Scan(raw=raw, source="stdin"))
                assert screen.tick() is True
                assert isinstance(decision.verdict, Verdict)
        assert len(calls) >= 3 and app.gate.decided == 3
        assert "screen" in app.faults.active()
        assert len([r for r in caplog.records if "drawing the screen failed" in r.getMessage()]) == 1
        monkeypatch.undo()
        app.gate.handle(Scan(raw="I-1001", source="stdin"))
        assert screen.tick() is True and "screen" not in app.faults.active()
    finally:
        screen.close()
        app.close()


# -- the terminal -----------------------------------------------------------------------------------

def _kiosk(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True)


def test_find_and_journal_print_nothing_unprintable_from_an_old_snapshot_or_journal(state_dir):
    path = state_dir / "snapshot.sqlite"
    db = sqlite3.connect(path)
    with db:  # written as a snapshot from before the record checks could hold it
        db.execute("UPDATE customers SET first_name = ?, email = ? WHERE key = 'I-1001'",
                   ("Ja\x1b]0;owned\x07ne\u202e", "jane\x1b[2J@example.org"))
        db.execute("UPDATE cards SET batch = ? WHERE customer_key = 'I-1001'", ("\x9b31m",))
    db.close()
    for args in (("find", "Smith"), ("find", "Smith", "--json")):
        done = _kiosk(*args, "--state-dir", str(state_dir))
        assert done.returncode == 0 and "I-1001" in done.stdout, done.stderr
        assert not has_unsafe(done.stdout.replace("\n", "")), done.stdout
    found = json.loads(_kiosk("find", "Smith", "--json", "--state-dir", str(state_dir)).stdout)
    assert found[0]["name"].startswith("Ja\ufffd")
    journal = Journal(state_dir / "journal.sqlite")
    journal.append(at=NOW, gate="g\x1b[31m", source="stdin\u202e", raw="I-1001\u202egpj.exe", credential="",
                   verdict="not_recognised", customer_id="I-1\x1b[2J", groups=(), cursor="")
    journal.close()
    done = _kiosk("journal", "--state-dir", str(state_dir))
    assert done.returncode == 0 and "gpj.exe" in done.stdout
    assert not has_unsafe(done.stdout.replace("\n", "")), done.stdout


def test_check_prints_nothing_unprintable_from_an_old_snapshot(state_dir):
    path = state_dir / "snapshot.sqlite"
    db = sqlite3.connect(path)
    with db:  # written as a snapshot from before the record checks could hold it
        db.execute("UPDATE customers SET first_name = ?, groups = ? WHERE key = 'I-1001'",
                   ("Ja\x1b]0;owned\x07ne\u202e", json.dumps(["members", "vip\x9b31m"])))
    db.close()
    for args in (("check", "I-1001"), ("check", "I-1001", "--json")):
        done = _kiosk(*args, "--state-dir", str(state_dir))
        assert done.returncode in (0, 1) and "I-1001" in done.stdout, done.stderr
        assert not has_unsafe(done.stdout.replace("\n", "")), done.stdout
    event = json.loads(_kiosk("check", "I-1001", "--json", "--state-dir", str(state_dir)).stdout)
    assert event["name"].startswith("Ja\x1b]0;owned")  # JSON keeps the text, escaped


def test_journal_csv_to_a_missing_directory_is_one_clear_line(state_dir):
    Journal(state_dir / "journal.sqlite").close()
    done = _kiosk("journal", "--state-dir", str(state_dir), "--csv", "/nonexistent/x.csv")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "wrote" not in done.stdout
    assert done.stderr.strip().splitlines() == ["kiosk: cannot write /nonexistent/x.csv: No such file or directory"]


def test_kiosk_run_logs_every_decision_at_info_with_a_screen_too(state_dir, tmp_path):
    import subprocess
    import sys

    config = tmp_path / "kiosk.toml"
    # the demo snapshot is dated by the test clock, days before the wall clock: stale, so say how to treat it
    config.write_text('[gate]\nstale_policy = "warn"\n'
                      '[screen]\nenabled = "on"\nfullscreen = false\nsize = [480, 320]\n')
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--source", "stdin", "--config", str(config),
                           "--state-dir", str(state_dir)], input="I-1001\nHELLO\x1b[2J\n", capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "screen 480x320 via SDL dummy driver" in done.stderr  # the screen was there
    lines = [line for line in done.stderr.splitlines() if " INFO kiosk.outputs: " in line]
    assert len(lines) == 2, done.stderr
    assert "ADMIT Jane Smith (I-1001)" in lines[0] and "NOT_RECOGNISED" in lines[1]
    assert not has_unsafe(done.stderr.replace("\n", ""))
