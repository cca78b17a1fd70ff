"""`kiosk replay`, `kiosk check --at` and `kiosk occupancy` on a scripted day, through the real CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk import demo
from kiosk.access import AccessRules
from kiosk.cli import main
from kiosk.counts import Counts, punch_cards
from kiosk.gate import Gate
from kiosk.journal import Journal
from kiosk.ports import Scan
from kiosk.rules import Policy
from kiosk.snapshot import SnapshotStore, load_records

AMS = ZoneInfo("Europe/Amsterdam")
DAY = datetime(2026, 11, 28, tzinfo=AMS)  # a Saturday
PUNCH = "PUNCH-7"


def at(hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    records = demo.records(DAY.date()) + [
        {"type": "card", "code": PUNCH, "customer_id": "I-1002", "card_type": "PUNCH", "entries": 2,
         "entries_at": "2026-11-01T00:00:00Z"}]
    load_records(path / "snapshot.sqlite", records, {"cursor": "c-1", "synced_at": DAY.isoformat(),
                                                     "source": "test"})
    return path


def config(tmp_path: Path, name: str, rules: str, gate: str = "") -> str:
    path = tmp_path / name
    path.write_text(f'[gate]\ntimezone = "Europe/Amsterdam"\nmax_snapshot_age_h = 100000\n{gate}\n[rules]\n{rules}\n')
    return str(path)


# The scripted day: who scans when (TSV), and what the rules below make of it.
SCRIPT = [
    (at(8, 30), "I-1001"),  # before opening
    (at(10, 0), "I-1001"),  # admit (1 inside)
    (at(10, 0, 2), "I-1001"),  # repeat, not already_inside
    (at(10, 5), "O-2001"),  # admit (2 inside)
    (at(10, 6), "I-1001"),  # already inside
    (at(10, 10), PUNCH),  # full (2 of 2)
    (at(11, 0), "exit"),  # the exit button: one out
    (at(11, 1), PUNCH),  # admit, 1 entry left on the card (2 inside)
    (at(12, 0), "I-1003"),  # not in group, whatever the rules
    (at(13, 0), "exit"),
    (at(13, 0, 1), "exit"),
    (at(14, 0), "I-1001"),  # past the 60 min of timed passback: her limit of 1 a day
    (at(15, 0), "O-2001"),  # the same for Acme
    (at(23, 30), "O-2001"),  # after closing
]
RULES = ('hours = ["members: sat 09:00-23:00"]\nlimits = ["members: 1/day"]\ncapacity = 2\n'
         'passback = true\npassback_min = 60\n')
EXPECTED = ["outside_hours", "admit", "repeat", "admit", "already_inside", "full", "admit", "admit", "not_in_group",
            "admit", "admit", "limit_reached", "limit_reached", "outside_hours"]


def tsv(rows) -> str:
    return "".join(f"{t.isoformat()}\t{text}\n" for t, text in rows if text != "exit")


def journal_day(state: Path, tmp_path: Path, rules: AccessRules) -> Path:
    """The scripted day through a live Gate and its journal, exported with `kiosk journal --csv`."""
    clock_now = [SCRIPT[0][0]]
    snapshot = SnapshotStore(state / "snapshot.sqlite")
    journal = Journal(state / "journal.sqlite")
    policy = Policy(groups=("members",), tz=AMS, max_snapshot_age_h=100000, access=rules)
    gate = Gate(gate_id="lounge-1", snapshot=snapshot, journal=journal, policy=policy, clock=lambda: clock_now[0])
    verdicts = []
    for moment, text in SCRIPT:
        clock_now[0] = moment
        if text == "exit":
            verdicts.append(gate.admit_manually("exit_button", "Exit button").verdict.value)
        else:
            verdicts.append(gate.handle(Scan(raw=text, source="camera")).verdict.value)
    journal.close()
    snapshot.close()
    assert verdicts == EXPECTED
    out = tmp_path / "day.csv"
    assert main(["journal", "--csv", str(out), "--state-dir", str(state)]) == 0
    return out


def events_of(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_replay_of_a_journal_export_gives_the_live_verdicts_and_journals_nothing(state, tmp_path, capsys):
    rules = AccessRules.from_config(_section(tmp_path, RULES))
    export = journal_day(state, tmp_path, rules)
    before = (state / "journal.sqlite").stat().st_size, sorted(p.name for p in state.iterdir())
    capsys.readouterr()
    assert main(["replay", str(export), "--config", config(tmp_path, "k.toml", RULES), "--state-dir", str(state)]) == 0
    captured = capsys.readouterr()
    events = events_of(captured.out)
    assert [e["verdict"] for e in events] == EXPECTED
    assert [e["source"] for e in events][6] == "exit_button"
    assert events[7]["reason"] == "Welcome (1 entry left on the card)"
    assert events[0]["reason"] == "Members: from 09:00"
    assert events[5]["reason"] == "Full: 2 of 2 inside; please wait"
    table = [line.split() for line in captured.err.splitlines()]
    assert table[0] == ["verdict", "count"]
    assert ["admit", "6"] in table and ["limit_reached", "2"] in table and table[-1] == ["total", "14"]
    assert ((state / "journal.sqlite").stat().st_size, sorted(p.name for p in state.iterdir())) == before
    reader = Journal(state / "journal.sqlite", readonly=True)
    assert reader.counts()["total"] == len(SCRIPT)  # the replay added nothing
    reader.close()


def test_replay_tries_a_new_rule_on_the_same_day(state, tmp_path, capsys):
    """A venue tries capacity 3 and no passback on the day's scans: the TSV form, in any order."""
    rows = list(reversed(SCRIPT))  # replay sorts by time
    (tmp_path / "day.tsv").write_text("# saturday\n" + tsv(rows))
    new = config(tmp_path, "new.toml", 'hours = ["members: sat 09:00-23:00"]\ncapacity = 3\n')
    assert main(["replay", str(tmp_path / "day.tsv"), "--config", new, "--state-dir", str(state)]) == 0
    verdicts = [e["verdict"] for e in events_of(capsys.readouterr().out)]
    # no exits in TSV: I-1001, O-2001 and the punch card fill the three places; the punch card's second
    # entry and the later scans find the lounge full
    assert verdicts == ["outside_hours", "admit", "repeat", "admit", "admit", "admit", "full", "not_in_group",
                        "full", "full", "outside_hours"]


