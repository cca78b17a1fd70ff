"""The journal's WAL is folded and started afresh by the JournalKeeper's connection, never by a scan's commit.

What a scan's commit did is read from the files, not timed: a checkpoint shows in the journal file
itself (read with `immutable=1`, which ignores the WAL), and a restarted WAL in the WAL header's
checkpoint sequence number and salts, which SQLite changes on every restart.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

from kiosk.journal import Journal, JournalKeeper

from test_journal_acks import add


def generation(journal: Journal) -> bytes:
    """The WAL header's checkpoint sequence number and salts: new each time the WAL starts afresh."""
    with open(str(journal.path) + "-wal", "rb") as wal:
        return wal.read(24)[12:24]


def in_file(journal: Journal | Path) -> int:
    """Events in the journal file itself, without its WAL: what checkpoints have folded in."""
    path = journal.path if isinstance(journal, Journal) else journal
    for _ in range(100):  # `immutable` takes no lock: a checkpoint writing the file meanwhile reads as damage
        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:  # the events table itself is still only in the WAL
            return 0
        except sqlite3.DatabaseError:
            continue
        finally:
            db.close()
    raise AssertionError(f"{path} stayed unreadable")


def scans_that_touched_the_wal(journal: Journal, clock, n: int, keeper: JournalKeeper | None = None,
                               cycle_every: int = 50) -> tuple[int, int]:
    """Append n events (the keeper's cycle run by hand every `cycle_every`): (appends that restarted the WAL,
    appends after which the journal file held more events, i.e. that checkpointed)."""
    restarted = folded = 0
    for i in range(n):
        if keeper is not None and i % cycle_every == 0:
            keeper.cycle()
        before, filed = generation(journal), in_file(journal)
        add(journal, clock(), f"I-{i}")
        restarted += generation(journal) != before
        folded += in_file(journal) != filed
    return restarted, folded


def test_without_the_keeper_scans_checkpoint_and_restart_the_wal(journal, clock):
    # The detector itself: SQLite's default makes scans do both (every ~1,000 WAL pages).
    restarted, folded = scans_that_touched_the_wal(journal, clock, 600)
    assert folded >= 1 and restarted >= 1


def test_with_the_keeper_no_scan_checkpoints_or_restarts_the_wal(journal, clock):
    keeper = JournalKeeper(journal, interval_s=3600, every_writes=50)
    keeper.start()
    journal.wake_every = None  # its thread idle: the cycles run here, between scans
    try:
        start = generation(journal)
        restarted, folded = scans_that_touched_the_wal(journal, clock, 600, keeper)
        assert (restarted, folded) == (0, 0)
        assert generation(journal) != start  # the keeper restarted it
        assert in_file(journal) >= 500  # and folded the scans into the file
    finally:
        keeper.stop()
    assert in_file(journal) == 600  # stop folds the rest
    assert journal.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's default again


def test_a_stuck_keeper_leaves_a_backstop(journal, clock):
    keeper = JournalKeeper(journal, interval_s=3600, backstop_pages=300)
    keeper.start()  # and then never cycles again
    try:
        restarted, folded = scans_that_touched_the_wal(journal, clock, 600)
        assert folded >= 1 and restarted >= 1  # the gate's own commits fold past 300 pages: the WAL stays bounded
    finally:
        keeper.stop()


def test_the_keepers_write_is_not_taken_for_another_process(journal, clock):
    for i in range(5):
        add(journal, clock(), f"I-{i}")
    assert journal.counts()["pending"] == 5
    statements: list[str] = []
    journal.db.set_trace_callback(statements.append)
    keeper = JournalKeeper(journal, interval_s=3600, every_writes=1)
    keeper.start()
    try:
        add(journal, clock(), "I-5")
        assert keeper.cycle()
        assert journal.counts()["pending"] == 6
        assert not [s for s in statements if "GROUP BY" in s]  # counts kept, not recounted
        other = Journal(journal.path)  # another process appends: that must still be seen
        add(other, clock(), "I-6")
        other.close()
        assert journal.counts()["pending"] == 7
        assert [s for s in statements if "GROUP BY" in s]
    finally:
        journal.db.set_trace_callback(None)
        keeper.stop()


def test_a_journal_moved_aside_is_followed_and_a_failure_logged_once(journal, clock, tmp_path: Path, caplog):
    keeper = JournalKeeper(journal, interval_s=3600, every_writes=1)
    keeper.start()
    try:
        add(journal, clock(), "I-1")
        assert keeper.cycle()
        # Another process found the journal damaged: it is moved aside and a new one started at the path.
        shutil.move(journal.path, tmp_path / "aside.sqlite")
        fresh = Journal(journal.path)
        add(fresh, clock(), "I-2")
        fresh.close()
        journal.writes += 1
        assert keeper.cycle()  # on the new file, not the old
        assert in_file(journal.path) == 1

        (tmp_path / "aside.sqlite").unlink()
        journal.path.unlink()
        journal.path.mkdir()  # not a database any more: every checkpoint fails
        with caplog.at_level(logging.WARNING, logger="kiosk.journal"):
            for _ in range(3):
                journal.writes += 1
                assert not keeper.cycle()
        assert len([r for r in caplog.records if "checkpointing the journal failed" in r.getMessage()]) == 1
        journal.path.rmdir()
    finally:
        keeper.stop()


def test_kiosk_run_keeps_the_wal_and_hands_the_gil_quickly(tmp_path: Path, monkeypatch):
    import io
    import sys

    from kiosk import config as configuration
    from kiosk.app import App
    from kiosk.compose import SWITCH_INTERVAL_S, run

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"I-1001\nI-1002\nnot-a-member\n")))
    config = configuration.Config(configuration.defaults(), "test").with_overrides(state_dir=str(tmp_path / "state"))
    before = sys.getswitchinterval()
    app = App(config)
    try:
        sys.setswitchinterval(0.005)  # Python's default
        assert run(app, source="stdin", headless=True) == 0
        assert sys.getswitchinterval() <= SWITCH_INTERVAL_S
        # Read before the journal closes (SQLite folds the WAL when the last connection goes): the keeper
        # folded the three scans in when run stopped it; SQLite alone leaves them in the WAL.
        assert in_file(app.journal_path) == 3
        assert app.journal.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        sys.setswitchinterval(before)
        app.close()


def test_the_keepers_thread_is_woken_by_the_commits_not_only_by_the_clock(journal, clock):
    keeper = JournalKeeper(journal, interval_s=3600, every_writes=50)  # the clock alone: not within this test
    keeper.start()
    try:
        # Scans until the keeper's thread, woken every 50 commits, has folded 100 events into the file; asleep
        # until the clock, it would fold none and the loop would run out.
        for i in range(5000):
            add(journal, clock(), f"I-{i}")
            if in_file(journal) >= 100:
                break
        assert in_file(journal) >= 100
    finally:
        keeper.stop()
