"""`kill -9` of a `kiosk sync` process mid-sync and mid-upload, then a restart: nothing lost, a usable snapshot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk import demo
from kiosk.journal import Journal
from kiosk.snapshot import SnapshotStore

from .test_background import wait_for

KIOSK = [sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())"]


@pytest.fixture
def config_file(tmp_path: Path, ref, token_file: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\ndevice_id = "killed"\n[upstream]\nurl = "{ref.url}"\n'
                    f'token_file = "{token_file}"\ntimeout_s = 20\n')
    return path


def kiosk(config_file: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KIOSK, *args, "--config", str(config_file)], capture_output=True, text=True, timeout=60)


def start_sync(config_file: Path) -> subprocess.Popen:
    return subprocess.Popen([*KIOSK, "sync", "--config", str(config_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


def leftovers(state: Path) -> list[str]:
    """A half-built snapshot file, or the live file's rollback journal: a snapshot write was under way."""
    return [p.name for p in state.iterdir() if ".new-" in p.name or p.name.endswith("-journal")]


def many_customers(n: int, active: bool = True) -> list[dict]:
    return [{"type": "customer", "id": f"I-{9000 + i}", "first_name": "F", "last_name": f"L{i}", "active": active,
             "groups": ["members"]} for i in range(n)]


@pytest.mark.parametrize("mode", ["full", "delta"])
def test_kill_during_a_sync_leaves_the_last_good_snapshot_and_the_restart_completes(tmp_path, config_file, ref, mode):
    state = tmp_path / "state"
    assert kiosk(config_file, "sync").returncode == 0
    before = SnapshotStore(state / "snapshot.sqlite")
    cursor = before.cursor
    before.close()
    if mode == "full":
        ref.store.replace(many_customers(3000))
        cursor = demo.seed(state / "snapshot.sqlite", datetime.now(timezone.utc)) and "demo-1"
        # the kiosk now holds the demo, not this upstream's data: it must ask for a full snapshot
    else:
        # more than the builder batches (5000) before the stall, so rows reach the live file's transaction
        ref.store.put(many_customers(12000, active=False))
    ref.slow_s = 30
    ref.inject("stall", "snapshot")
    sent = ref.lines_sent
    proc = start_sync(config_file)
    try:
        wait_for(lambda: ref.lines_sent > sent, timeout=20)
        # the kiosk has begun writing what it received into its half-built snapshot
        wait_for(lambda: leftovers(state), timeout=20)
    finally:
        kill(proc)
    assert leftovers(state), "the kill should have caught the sync mid-write"

    store = SnapshotStore(state / "snapshot.sqlite")  # the kiosk restarting: reads before anything writes
    try:
        assert store.cursor == cursor
        assert store.customer("I-9000") is None
        assert store.customer("I-1001") is not None
        checked = kiosk(config_file, "check", "I-1001")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        ref.clear_faults()
        done = kiosk(config_file, "sync")
        assert done.returncode == 0, done.stdout + done.stderr
        # the reader picks up the swapped file or the delta by itself, within its recheck window
        wait_for(lambda: store.cursor == ref.store.cursor())
        assert store.customer("I-9000") is not None
    finally:
        store.close()
    assert not leftovers(state)


def test_kill_during_an_upload_loses_nothing_and_reports_nothing_twice(tmp_path, config_file, ref):
    state = tmp_path / "state"
    assert kiosk(config_file, "sync").returncode == 0
    journal = Journal(state / "journal.sqlite")
    at = datetime.now(timezone.utc)
    ids = [journal.append(at=at + timedelta(milliseconds=i), gate="g", source="stdin", raw=f"I-{i}",
                          credential=f"I-{i}", verdict="not_recognised", customer_id=None, groups=(), cursor="c")
           for i in range(1200)]
    journal.close()
    ref.slow_s = 30
    ref.inject("slow", "scans")  # the first batch is stored upstream, then the answer hangs
    proc = start_sync(config_file)
    try:
        wait_for(lambda: ref.store.scan_count() >= 500, timeout=20)
    finally:
        kill(proc)
    journal = Journal(state / "journal.sqlite")
    try:
        assert journal.counts() == {"total": 1200, "pending": 1200, "sent": 0, "isolated": 0}
        ref.clear_faults()
        done = kiosk(config_file, "sync")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "reported 1200 scans" in done.stdout
        assert journal.counts() == {"total": 1200, "pending": 0, "sent": 1200, "isolated": 0}
    finally:
        journal.close()
    stored = [e["id"] for e in ref.store.scans()]
    assert sorted(stored) == sorted(ids)  # every event, each once