def test_replay_rejects_bad_lines_by_number_and_keeps_the_rest(state, tmp_path, capsys):
    (tmp_path / "bad.tsv").write_text(f"{at(10).isoformat()}\tI-1001\nnot a scan\nyesterday\tI-1002\n"
                                      f"{at(11).isoformat()}\t\u202eI-1002\n")
    rc = main(["replay", str(tmp_path / "bad.tsv"), "--config", config(tmp_path, "k.toml", ""),
               "--state-dir", str(state)])
    captured = capsys.readouterr()
    assert rc == 1
    assert [e["verdict"] for e in events_of(captured.out)] == ["admit", "not_recognised"]
    assert "bad.tsv:2: expected ISO-TIME<TAB>scanned text" in captured.err
    assert "bad.tsv:3: 'yesterday' is not an ISO time" in captured.err
    assert "2 line(s) skipped" in captured.err
    assert main(["replay", str(tmp_path / "missing.tsv"), "--state-dir", str(state)]) == 2
    assert "missing.tsv" in capsys.readouterr().err


def test_check_at_a_time_uses_the_journals_counts_up_to_then(state, tmp_path, capsys):
    rules = AccessRules.from_config(_section(tmp_path, RULES))
    journal_day(state, tmp_path, rules)
    cfg = config(tmp_path, "k.toml", RULES)
    capsys.readouterr()
    assert main(["check", "O-2001", "--at", at(9, 59).isoformat(), "--json", "--config", cfg,
                 "--state-dir", str(state)]) == 0  # before Acme's first entry
    assert main(["check", "O-2001", "--at", at(16).isoformat(), "--json", "--config", cfg,
                 "--state-dir", str(state)]) == 1
    first, second = events_of(capsys.readouterr().out)
    assert first["verdict"] == "admit"
    assert (second["verdict"], second["reason"]) == ("limit_reached", "Members: 1 entry per day, 1 used; again from "
                                                     "Sun 00:00")
    assert main(["check", "I-1001", "--at", "noon", "--state-dir", str(state)]) == 2
    assert "--at" in capsys.readouterr().err


