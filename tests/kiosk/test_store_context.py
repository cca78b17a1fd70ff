"""The SQLite stores (journal, snapshot, state) are context managers: the file is let go when the block ends,
also when it raises, and the exception is not swallowed."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from kiosk import demo
from kiosk.journal import Journal
from kiosk.snapshot import SnapshotStore
from kiosk.state import State


def open_files(path: Path) -> set[str]:
    """The files of this process's open descriptors that are `path` or its -wal/-shm/-journal companions."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used, closed by now
            continue
        if target.startswith(str(path)):
            found.add(target)
    return found


def use_journal(path: Path, clock) -> Journal:
    journal = Journal(path)
    journal.append(at=clock(), gate="g", source="serial", raw="I-1", credential="I-1", verdict="admit",
                   customer_id="I-1", groups=["Members"], cursor="c")
    return journal


def use_snapshot(path: Path, clock) -> SnapshotStore:
    demo.seed(path, clock())
    store = SnapshotStore(path)
    assert store.groups()  # the first read opens the file
    return store


def use_state(path: Path, clock) -> State:
    state = State(path)
    state["k"] = 1
    return state


@pytest.mark.parametrize("use", [use_journal, use_snapshot, use_state])
def test_a_store_lets_go_of_its_file_when_its_block_raises(tmp_path, clock, use):
    path = tmp_path / "store.sqlite"
    with pytest.raises(RuntimeError, match="boom"):
        with use(path, clock):
            assert open_files(path)  # held while the block runs
            raise RuntimeError("boom")
    assert open_files(path) == set()


@pytest.mark.parametrize("use", [use_journal, use_snapshot, use_state])
def test_a_store_lets_go_of_its_file_when_its_block_ends(tmp_path, clock, use):
    path = tmp_path / "store.sqlite"
    with use(path, clock):
        assert open_files(path)
    assert open_files(path) == set()


def test_a_journal_block_that_raises_still_writes_the_decisions_it_held(tmp_path, clock):
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(RuntimeError):
            with Journal(path) as journal:
                other.execute("BEGIN IMMEDIATE")  # another process holds the write lock: the scan is held
                event = journal.append(at=clock(), gate="g", source="serial", raw="I-1", credential="I-1",
                                       verdict="admit", customer_id="I-1", groups=[], cursor="c")
                assert journal.held == 1
                other.execute("ROLLBACK")
                raise RuntimeError("the gate stopped")
        assert [e[0] for e in other.execute("SELECT id FROM events")] == [event]
    finally:
        other.close()
