"""Acknowledgements in a file of their own: never behind the journal's write lock, never lost, folded in by purge."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from kiosk.journal import Journal, acks_path

ROOT = Path(__file__).resolve().parents[2]


def add(journal: Journal, at, raw="I-1001") -> str:
    return journal.append(at=at, gate="lounge-1", source="camera", raw=raw, credential=raw, verdict="admit",
                          customer_id=raw, groups=["members"], cursor="c-1")


def acks_left(journal: Journal) -> int:
    other = sqlite3.connect(acks_path(journal.path))
    try:
        return other.execute("SELECT count(*) FROM acks").fetchone()[0]
    finally:
        other.close()


def test_mark_sent_succeeds_while_another_connection_holds_the_journals_write_lock(journal, clock):
    ids = [add(journal, clock(), f"I-{i}") for i in range(3)]
    reporter = Journal(journal.path)  # the uploader's own connection
    other = sqlite3.connect(journal.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the old mark_sent waited a second here, then failed
        assert reporter.mark_sent(reporter.pending(), clock()) == 3
        assert journal.pending() == [] and reporter.pending() == []
        assert journal.counts() == {"total": 3, "pending": 0, "sent": 3, "isolated": 0}
        assert [e["state"] for e in journal.events()] == ["sent"] * 3
        other.execute("ROLLBACK")
        journal.purge(clock())  # folds the acknowledgements into the journal
        assert acks_left(journal) == 0
        assert [(e["id"], e["state"]) for e in journal.events()] == [(i, "sent") for i in ids]
        assert journal.counts() == {"total": 3, "pending": 0, "sent": 3, "isolated": 0}
    finally:
        other.close()
        reporter.close()


CHILD = textwrap.dedent("""
    import json, os, signal, sqlite3, sys
    from datetime import datetime, timezone
    from kiosk.journal import Journal
    at = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    path = sys.argv[1]
    journal = Journal(path)
    ids = [journal.append(at=at, gate="g", source="camera", raw=f"I-{i}", credential=f"I-{i}", verdict="admit",
                          customer_id=None, groups=[], cursor="c") for i in range(10)]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the gate's journal is busy: acknowledging must not need it
    marked = journal.mark_sent(journal.pending(4), at)
    print(json.dumps({"ids": ids, "marked": marked}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_kill_9_right_after_acknowledging_loses_nothing_and_sends_nothing_twice(tmp_path, clock):
    path = tmp_path / "journal.sqlite"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    told = json.loads(proc.stdout)
    assert told["marked"] == 4
    journal = Journal(path)
    try:
        assert [e["id"] for e in journal.pending()] == told["ids"][4:]  # the rest, each once, in order
        assert journal.counts() == {"total": 10, "pending": 6, "sent": 4, "isolated": 0}
        journal.purge(clock())
        assert [e["state"] for e in journal.events()] == ["sent"] * 4 + ["pending"] * 6
        assert journal.counts() == {"total": 10, "pending": 6, "sent": 4, "isolated": 0}
    finally:
        journal.close()


def test_counts_follow_acknowledgements_and_a_passage_after_one_requeues_the_event(journal, clock):
    a, b, c = (add(journal, clock(), f"I-{i}") for i in range(3))
    assert journal.counts()["pending"] == 3  # counted once, then kept
    reporter = Journal(journal.path)
    try:
        sent = reporter.pending()
        assert reporter.mark_sent(sent[:2], clock()) == 2
        assert journal.counts() == {"total": 3, "pending": 1, "sent": 2, "isolated": 0}
        journal.set_passed(a, True)  # after its upload: it goes again, with the answer
        assert journal.counts() == {"total": 3, "pending": 2, "sent": 1, "isolated": 0}
        assert [(e["id"], e["passed"]) for e in reporter.pending()] == [(a, True), (c, None)]
        assert reporter.mark_sent(sent[:1], clock()) == 0  # a late answer for the old version counts for nothing
        assert Journal(journal.path).counts() == journal.counts()  # a fresh count agrees with the kept one
        journal.purge(clock())
        assert acks_left(journal) == 0  # the spent acknowledgement went too
        assert [(e["id"], e["state"]) for e in journal.events()] == [(a, "pending"), (b, "sent"), (c, "pending")]
        assert journal.counts() == {"total": 3, "pending": 2, "sent": 1, "isolated": 0}
    finally:
        reporter.close()


def test_purge_folds_many_acknowledgements_in_batches(journal, clock):
    ids = [add(journal, clock(), f"I-{i}") for i in range(1203)]
    assert journal.mark_sent(journal.pending(2000)[:1100], clock()) == 1100
    assert journal.fold_acks(batch=500) == 1100
    assert acks_left(journal) == 0
    assert [e["id"] for e in journal.pending(2000)] == ids[1100:]
    assert journal.counts() == {"total": 1203, "pending": 103, "sent": 1100, "isolated": 0}


def test_a_damaged_acknowledgements_file_is_set_aside_not_the_journal(tmp_path, clock):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    a = add(journal, clock())
    journal.mark_sent([a], clock())
    journal.close()
    acks = acks_path(path)
    for suffix in ("-wal", "-shm"):
        Path(str(acks) + suffix).unlink(missing_ok=True)
    acks.write_bytes(b"this is not a database" * 100)
    journal = Journal(path)
    try:
        assert [e["id"] for e in journal.pending()] == [a]  # reported again: the upstream deduplicates by id
        assert journal.moved_aside is None and list(tmp_path.glob("journal.sqlite-acks.corrupt-*"))
    finally:
        journal.close()


def test_a_scan_is_journalled_while_another_connection_holds_the_acknowledgements_lock(journal, clock):
    first = add(journal, clock())
    other = sqlite3.connect(acks_path(journal.path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # an uploader in the middle of acknowledging
        second = add(journal, clock(), "I-2")
        assert journal.held == 0 and journal.problem is None
        assert [e["id"] for e in journal.pending()] == [first, second]
    finally:
        other.close()


def _vm_steps(journal: Journal, work) -> int:
    """SQLite virtual-machine steps (in thousands) `work()` makes on the journal's connection: a count, not a time."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    journal.db.set_progress_handler(count, 1000)
    try:
        work()
    finally:
        journal.db.set_progress_handler(None, 1000)
    return steps[0]


def test_folding_a_few_acknowledgements_does_not_walk_the_whole_backlog(journal, clock):
    journal.db.executemany(
        "INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor)"
        " VALUES (?, ?, 'g', 'camera', ?, ?, 'admit', ?, '[]', 'c')",
        [(f"e-{i}", "2026-11-29T00:00:00.000Z", f"I-{i}", f"I-{i}", f"I-{i}") for i in range(20_000)])
    reporter = Journal(journal.path)
    try:
        assert reporter.mark_sent(reporter.pending(100), clock()) == 100
    finally:
        reporter.close()
    steps = _vm_steps(journal, journal.fold_acks)
    # 100 events looked up by id: a few thousand steps. The old join walked all 20,000 pending events per
    # batch (~104 thousand steps here), and 100,000 acknowledgements took 44 s on the gate's thread.
    assert steps < 20, steps
    assert journal.counts() == {"total": 20_000, "pending": 19_900, "sent": 100, "isolated": 0}


def test_purge_goes_in_small_transactions_and_drops_every_old_event(tmp_path, clock):
    journal = Journal(tmp_path / "journal.sqlite", keep_days=1)
    try:
        ids = [add(journal, clock(), f"I-{i}") for i in range(35)]
        assert journal.mark_sent(ids[:30], clock()) == 30
        commits = journal.writes
        assert journal.purge(clock() + timedelta(days=2), batch=10) == 30
        assert journal.writes - commits >= 3 + 3  # folds and deletes, ten at a time
        assert journal.counts() == {"total": 5, "pending": 5, "sent": 0, "isolated": 0}
    finally:
        journal.close()
