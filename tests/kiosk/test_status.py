"""Live status across processes, typed outcomes, and read-only commands that create nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path


from kiosk import demo
from kiosk.display import Status, last_sync_text
from kiosk.i18n import Messages
from kiosk.state import SyncOutcome
from kiosk.status import STATUS_FILE, JournalStatus, KioskStatus, SnapshotStatus, publish
from waits import wait_for



def kiosk(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, **kw)



def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- the staff panel's "last sync" -------------------------------------------------------------

def test_the_staff_panel_shows_why_the_last_sync_failed():
    # what the upstream thread stores after a failed sync, through the status the screen reads
    stored = SyncOutcome(at="2026-11-22T09:55:00.000Z", ok=False, error="HTTP 401: token refused", failures=2)
    status = Status.from_status(KioskStatus(gate="g", device="d", snapshot=SnapshotStatus(), journal=JournalStatus(),
                                            last_sync=SyncOutcome.from_json(stored.to_json())), upstream=True)
    wall = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    text = last_sync_text(status.last_sync, Messages("en"), wall)
    assert text == "failed, 5 min ago: HTTP 401: token refused"
    assert status.online is False
    assert last_sync_text(SyncOutcome.from_json({"at": "2026-11-22T09:59:00Z", "ok": True}), Messages("en"),
                          wall) == "OK, 1 min ago"
    assert last_sync_text(None, Messages("en"), wall) == "never"


def test_outcomes_read_back_what_was_stored_and_ignore_what_is_not_one():
    outcome = SyncOutcome(at="t", ok=True, kind="delta", cursor="c-9", changed=3)
    assert SyncOutcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome
    assert SyncOutcome.from_json({"at": "t", "ok": True, "from_a_newer_kiosk": 1}) == SyncOutcome(at="t", ok=True)
    assert SyncOutcome.from_json("ok") is None and SyncOutcome.from_json(None) is None


# -- the running kiosk's status in another process ---------------------------------------------


def test_kiosk_status_in_another_process_shows_the_running_kiosks_faults(tmp_path, ref):
    state = tmp_path / "state"
    demo.seed(state / "snapshot.sqlite", datetime.now(timezone.utc))
    token = tmp_path / "token"
    token.write_text("not-the-token\n")  # the upstream answers 401: a fault only the running kiosk knows
    token.chmod(0o600)
    config = tmp_path / "kiosk.toml"
    config.write_text(f'state_dir = "{state}"\n[upstream]\nurl = "{ref.url}"\ntoken_file = "{token}"\n'
                      'sync_interval_s = 1\nretry_max_s = 1\nheartbeat_s = 1\n')
    child = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--source", "stdin", "--headless",
                              "--config", str(config)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        def live() -> dict:
            try:
                return json.loads((state / STATUS_FILE).read_text())
            except (OSError, ValueError):
                return {}

        wait_for(lambda: "token" in live().get("faults", {}), "the running kiosk publishing its token fault")
        shown = kiosk("status", "--config", str(config))
        assert shown.returncode == 0, shown.stderr
        assert f"running (pid {child.pid}" in shown.stdout
        assert "fault     token: Upstream refused the kiosk's token" in shown.stdout
        assert "last sync" in shown.stdout and "FAILED" in shown.stdout and "401" in shown.stdout
        as_json = json.loads(kiosk("status", "--json", "--config", str(config)).stdout)
        assert as_json["running"] is True and "token" in as_json["faults"]
    finally:
        child.stdin.close()
        child.wait(timeout=120)
    assert child.returncode == 0
    gone = kiosk("status", "--config", str(config))
    assert "not running" in gone.stdout and "fault     token" not in gone.stdout


def test_an_old_status_file_is_called_stale(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    publish(state, KioskStatus(gate="g", device="d", snapshot=SnapshotStatus(), journal=JournalStatus(),
                               faults={"camera": "camera not responding"}, uptime_s=5), old)
    shown = kiosk("status", "--state-dir", str(state))
    assert shown.returncode == 0
    assert "NOT RUNNING or hung: its live status is 10 min old" in shown.stdout
    assert "camera" not in shown.stdout  # an old fault is not shown as today's


# -- read-only commands ------------------------------------------------------------------------

def test_status_and_check_on_a_fresh_state_dir_create_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing"
    for state in (empty, missing):
        assert kiosk("status", "--state-dir", str(state)).returncode == 0
        assert kiosk("check", "I-1001", "--state-dir", str(state)).returncode == 1
    assert tree(empty) == []
    assert not missing.exists()


_AS_OTHER_USER = """
import contextlib, io, os, sys, tempfile
import kiosk.cli
# Run both commands once as root on an empty folder first: every module they import is loaded while the
# interpreter's own files (under /root) can still be read. The real run below is then as nobody.
with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
    for warm_up in (["status", "--state-dir", scratch], ["check", "I-1", "--state-dir", scratch]):
        kiosk.cli.main(warm_up)