def test_occupancy_set_is_journalled_and_counted_after_a_restart(state, tmp_path, capsys):
    cfg = config(tmp_path, "k.toml", "capacity = 3")
    assert main(["occupancy", "set", "3", "--config", cfg, "--state-dir", str(state)]) == 0
    assert main(["occupancy", "--json", "--config", cfg, "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "occupancy set to 3" in out[0]
    assert json.loads(out[1])["occupancy"] == 3
    assert main(["check", "I-1001", "--config", cfg, "--state-dir", str(state)]) == 1
    assert capsys.readouterr().out.startswith("full: Full: 3 of 3 inside")
    assert main(["occupancy", "set", "--state-dir", str(state)]) == 2
    reader = Journal(state / "journal.sqlite", readonly=True)
    (event,) = reader.events()
    reader.close()
    assert (event["verdict"], event["raw"], event["source"]) == ("occupancy_set", "3", "cli")


def test_counts_survive_kill_9(state, tmp_path):
    """A gate process journals admits and is killed with SIGKILL; the counts rebuilt on start hold them all."""
    code = f"""
import os, signal
from datetime import datetime
from zoneinfo import ZoneInfo
from kiosk.access import AccessRules
from kiosk.gate import Gate
from kiosk.journal import Journal
from kiosk.ports import Scan
from kiosk.rules import Policy
from kiosk.snapshot import SnapshotStore
times = iter(datetime(2026, 11, 28, 10, m, tzinfo=ZoneInfo("Europe/Amsterdam")) for m in range(60))
gate = Gate(gate_id="g", snapshot=SnapshotStore({str(state / 'snapshot.sqlite')!r}),
            journal=Journal({str(state / 'journal.sqlite')!r}), clock=lambda: next(times),
            policy=Policy(tz=ZoneInfo("Europe/Amsterdam"), max_snapshot_age_h=1e6, access=AccessRules(passback=True)))
for text in ["I-1001", "O-2001", {PUNCH!r}, "I-1003"]:
    gate.handle(Scan(raw=text, source="camera"))
print(sorted(gate.counts.inside(datetime(2026, 11, 28, 11, tzinfo=ZoneInfo("Europe/Amsterdam")))), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    before = json.loads(child.stdout.replace("'", '"'))
    counts = Counts.rebuild(state / "journal.sqlite", AccessRules(passback=True), AMS,
                            punch_cards(state / "snapshot.sqlite"))
    assert counts.inside(at(11)) == before == ["I-1001", "I-1002", "O-2001"]
    assert counts.occupancy(at(11)) == 3
    assert counts.punch_uses("PUNCH-7", None) == 1
    # the Gate read the clock once at start
    assert counts.last_entry("O-2001") == datetime(2026, 11, 28, 10, 2, tzinfo=AMS)


def test_a_restarted_gate_remembers_the_repeat_window(state, tmp_path):
    journal = Journal(state / "journal.sqlite")
    snapshot = SnapshotStore(state / "snapshot.sqlite")
    now = [at(10)]
    policy = Policy(tz=AMS, max_snapshot_age_h=1e6)
    gate = Gate(gate_id="g", snapshot=snapshot, journal=journal, policy=policy, clock=lambda: now[0])
    assert gate.handle(Scan(raw="I-1001", source="camera")).verdict.value == "admit"
    now[0] = at(10, 0, 3)
    counts = Counts.rebuild(state / "journal.sqlite", policy.access, AMS)
    again = Gate(gate_id="g", snapshot=snapshot, journal=journal, policy=policy, clock=lambda: now[0], counts=counts)
    assert again.handle(Scan(raw="I-1001", source="camera")).verdict.value == "repeat"
    journal.close()
    snapshot.close()


def _section(tmp_path: Path, rules: str):
    from kiosk.config import load_file

    return load_file(config(tmp_path, "section.toml", rules)).rules


def test_replay_reads_its_own_export_formula_cells(tmp_path, state, capsys):
    """A scanned text that looks like a formula is neutralised in the CSV; replay reads it back as scanned."""
    journal = Journal(state / "journal.sqlite")
    journal.append(at=at(10), gate="g", source="camera", raw="=I-1001", credential="", verdict="not_recognised",
                   customer_id=None, groups=(), cursor="")
    journal.close()
    out = tmp_path / "x.csv"
    assert main(["journal", "--csv", str(out), "--state-dir", str(state)]) == 0
    assert "'=I-1001" in out.read_text()
    capsys.readouterr()
    assert main(["replay", str(out), "--state-dir", str(state), "--config", config(tmp_path, "k.toml", "")]) == 0
    (event,) = events_of(capsys.readouterr().out)
    assert event["raw"] == "=I-1001"


def test_the_demo_config_shows_the_rule_verdicts(tmp_path):
    """What ./scripts/demo runs (config/demo.toml, --simulate), fed the camera's demo scans on stdin."""
    root = Path(__file__).resolve().parents[2]
    lines = "".join(f"{text}\n" for text in demo.SCANS + demo.RULE_SCANS)
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--simulate", "--source", "stdin", "--events",
                             "--headless", "--config", str(root / "config" / "demo.toml"), "--state-dir",
                             str(tmp_path / "demo")], input=lines, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    verdicts = [e["verdict"] for e in events_of(result.stdout)]
    local = datetime.now().astimezone()
    alumni_open = local.weekday() == 6 and (6, 0) <= (local.hour, local.minute) < (6, 30)
    assert verdicts[8:] == ["full", "not_recognised", "admit" if alumni_open else "outside_hours", "limit_reached"]
    assert {"outside_hours", "limit_reached", "full"} <= set(verdicts) or alumni_open


def test_a_running_gate_follows_corrections_made_from_a_shell(state, tmp_path, capsys):
    cfg = config(tmp_path, "k.toml", "capacity = 2")
    journal = Journal(state / "journal.sqlite")
    snapshot = SnapshotStore(state / "snapshot.sqlite")
    rules = AccessRules(capacity=2)
    policy = Policy(tz=AMS, max_snapshot_age_h=1e6, access=rules)
    counts = Counts.rebuild(state / "journal.sqlite", rules, AMS)
    gate = Gate(gate_id="g", snapshot=snapshot, journal=journal, policy=policy, counts=counts)
    try:
        assert gate.handle(Scan(raw="I-1001", source="camera")).verdict.value == "admit"
        assert main(["occupancy", "set", "2", "--config", cfg, "--state-dir", str(state)]) == 0  # another process
        assert gate.handle(Scan(raw="O-2001", source="camera")).verdict.value == "admit"  # not seen yet
        assert counts.follow(state / "journal.sqlite") == 1
        assert counts.follow(state / "journal.sqlite") == 0  # each correction once
        assert gate.handle(Scan(raw="I-1002", source="camera")).verdict.value == "full"
        gate.set_occupancy(0)  # the gate's own correction counts at once, and is not followed again
        assert counts.follow(state / "journal.sqlite") == 0
        assert gate.handle(Scan(raw="I-1002", source="camera")).verdict.value == "admit"
    finally:
        journal.close()
        snapshot.close()
    assert "picks it up within 10 s" in capsys.readouterr().out


def test_replay_with_guests_from_the_scanner_key_and_from_an_export(state, tmp_path, capsys):
    rules = 'guests = ["members: 1"]\nguest_key = "+GUEST"\ncapacity = 3\n'
    day = [(at(10), "I-1001"), (at(10, 0, 20), "+GUEST"), (at(10, 0, 30), "+GUEST"), (at(10, 5), "O-2001"),
           (at(10, 5, 10), "+GUEST")]
    (tmp_path / "day.tsv").write_text(tsv(day))
    cfg = config(tmp_path, "k.toml", rules)
    assert main(["replay", str(tmp_path / "day.tsv"), "--config", cfg, "--state-dir", str(state)]) == 0
    events = events_of(capsys.readouterr().out)
    assert [(e["verdict"], e["source"]) for e in events] == [
        ("admit", "replay"), ("admit", "guest"), ("limit_reached", "guest"), ("admit", "replay"), ("full", "guest")]
    assert events[1]["name"] == "Guest of Jane Smith"
    # the same day from a journal export: guest rows replay as guests
    journal = Journal(state / "journal.sqlite")
    now = [at(10)]
    gate = Gate(gate_id="lounge-1", snapshot=SnapshotStore(state / "snapshot.sqlite"), journal=journal,
                policy=Policy(tz=AMS, max_snapshot_age_h=1e6,
                              access=AccessRules.from_config(_section(tmp_path, rules))), clock=lambda: now[0])
    for moment, text in day:
        now[0] = moment
        gate.handle(Scan(raw=text, source="serial"))
    gate.snapshot.close()
    journal.close()
    assert main(["journal", "--csv", str(tmp_path / "day.csv"), "--state-dir", str(state)]) == 0
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "day.csv"), "--config", cfg, "--state-dir", str(state)]) == 0
    assert [e["verdict"] for e in events_of(capsys.readouterr().out)] == [
        "admit", "admit", "limit_reached", "admit", "full"]


