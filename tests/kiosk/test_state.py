"""The small state file: each write commits or raises StateError at once; files from sqlitedict still read."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlitedict import SqliteDict

from kiosk.errors import StateError
from kiosk.state import State, SyncOutcome, read_state


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path / "state.sqlite")
    yield s
    s.close()


def test_a_write_is_committed_before_it_returns(state, tmp_path):
    state["last_sync"] = SyncOutcome(at="t", ok=False, error="refused").to_json()
    other = sqlite3.connect(tmp_path / "state.sqlite")
    try:
        [(value,)] = other.execute("SELECT value FROM state WHERE key = 'last_sync'").fetchall()
    finally:
        other.close()
    assert json.loads(value)["error"] == "refused"
    assert state["last_sync"]["ok"] is False and "last_sync" in state
    assert state.get("nothing", 7) == 7
    with pytest.raises(KeyError):
        state["nothing"]


def test_a_file_written_by_sqlitedict_with_json_reads_the_same(tmp_path):
    old = SqliteDict(str(tmp_path / "state.sqlite"), tablename="state", autocommit=True, encode=json.dumps,
                     decode=json.loads)
    old["last_upload"] = {"at": "t", "ok": True, "accepted": 3}
    old.close()
    state = State(tmp_path / "state.sqlite")
    try:
        assert state["last_upload"] == {"at": "t", "ok": True, "accepted": 3}
    finally:
        state.close()


def test_a_state_file_reads_in_sqlitedict_with_json(tmp_path):
    """The documented format: a technician (or a tool) opens the state file with sqlitedict and JSON."""
    with State(tmp_path / "state.sqlite") as state:
        state["last_sync"] = SyncOutcome(at="t", ok=True, kind="full", changed=2).to_json()
        state["volume"] = 3
    reader = SqliteDict(str(tmp_path / "state.sqlite"), tablename="state", flag="r", decode=json.loads)
    try:
        assert dict(reader) == {"last_sync": SyncOutcome(at="t", ok=True, kind="full", changed=2).to_json(),
                                "volume": 3}
    finally:
        reader.close()


def test_a_write_that_cannot_be_made_raises_at_once_and_leaves_no_transaction(state, tmp_path):
    state["counter"] = 1
    other = sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StateError, match="locked"):
            state["counter"] = 2
        assert not state.db.in_transaction
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert state["counter"] == 1  # the failed write was not reported as done, and did not happen
    state["counter"] = 3
    assert state["counter"] == 3


def test_a_full_disk_is_a_state_error_and_writes_work_again_when_space_returns(state):
    pages = state.db.execute("PRAGMA page_count").fetchone()[0]
    state.db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StateError, match="full"):
        state["big"] = "x" * 100_000
    assert "big" not in state
    state.db.execute("PRAGMA max_page_count=1073741823")
    state["big"] = "x" * 100_000
    assert len(state["big"]) == 100_000


def test_a_damaged_state_file_is_moved_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"garbage, not SQLite" * 100)
    state = State(path)
    try:
        state["k"] = "v"
        assert state["k"] == "v"
    finally:
        state.close()
    [aside] = tmp_path.glob("state.sqlite.corrupt-*")
    assert aside.read_bytes() == b"garbage, not SQLite" * 100


def test_reading_a_missing_or_damaged_state_file_creates_and_changes_nothing(tmp_path):
    assert read_state(tmp_path / "state.sqlite") == {}
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "state.sqlite").write_bytes(b"garbage")
    assert read_state(tmp_path / "state.sqlite") == {}
    assert [p.name for p in tmp_path.iterdir()] == ["state.sqlite"]
