"""The kiosk's small persistent state (last sync result, staff settings, counters).

sqlitedict, always with JSON encoding: a pickled file that someone can write is code that
someone can run. What is stored about syncs and uploads is typed here (`SyncOutcome`,
`UploadOutcome`): the writer and every reader use the same fields.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

from sqlitedict import SqliteDict

from .sqlfiles import readable_by_service

T = TypeVar("T")


def open_state(path: str | Path, *, readonly: bool = False) -> SqliteDict:
    path = Path(path)
    new = not path.exists()
    state = SqliteDict(str(path), tablename="state", autocommit=True, encode=json.dumps, decode=json.loads,
                       flag="r" if readonly else "c")
    if new and not readonly:
        readable_by_service(path)
    return state


def read_state(path: str | Path) -> dict[str, Any]:
    """Every key of a state file, read-only; {} when there is none or it cannot be read. Creates nothing."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT key, value FROM state").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return {}
    values: dict[str, Any] = {}
    for key, value in rows:
        try:
            values[key] = json.loads(value)
        except (TypeError, ValueError):
            continue
    return values


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
    changed: int = 0
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