def test_with_rules_off_a_start_reads_only_the_recent_journal(state, tmp_path):
    from datetime import timedelta

    from kiosk.app import App
    from kiosk.config import load_file

    now = datetime.now(AMS)
    journal = Journal(state / "journal.sqlite")
    for who, ago in (("O-2001", timedelta(days=2)), ("I-1001", timedelta(seconds=2))):
        journal.append(at=now - ago, gate="lounge-1", source="camera", raw=who, credential=who, verdict="admit",
                       customer_id=who, groups=(), cursor="c-1")
    journal.close()
    # a repeat window of a minute: a loaded machine may take seconds to start the App
    off = App(load_file(config(tmp_path, "off.toml", "", gate="repeat_window_s = 60")).with_overrides(
        state_dir=str(state)))
    try:
        assert off.counts.last_entry("O-2001") is None  # two days back: not read
        assert off.gate.handle(Scan(raw="I-1001", source="camera")).verdict.value == "repeat"
    finally:
        off.close()
    on = App(load_file(config(tmp_path, "on.toml", "min_interval_min = 4320")).with_overrides(
        state_dir=str(state)))
    try:
        assert on.counts.last_entry("O-2001") is not None
        assert on.gate.handle(Scan(raw="O-2001", source="camera")).verdict.value == "limit_reached"
    finally:
        on.close()


