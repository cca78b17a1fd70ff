"""The peers' events and the venue's gates as this kiosk last saw them (SQLite, state_dir/venue.sqlite).

Merging is a set union by event id: an event arriving twice, late or out of order is stored once.
Per peer, a cursor says up to which of its journal rows (`seq`) we hold everything; the link asks
the peer for what lies after it. Purged like the journal: older than keep_days, and past
max_events the oldest first (a peer's event is never "unreported" here: the peer holds the original).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import JournalError
from ..journal import iso

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_events (
    id TEXT PRIMARY KEY,
    gate TEXT NOT NULL,
    seq INTEGER NOT NULL,
    prev INTEGER NOT NULL,
    at TEXT NOT NULL,
    zone TEXT NOT NULL,
    direction TEXT NOT NULL,
    verdict TEXT NOT NULL,
    source TEXT NOT NULL,
    customer_id TEXT,
    credential TEXT,
    passed INTEGER,
    value TEXT,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS peer_events_by_gate ON peer_events (gate, seq);
CREATE INDEX IF NOT EXISTS peer_events_at ON peer_events (at);
CREATE TABLE IF NOT EXISTS cursors (gate TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gates (gate TEXT PRIMARY KEY, online INTEGER, heartbeat TEXT, seen_at TEXT NOT NULL);
"""
COUNT_COLUMNS = ("at", "verdict", "source", "customer_id", "credential", "value", "zone", "direction", "gate")


