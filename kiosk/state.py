"""The kiosk's small persistent state (last sync result, staff settings, counters).

JSON values by key in one SQLite table, in sqlitedict's layout (a `state` table of key and
value), always JSON-encoded: a pickled file that someone can write is code that someone can run.
It is plain `sqlite3` rather than sqlitedict itself: sqlitedict writes on a worker thread that
dies when a commit fails (a full disk), after which every later call blocks forever, and it
reports a failed write only on the next call. Here a write commits or rolls back and raises
StateError at once, like the journal and the snapshot.

What is stored about syncs and uploads is typed (`SyncOutcome`, `UploadOutcome`): the writer
and every reader use the same fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, TypeVar

from .errors import StateError
from .sqlfiles import is_corrupt, move_aside, readable_by_service

log = logging.getLogger(__name__)

T = TypeVar("T")
_MISSING = object()


class State:
    """The state file as a small mapping. Thread-safe. `readonly` opens an existing file read-only."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        try:
            self._connect()
        except sqlite3.Error as exc:
            if readonly or not is_corrupt(exc):
                raise StateError(f"{self.path}: cannot open the state file ({exc})") from exc
            # Only the last sync's outcome and staff settings live here: start afresh, keep the old file.
            move_aside(self.path, str(exc))
            try:
                self._connect()
            except sqlite3.Error as again:
                raise StateError(f"{self.path}: cannot open the state file ({again})") from again

    def _connect(self) -> None:
        if self.readonly:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                      isolation_level=None)
            self.db.execute("SELECT count(*) FROM state").fetchone()
            return
        new = not self.path.exists()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=1)
        try:
            self.db.execute('CREATE TABLE IF NOT EXISTS "state" (key TEXT PRIMARY KEY, value BLOB)')
        except sqlite3.Error:
            self.db.close()
            raise
        if new:
            readable_by_service(self.path)

    @contextlib.contextmanager
    def _sqlite(self, what: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The state file's boundary: a write commits or rolls back; sqlite3 errors become StateError."""
        with self._lock:
            try:
                if write:
                    self.db.execute("BEGIN IMMEDIATE")
                yield self.db
                if write:
                    self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise StateError(f"{self.path}: cannot {what} ({exc})") from exc

    def get(self, key: str, default: Any = None) -> Any:
        with self._sqlite(f"read {key!r}") as db:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except (TypeError, ValueError):
            log.warning("%s: %r holds no JSON; ignored", self.path, key)
            return default

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __setitem__(self, key: str, value: Any) -> None:
        """Committed before this returns, or StateError."""
        encoded = json.dumps(value)
        with self._sqlite(f"write {key!r}", write=True) as db:
            db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, encoded))

    def items(self) -> dict[str, Any]:
        with self._sqlite("read") as db:
            rows = db.execute("SELECT key, value FROM state").fetchall()
        values: dict[str, Any] = {}
        for key, value in rows:
            with contextlib.suppress(TypeError, ValueError):
                values[key] = json.loads(value)
        return values

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_state(path: str | Path, *, readonly: bool = False) -> State:
    return State(path, readonly=readonly)


def read_state(path: str | Path) -> dict[str, Any]:
    """Every key of a state file, read-only; {} when there is none or it cannot be read. Creates nothing."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with State(path, readonly=True) as state:
            return state.items()
    except StateError:
        return {}


def _from_json(cls: type[T], value: Any) -> T | None:
    """A stored outcome as `cls`; fields it does not know are ignored, a value that is no outcome is None."""
    if not isinstance(value, Mapping) or "ok" not in value:
        return None
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    data: dict[str, Any] = {}
    for name, value_ in value.items():
        if name in known and value_ is not None:
            data[name] = value_
    data["ok"] = bool(data.get("ok"))
    data["at"] = str(data.get("at", ""))
    try:
        return cls(**data)
    except TypeError:
        return None


@dataclass(frozen=True)
class SyncOutcome:
    """The last snapshot sync, kept in the state file under "last_sync"."""

    at: str  # ISO time of the attempt
    ok: bool
    kind: str = ""  # full | delta | unchanged
    cursor: str = ""
    changed: dict[str, int] | int = 0  # the records a sync changed, by kind
    bytes: int = 0
    seconds: float = 0.0
    error: str = ""  # why it failed
    failures: int = 0  # failed attempts in a row
    last_ok_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> "SyncOutcome | None":
        return _from_json(cls, value)

    def line(self) -> str:
        head = f"{self.at or '?'}: " + ("ok" if self.ok else "FAILED")
        if not self.ok:
            return f"{head}: {self.error or 'unknown error'}" + (f" ({self.failures} in a row)" if self.failures > 1
                                                                  else "")
        details = [f"{k} {getattr(self, k)}" for k in ("kind", "cursor", "changed") if getattr(self, k)]
        return head + (", " + ", ".join(details) if details else "")


@dataclass(frozen=True)
class UploadOutcome:
    """The last report of scans upstream, kept in the state file under "last_upload"."""

    at: str
    ok: bool
    accepted: int = 0
    isolated: int = 0
    error: str = ""
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> "UploadOutcome | None":
        return _from_json(cls, value)

    def line(self) -> str:
        head = f"{self.at or '?'}: " + ("ok" if self.ok else "FAILED")
        if not self.ok:
            return f"{head}: {self.error or 'unknown error'}"
        details = [f"{k} {getattr(self, k)}" for k in ("accepted", "isolated") if getattr(self, k)]
        return head + (", " + ", ".join(details) if details else "")
