"""The App as a context manager: every store it opened is closed on the way out, also when the body raises."""

from __future__ import annotations

import sqlite3

import pytest

from kiosk.app import App
from kiosk.config import Config, validate
from kiosk.ports import Scan


def make_config(state_dir) -> Config:
    return Config(validate({"state_dir": str(state_dir)}, "test.toml"), "test.toml")


def closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_with_closes_the_journal_state_and_snapshot(tmp_path):
    with App(make_config(tmp_path / "state"), simulate=True) as app:
        decision = app.gate.handle(Scan("I-1001", "stdin"))
        app.state["probe"] = 1
        journal, state = app.journal, app.state
        assert decision is not None and decision.admitted and not closed(journal.db)
    assert closed(journal.db) and closed(state.db)
    assert app.snapshot._db is None  # closed: the next read would open it again


def test_with_closes_the_stores_when_the_body_raises(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with App(make_config(tmp_path / "state"), simulate=True) as app:
            journal = app.journal
            raise RuntimeError("boom")
    assert closed(journal.db)
