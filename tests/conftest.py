"""Shared fixtures: a fixed clock, a state dir holding the demo snapshot, a journal. Keep them generic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk import demo
from kiosk.journal import Journal
from kiosk.snapshot import SnapshotStore

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc)


class FixedClock:
    """A clock that only moves when told to: `clock()` is the time, `clock.advance(s)` moves it."""

    def __init__(self, start: datetime = NOW):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def state_dir(tmp_path: Path, clock: FixedClock) -> Path:
    """A state dir with the demo snapshot (kiosk.demo) at state_dir/snapshot.sqlite, synced at clock()."""
    path = tmp_path / "state"
    path.mkdir()
    demo.seed(path / "snapshot.sqlite", clock())
    return path


@pytest.fixture
def snapshot(state_dir: Path):
    store = SnapshotStore(state_dir / "snapshot.sqlite")
    yield store
    store.close()


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal(tmp_path / "journal.sqlite", keep_days=90, max_events=1_000_000)
    yield j
    j.close()