class PeerStore:
    def __init__(self, path: str | Path, *, keep_days: int = 90, max_events: int = 1_000_000,
                 readonly: bool = False):
        self.path = Path(path)
        self.keep_days = keep_days
        self.max_events = max_events
        self._lock = threading.Lock()
        self._writable = not readonly
        self._cursors: dict[str, int] = {}  # peer gate -> the last of its rows we hold without a gap
        self._gapped: set[str] = set()  # peers of which we hold rows above the cursor (after a gap)
        try:
            if readonly:
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                          isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
                self.db.execute("PRAGMA journal_mode=WAL")
                # no fsync per commit: a peer's event lost to a power cut is asked for again (cursor, `want`)
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_SCHEMA)
                self._load_cursors()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open the venue store ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _load_cursors(self) -> None:
        """This store is the cursors' only writer: they are kept in memory too (updated after each commit), read
        at the start. Every peer counts as gapped until its first batch has looked at the rows above its cursor."""
        self._cursors = dict(self.db.execute("SELECT gate, seq FROM cursors").fetchall())
        self._gapped = set(self._cursors)

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction; sqlite errors become the project's, rolled back."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                yield self.db
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                self._gapped.update(self._cursors)  # the rows above the cursors are looked at again
                raise JournalError(f"{self.path}: cannot {what} ({exc})") from exc

    # -- events ----------------------------------------------------------------------------------
    def add(self, events: Iterable[dict[str, Any]], received: datetime) -> list[dict[str, Any]]:
        """Store checked peer events (kiosk.venue.messages.parse_event); returns those that were new.
        A batch is a few statements whatever its size (it runs beside the gate's decisions): one look-up of the
        ids already held, one insert of the new ones, one update of late passages, one write of the cursors."""
        events = list(events)
        at = iso(received)
        with self._tx("store peer events") as db:
            held = self._held(db, {e["id"] for e in events})
            new: dict[str, dict[str, Any]] = {}
            passages = []
            for e in events:
                if e["id"] in held or e["id"] in new:
                    if e["passed"] is not None:  # the passage of an admit we hold, published after it
                        if e["id"] in new and new[e["id"]]["gate"] == e["gate"] and new[e["id"]]["passed"] is None:
                            new[e["id"]] = {**new[e["id"]], "passed": e["passed"]}
                        else:
                            passages.append((int(e["passed"]), e["id"], e["gate"]))
                    continue
                if e["seq"] <= self._cursors.get(e["gate"], 0):
                    continue  # held once and purged since (another gate's `want` brought it again): counted already
                new[e["id"]] = e
            db.executemany(
                "INSERT OR IGNORE INTO peer_events (id, gate, seq, prev, at, zone, direction, verdict, source,"
                " customer_id, credential, passed, value, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(e["id"], e["gate"], e["seq"], e["prev"], e["at"], e["zone"], e["dir"], e["verdict"], e["source"],
                  e["customer"], e["card"], None if e["passed"] is None else int(e["passed"]), e["value"], at)
                 for e in new.values()])
            db.executemany("UPDATE peer_events SET passed = ? WHERE id = ? AND gate = ? AND passed IS NULL", passages)
            by_gate: dict[str, list[tuple[int, int]]] = {}
            for e in new.values():
                by_gate.setdefault(e["gate"], []).append((e["seq"], e["prev"]))
            moved = [(gate, self._advance(db, gate, sorted(rows))) for gate, rows in by_gate.items()]
            db.executemany("INSERT OR REPLACE INTO cursors (gate, seq) VALUES (?, ?)", moved)
        self._cursors.update(moved)  # committed
        return list(new.values())

    @staticmethod
    def _held(db: sqlite3.Connection, ids: set[str]) -> set[str]:
        held: set[str] = set()
        wanted = list(ids)
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit is far above 500 everywhere
            chunk = wanted[start:start + 500]
            held.update(r[0] for r in db.execute(
                f"SELECT id FROM peer_events WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return held

    def _advance(self, db: sqlite3.Connection, gate: str, rows: list[tuple[int, int]]) -> int:
        """The peer's cursor moved along the events we hold without a gap: the next row above the cursor follows
        on when the row it names as `prev` is at or below the cursor (the peer no longer had those in between).
        `rows`: the (seq, prev) just stored, in order. When they follow on from the cursor and nothing was held
        above it (the usual case) that is all; else the rows above the cursor are read, a thousand at a time."""
        cursor = self._cursors.get(gate, 0)
        if gate not in self._gapped:
            for seq, prev in rows:  # all above the cursor (add keeps the rest out)
                if prev > cursor:
                    break
                cursor = seq
            else:
                return cursor
            cursor = self._cursors.get(gate, 0)
        while True:
            held = db.execute("SELECT seq, prev FROM peer_events WHERE gate = ? AND seq > ? ORDER BY seq LIMIT 1000",
                              (gate, cursor)).fetchall()
            for seq, prev in held:
                if prev > cursor:
                    self._gapped.add(gate)  # held above a gap: the next batch must look at those rows too
                    return cursor
                cursor = seq
            if len(held) < 1000:
                self._gapped.discard(gate)
                return cursor

    def cursors(self) -> dict[str, int]:
        with self._lock:
            if self._writable:
                return dict(self._cursors)
            return dict(self.db.execute("SELECT gate, seq FROM cursors").fetchall())

    def ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self.db.execute("SELECT id FROM peer_events")}

    def count(self) -> int:
        with self._lock:
            return self.db.execute("SELECT count(*) FROM peer_events").fetchone()[0]

    def count_rows(self, since: datetime | None = None, until: datetime | None = None) -> list[tuple]:
        """The peers' events as the counts read them (COUNT_COLUMNS), in time order: the union's other half."""
        sql = "SELECT " + ", ".join(COUNT_COLUMNS) + " FROM peer_events WHERE 1"
        args: list[str] = []
        if since is not None:
            sql, args = sql + " AND at >= ?", [*args, iso(since)]
        if until is not None:
            sql, args = sql + " AND at <= ?", [*args, iso(until)]
        with self._lock:
            return self.db.execute(sql + " ORDER BY at, id", args).fetchall()

    def newest(self, zone: str, until: datetime | None = None) -> str | None:
        """The time of the zone's newest peer event (at or before `until`): the counts' current period is the
        newest event's."""
        bound, bounds = ("", ()) if until is None else (" AND at <= ?", (iso(until),))
        with self._lock:
            return self.db.execute("SELECT max(at) FROM peer_events WHERE zone = ?" + bound,
                                   (zone, *bounds)).fetchone()[0]

    def zone_rows(self, zone: str, since: datetime, verdicts: tuple[str, ...],
                  until: datetime | None = None) -> list[tuple]:
        """(at, id, verdict, source, customer_id, value, direction) of the zone's events since `since` (and at
        or before `until`)."""
        marks = ",".join("?" * len(verdicts))
        bound, bounds = ("", ()) if until is None else (" AND at <= ?", (iso(until),))
        with self._lock:
            return self.db.execute(
                "SELECT at, id, verdict, source, customer_id, value, direction FROM peer_events"
                f" WHERE zone = ? AND at >= ? AND verdict IN ({marks})" + bound,
                (zone, iso(since), *verdicts, *bounds)).fetchall()

    def events(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The peers' events from `since` to `until` in time order, as kiosk.venue.messages.parse_event gives
        them (what VenueCounts.add_peer_events takes): `kiosk replay` puts them among the scans it decides."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, gate, seq, prev, at, zone, direction, verdict, source, customer_id, credential, passed,"
                " value FROM peer_events WHERE at >= ? AND at <= ? ORDER BY at, id", (iso(since), iso(until)))
            return [{"id": eid, "gate": gate, "seq": seq, "prev": prev, "at": at, "zone": zone, "dir": direction,
                     "verdict": verdict, "source": source, "customer": customer, "card": card,
                     "passed": None if passed is None else bool(passed), "value": value}
                    for eid, gate, seq, prev, at, zone, direction, verdict, source, customer, card, passed, value
                    in rows]

    # -- gates -----------------------------------------------------------------------------------
    def see_gate(self, gate: str, seen: datetime, *, online: bool | None = None,
                 heartbeat: dict[str, Any] | None = None) -> None:
        with self._tx("record a gate") as db:
            db.execute("INSERT INTO gates (gate, seen_at) VALUES (?, ?) ON CONFLICT (gate) DO UPDATE SET seen_at ="
                       " excluded.seen_at", (gate, iso(seen)))
            if online is not None:
                db.execute("UPDATE gates SET online = ? WHERE gate = ?", (int(online), gate))
            if heartbeat is not None:
                db.execute("UPDATE gates SET heartbeat = ? WHERE gate = ?", (json.dumps(heartbeat), gate))

    def gates(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT gate, online, heartbeat, seen_at FROM gates ORDER BY gate").fetchall()
        return {g: {"online": None if o is None else bool(o), "heartbeat": json.loads(h) if h else None,
                    "seen_at": s} for g, o, h, s in rows}

    # -- housekeeping ----------------------------------------------------------------------------
    def purge(self, now: datetime) -> int:
        cutoff = iso(now - timedelta(days=self.keep_days))
        with self._tx("purge peer events") as db:
            removed = db.execute("DELETE FROM peer_events WHERE at < ?", (cutoff,)).rowcount
            excess = db.execute("SELECT count(*) FROM peer_events").fetchone()[0] - self.max_events
            if excess > 0:
                removed += db.execute("DELETE FROM peer_events WHERE id IN (SELECT id FROM peer_events ORDER BY at"
                                      " LIMIT ?)", (excess,)).rowcount
        if removed:
            log.info("purged %d peer events (older than %d days or past %d)", removed, self.keep_days,
                     self.max_events)
        return removed
