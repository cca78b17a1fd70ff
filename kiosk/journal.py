"""The scan journal: every decision, appended before any output acts on it (SQLite, WAL).

Events are reported upstream by the uploader; acknowledged events are purged after
`keep_days`, and past `max_events` the oldest acknowledged go first. An unacknowledged
event is only ever dropped with a loud warning.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .credential import printable
from .errors import JournalError
from .text import csv_cell

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,  -- no AUTOINCREMENT: its counter page is one more page written per scan
    id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    gate TEXT NOT NULL,
    source TEXT NOT NULL,
    raw TEXT NOT NULL,
    credential TEXT NOT NULL,
    verdict TEXT NOT NULL,
    customer_id TEXT,
    groups TEXT NOT NULL,
    cursor TEXT NOT NULL,
    passed INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | isolated
    state_note TEXT NOT NULL DEFAULT '',
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (state, seq);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
"""
COLUMNS = ("id", "at", "gate", "source", "raw", "credential", "verdict", "customer_id", "groups", "cursor",
           "passed", "reason", "state")


def iso(moment: datetime) -> str:
    """UTC with milliseconds and a Z, as the protocol writes times."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return str(uuid.uuid4())


class Journal:
    def __init__(self, path: str | Path, *, keep_days: int = 90, max_events: int = 1_000_000, sync: str = "normal",
                 readonly: bool = False):
        self.path = Path(path)
        self.keep_days = keep_days
        self.max_events = max_events
        self._lock = threading.Lock()
        self._counts: dict[str, int] | None = None  # kept up to date by our own writes
        self._changed_while_pending: set[str] = set()
        self._data_version = -1
        try:
            if readonly:
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                          isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
                # Small pages: each scan's commit writes a handful of whole pages to the WAL, and on an SD
                # card 1 KiB pages cost a quarter of the default 4 KiB (see docs/operations.md).
                self.db.execute("PRAGMA page_size=1024")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
                self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open the journal ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- writing -----------------------------------------------------------------------
    def append(self, *, at: datetime, gate: str, source: str, raw: str, credential: str, verdict: str,
               customer_id: str | None, groups: Iterable[str], cursor: str, reason: str = "",
               passed: bool | None = None, event_id: str | None = None) -> str:
        """Append one event durably (committed before this returns) and return its id."""
        event_id = event_id or new_event_id()
        row = (event_id, iso(at), gate, source, printable(raw), printable(credential), verdict, customer_id,
               json.dumps(list(groups)), cursor, None if passed is None else int(passed), reason)
        try:
            with self._lock:
                self.db.execute(
                    "INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor,"
                    " passed, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
                if self._counts is not None:
                    self._counts["pending"] += 1
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot append to the journal ({exc})") from exc
        return event_id

    def set_passed(self, event_id: str, passed: bool) -> None:
        """Record what the passage sensor saw; the event is (re)reported with it."""
        with self._lock:
            row = self.db.execute("SELECT state FROM events WHERE id = ?", (event_id,)).fetchone()
            self.db.execute("UPDATE events SET passed = ?, state = CASE state WHEN 'isolated' THEN state ELSE 'pending' END"
                            " WHERE id = ?", (int(passed), event_id))
            if row and row[0] == "pending":
                # An upload may be carrying this event without `passed` right now: its acknowledgement
                # must not mark it sent, so it goes again with the sensor's answer.
                self._changed_while_pending.add(event_id)
            self._counts = None

    # -- reporting ---------------------------------------------------------------------
    def pending(self, limit: int = 500) -> list[dict[str, Any]]:
        """Unacknowledged events, oldest first, as protocol events."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor, passed"
                " FROM events WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [
            {"id": r[0], "at": r[1], "gate": r[2], "source": r[3], "raw": r[4], "credential": r[5], "verdict": r[6],
             "customer_id": r[7], "groups": json.loads(r[8]), "cursor": r[9],
             "passed": None if r[10] is None else bool(r[10])}
            for r in rows
        ]

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        with self._lock:
            ids = list(ids)
            held = self._changed_while_pending.intersection(ids)
            self._changed_while_pending.difference_update(held)
            ids = [i for i in ids if i not in held]
            self.db.execute("BEGIN")
            cur = self.db.executemany("UPDATE events SET state = 'sent', sent_at = ? WHERE id = ? AND state = 'pending'",
                                      [(iso(at), i) for i in ids])
            self.db.execute("COMMIT")
            if self._counts is not None:
                self._counts["pending"] -= cur.rowcount
                self._counts["sent"] += cur.rowcount
        return cur.rowcount

    def isolate(self, event_id: str, note: str) -> None:
        """Set a bad event aside so it can never block the queue; it stays here and in status."""
        with self._lock:
            self.db.execute("UPDATE events SET state = 'isolated', state_note = ? WHERE id = ?", (note[:500], event_id))
            self._counts = None

    # -- housekeeping ------------------------------------------------------------------
    def purge(self, now: datetime) -> int:
        """Drop acknowledged events older than keep_days; past max_events, the oldest acknowledged first."""
        cutoff = iso(now - timedelta(days=self.keep_days))
        with self._lock:
            self._counts = None
            removed = self.db.execute("DELETE FROM events WHERE state = 'sent' AND at < ?", (cutoff,)).rowcount
            total = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
            excess = total - self.max_events
            if excess > 0:
                removed += self.db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'sent' ORDER BY seq LIMIT ?)",
                    (excess,)).rowcount
                total = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
                excess = total - self.max_events
                if excess > 0:
                    log.warning("journal holds %d events, over journal.max_events = %d, and %d of them were never "
                                "reported upstream: dropping the oldest %d UNREPORTED events", total, self.max_events,
                                excess, excess)
                    removed += self.db.execute(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (excess,)).rowcount
        return removed

    # -- reading -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Events by state. Counted once, then kept by our own writes (a GROUP BY over a big journal is slow
        on a Pi and the screen asks often); recounted when another process wrote the journal."""
        with self._lock:
            version = self.db.execute("PRAGMA data_version").fetchone()[0]
            if self._counts is None or version != self._data_version:
                rows = dict(self.db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
                self._counts = {s: rows.get(s, 0) for s in ("pending", "sent", "isolated")}
                self._data_version = version
            counts = dict(self._counts)
        return {"total": sum(counts.values()), **counts}

    def last_at(self) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def events(self, since: datetime | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT " + ", ".join(COLUMNS) + " FROM events"
        args: list[Any] = []
        if since is not None:
            sql += " WHERE at >= ?"
            args.append(iso(since))
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self.db.execute(sql, args).fetchall()
        for row in rows:
            event = dict(zip(COLUMNS, row))
            event["groups"] = json.loads(event["groups"])
            event["passed"] = None if event["passed"] is None else bool(event["passed"])
            yield event

    def recent(self, n: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT " + ", ".join(COLUMNS) + " FROM events ORDER BY seq DESC LIMIT ?",
                                   (n,)).fetchall()
        return [dict(zip(COLUMNS, r)) for r in rows]

    def isolated(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT id, at, verdict, state_note FROM events WHERE state = 'isolated' ORDER BY seq"
                                   ).fetchall()
        return [{"id": r[0], "at": r[1], "verdict": r[2], "note": r[3]} for r in rows]


def write_csv(events: Iterable[dict[str, Any]], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    n = 0
    for event in events:
        row = dict(event)
        row["groups"] = ";".join(row["groups"])
        row["passed"] = "" if row["passed"] is None else str(row["passed"]).lower()
        writer.writerow([csv_cell(row[c]) for c in COLUMNS])
        n += 1
    return n