os.setgid(65534)
os.setuid(65534)
sys.exit(kiosk.cli.main(sys.argv[1:]))
"""


def test_status_and_check_work_in_a_folder_they_cannot_write(tmp_path):
    state = Path(tempfile.mkdtemp(prefix="kiosk-ro-"))  # /tmp is reachable by every user
    try:
        demo.seed(state / "snapshot.sqlite", datetime.now(timezone.utc))
        ran = kiosk("run", "--source", "stdin", "--headless", "--state-dir", str(state), input="HELLO\nWORLD\n")
        assert ran.returncode == 0, ran.stderr
        before = tree(state)
        for p in [state, *state.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)  # readable by all, writable by its owner (root) only
        if os.geteuid() == 0:  # root writes anywhere: run as nobody instead
            command = [sys.executable, "-c", _AS_OTHER_USER]
        else:
            state.chmod(0o555)
            command = [sys.executable, "-m", "kiosk.cli"]
        status = subprocess.run([*command, "status", "--state-dir", str(state)], capture_output=True, text=True)
        assert status.returncode == 0, status.stderr
        assert "2 events, 2 unreported" in status.stdout
        check = subprocess.run([*command, "check", "I-1001", "--state-dir", str(state)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stderr
        assert check.stdout.startswith("admit")
        assert tree(state) == before
    finally:
        state.chmod(0o755)
        shutil.rmtree(state)


def test_the_screen_names_the_state_file_faults_in_its_language():
    from kiosk.display import fault_text

    assert fault_text("journal", "Journal not writable, 3 decisions kept", Messages("nl")) == \
        "Scanlogboek vraagt aandacht"
    assert fault_text("snapshot", "Member list was damaged", Messages("en")) == \
        "Member list damaged: waiting for a new one"
    assert fault_text("snapshot_stale", "old", Messages("en")) == "Member list out of date"


def test_a_status_file_that_cannot_be_written_is_logged_once_and_its_return_too(tmp_path, caplog):
    import logging

    from kiosk.app import App
    from kiosk.config import Config, validate

    state = tmp_path / "state"
    app = App(Config(validate({"state_dir": str(state)}, "test.toml"), "test.toml"))
    try:
        (state / STATUS_FILE).mkdir()  # status.json cannot be replaced, as on a full disk
        with caplog.at_level(logging.INFO):
            for _ in range(5):
                app.publish_status()
            assert [r.levelname for r in caplog.records if "live status" in r.getMessage()] == ["WARNING"]
            (state / STATUS_FILE).rmdir()
            app.publish_status()
            app.publish_status()
        assert [r.levelname for r in caplog.records if "live status" in r.getMessage()] == ["WARNING", "INFO"]
        assert json.loads((state / STATUS_FILE).read_text())["gate"] == app.config.gate.id
    finally:
        app.close()


def test_status_on_damaged_state_files_shows_them_as_faults_with_the_rest_and_moves_nothing(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    garbage = b"\x00\xffnot a database, a bad SD card sector\n" * 300
    for name in ("snapshot.sqlite", "journal.sqlite"):
        (state / name).write_bytes(garbage)
    shown = kiosk("status", "--state-dir", str(state))
    assert shown.returncode == 0, shown.stderr
    assert "gate      lounge-1" in shown.stdout and "journal   0 events" in shown.stdout
    assert "fault     snapshot: Member list cannot be read (file is not a database)" in shown.stdout
    assert "fault     journal: " in shown.stdout and "journal.sqlite: cannot open the journal" in shown.stdout
    as_json = json.loads(kiosk("status", "--json", "--state-dir", str(state)).stdout)
    assert {"snapshot", "journal"} <= set(as_json["faults"])
    assert tree(state) == ["journal.sqlite", "snapshot.sqlite"]  # nothing moved aside, nothing created
    assert all((state / name).read_bytes() == garbage for name in ("snapshot.sqlite", "journal.sqlite"))