def test_replay_of_a_broken_csv_export_names_the_lines(state, tmp_path, capsys):
    (tmp_path / "x.csv").write_text("id,at,gate,source,raw,credential,verdict\n"
                                    f"1,{at(10).isoformat()},g,camera,I-1001,I-1001,admit\n"
                                    "2,not-a-time,g,camera,I-1002\n3\n"
                                    f"4,{at(11).isoformat()},g,door,,,door_forced\n")
    assert main(["replay", str(tmp_path / "x.csv"), "--config", config(tmp_path, "k.toml", ""),
                 "--state-dir", str(state)]) == 1
    captured = capsys.readouterr()
    assert [e["raw"] for e in events_of(captured.out)] == ["I-1001"]  # the alarm is not a scan
    assert "x.csv:3: 'not-a-time' is not an ISO time" in captured.err and "x.csv:4: '' is not an ISO time" in \
        captured.err


def test_a_start_reads_as_far_back_as_the_rules_look(state, tmp_path):
    from datetime import timedelta

    from kiosk.app import App
    from kiosk.config import load_file

    now = datetime.now(AMS)
    # no punch card here: its uses could be older than any period, and then a start reads everything
    load_records(state / "snapshot.sqlite", demo.records(DAY.date()), {"cursor": "c-2", "synced_at": DAY.isoformat()})
    journal = Journal(state / "journal.sqlite")
    journal.append(at=now - timedelta(days=5), gate="lounge-1", source="camera", raw="O-2001", credential="O-2001",
                   verdict="admit", customer_id="O-2001", groups=(), cursor="c-1")
    journal.close()
    for rules, seen in (('limits = ["members: 1/day"]', False), ('limits = ["members: 1/week"]', True),
                        ('limits = ["members: 9/total"]', True)):
        app = App(load_file(config(tmp_path, "r.toml", rules)).with_overrides(state_dir=str(state)))
        try:
            assert (app.counts.last_entry("O-2001") is not None) is seen, rules
        finally:
            app.close()
    load_records(state / "snapshot.sqlite", [{"type": "card", "code": PUNCH, "customer_id": "I-1002",
                                              "card_type": "PUNCH", "entries": 5}], {"cursor": "c-3"}, mode="delta")
    app = App(load_file(config(tmp_path, "r.toml", 'limits = ["members: 1/day"]')).with_overrides(state_dir=str(state)))
    try:
        assert app.counts.last_entry("O-2001") is not None  # a punch card's uses may be old: all is read
    finally:
        app.close()
    # the journal itself keeps everything: only the start reads less
    reader = Journal(state / "journal.sqlite", readonly=True)
    assert reader.counts()["total"] == 1
    reader.close()


def test_replay_refuses_a_file_bigger_than_a_day(state, tmp_path, capsys, monkeypatch):
    from kiosk.cli import access as cli_access

    monkeypatch.setattr(cli_access, "MAX_REPLAY_BYTES", 1000)
    (tmp_path / "big.tsv").write_text(tsv([(at(10), "I-1001")]) * 100)
    assert main(["replay", str(tmp_path / "big.tsv"), "--state-dir", str(state)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "big.tsv" in captured.err and "replay a day's scans at a time" in captured.err


def test_replay_skips_a_staff_occupancy_row_that_is_not_a_correction(state, tmp_path, capsys):
    """A hostile or hand-edited export: the staff panel's source on an admit row. It used to end the replay with
    an AttributeError (the gate decides nothing for that source); it is not a scan, like an alarm row."""
    export = tmp_path / "day.csv"
    export.write_text("id,at,gate,source,raw,credential,verdict,customer_id,groups,cursor,reason\n"
                      f"x,{at(10).isoformat()},g,staff_occupancy,5,,admit,,,,\n"
                      f"y,{at(10, 1).isoformat()},g,camera,I-1001,I-1001,admit,I-1001,,,\n")
    assert main(["replay", str(export), "--config", config(tmp_path, "k.toml", ""), "--state-dir", str(state)]) == 0
    assert [e["verdict"] for e in events_of(capsys.readouterr().out)] == ["admit"]
