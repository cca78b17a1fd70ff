"""The scan journal: every decision, appended before any output acts on it (SQLite, WAL).

Events are reported upstream by the uploader; acknowledged events are purged after
`keep_days`, and past `max_events` the oldest acknowledged go first. An unacknowledged
event is only ever dropped with a loud warning.

Acknowledgements live in a small file of their own beside the journal (`acks_path`, attached
as `acks`): writing one never takes the journal's write lock, so the uploader (another thread
or another process) never makes a scan wait to be journalled. An event counts as sent when an
acknowledgement names it with the `passed` it still has; `purge` folds acknowledgements into
the journal's `state`, a few hundred at a time.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from .credential import printable
from .errors import JournalError
from .sqlfiles import connect_readonly, is_corrupt, is_passing, move_aside, readable_by_service
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
_ACKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS acks.acks (
    id TEXT PRIMARY KEY,  -- an event the upstream accepted, as journalled with this `passed`
    passed INTEGER,
    at TEXT NOT NULL
);
"""
# An event whose acknowledgement is for the `passed` it has now: sent, until `purge` folds it in.
_ACKED = "EXISTS (SELECT 1 FROM acks.acks a WHERE a.id = events.id AND a.passed IS events.passed)"
_STATE = f"CASE WHEN state = 'pending' AND {_ACKED} THEN 'sent' ELSE state END"
# Only a pending event, and only the version that went: a passage answer that landed meanwhile
# leaves it pending, to go again with the answer.
_ACK = ("INSERT OR REPLACE INTO acks.acks (id, passed, at) SELECT id, passed, ? FROM events"
        " WHERE id = ? AND state = 'pending' AND passed IS ? AND NOT " + _ACKED)
_ACK_CURRENT = ("INSERT OR REPLACE INTO acks.acks (id, passed, at) SELECT id, passed, ? FROM events"
                " WHERE id = ? AND state = 'pending' AND NOT " + _ACKED)
FOLD_BATCH = 100  # events folded in or purged per transaction: a scan on another thread waits at most one (~3 ms)
_INSERT = ("INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor, passed,"
           " reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
_SET_PASSED = ("UPDATE events SET passed = ?, state = CASE state WHEN 'isolated' THEN state ELSE 'pending' END"
               " WHERE id = ?")
COLUMNS = ("id", "at", "gate", "source", "raw", "credential", "verdict", "customer_id", "groups", "cursor",
           "passed", "reason", "state")
_SELECT = ", ".join(COLUMNS[:-1]) + ", " + _STATE


def iso(moment: datetime) -> str:
    """UTC with milliseconds and a Z, as the protocol writes times."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def acks_path(path: str | Path) -> Path | None:
    """Where a journal's acknowledgements are kept (None for a journal in memory)."""
    return None if str(path) == ":memory:" else Path(str(path) + "-acks")


def new_event_id() -> str:
    return str(uuid.uuid4())


HOLD_MAX = 10_000  # decisions kept in memory while the journal cannot be written
RETRY_S = 1.0  # how often a held journal tries to write again
BUSY_MS = 1000  # how long a write waits for another connection's lock before the decision is held
# SQLite folds the WAL into the file in the commit that takes it past 1,000 pages: the connection that
# commits pays for copying the pages and syncing the file, ~6 ms on a VM's disk and far more on an SD card.
# While a `JournalKeeper` checkpoints on its own thread the gate's connection only does so past this many pages
# (10 MiB of 1 KiB pages), a backstop should the keeper be stuck: the WAL never grows without bound.
KEEPER_BACKSTOP_PAGES = 10_000
KEEPER_S = 1.0  # how often the keeper looks
KEEPER_WRITES = 1000  # the gate's commits between two checkpoints (~6 WAL pages a scan: ~6 MiB, under the backstop)
PURGE_S = 3600.0  # how often the keeper purges


class Journal:
    """The scan journal on one connection. Thread-safe.

    Every write is one transaction that commits or rolls back (`_write`): the connection is never left
    inside a transaction. When the journal cannot be written (locked by another process, disk full, an
    I/O error) the gate keeps deciding: `append` keeps the event in memory (at most `hold_max`, then the
    oldest are counted in `lost`) and writes them, in order, as soon as it can (`flush`). `problem` says
    what is wrong meanwhile. A damaged file is moved aside whole and a new journal started.
    """

    def __init__(self, path: str | Path, *, keep_days: int = 90, max_events: int = 1_000_000, sync: str = "normal",
                 readonly: bool = False, hold_max: int = HOLD_MAX):
        self.path = Path(path)
        self.keep_days = keep_days
        self.max_events = max_events
        self.sync = sync
        self.readonly = readonly
        self.hold_max = hold_max
        self._lock = threading.Lock()
        self._counts: dict[str, int] | None = None  # kept up to date by our own writes
        self._data_version = -1
        self._acks_seen = 0  # acknowledgements up to this rowid are in self._counts
        self._held: deque[list[Any]] = deque()  # event rows not yet written, oldest first
        self._held_passed: dict[str, bool] = {}  # passage answers for written events, not yet written
        self._retry_at = 0.0
        self._reopen = False  # opened for reading only (see _open_for_reading): writes open it first
        self.lost = 0  # held events dropped because more than hold_max were waiting
        self.problem: str | None = None  # why the journal cannot be written right now
        self.moved_aside: Path | None = None  # where a damaged journal went
        self._ident: tuple[int, int] | None = None  # the file's (inode, device) while open for writing
        self._autocheckpoint: int | None = None  # pages; None: SQLite's default (see `JournalKeeper`)
        self.writes = 0  # transactions this connection committed (the JournalKeeper counts them)
        self.wake_every: tuple[int, threading.Event] | None = None  # (n, event): set the event every n commits
        try:
            self._connect()
        except sqlite3.Error as exc:
            if readonly:
                raise JournalError(f"{self.path}: cannot open the journal ({exc})") from exc
            if is_corrupt(exc):
                self._start_afresh(exc)
            elif is_passing(exc):
                self._open_for_reading(exc)
            else:  # a folder in its place, no permission: a setup error that waiting does not mend
                raise JournalError(f"{self.path}: cannot open the journal ({exc})") from exc

    def _open_for_reading(self, exc: sqlite3.Error) -> None:
        """The journal cannot be opened for writing (a full disk cannot even take its -shm file): the gate
        decides on, decisions are held in memory, and every write tries to open it properly again."""
        self._reopen = True
        self.problem = f"cannot open the journal for writing: {exc}"
        self._retry_at = time.monotonic() + RETRY_S
        log.error("%s: cannot open the journal for writing (%s); decisions are kept in memory (at most %d) "
                  "until it can", self.path, exc, self.hold_max)
        try:
            self.db = connect_readonly(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("SELECT 1 FROM events LIMIT 1").fetchall()
            self._attach_acks_readonly()
        except sqlite3.Error:
            self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self.db.executescript(_SCHEMA)
            self.db.execute("ATTACH DATABASE ':memory:' AS acks")
            self.db.executescript(_ACKS_SCHEMA)
        self._ident = None

    def _reopen_if_due(self) -> None:
        """After `_open_for_reading`: try the writable connection again, at most every RETRY_S."""
        if time.monotonic() < self._retry_at:
            raise sqlite3.OperationalError(self.problem or "the journal is not open for writing")
        stand_in = self.db
        try:
            self._connect()
        except sqlite3.Error as exc:
            self.db = stand_in
            self._retry_at = time.monotonic() + RETRY_S
            raise exc
        stand_in.close()
        self._reopen = False
        self._counts = None
        log.warning("%s: the journal is open for writing again", self.path)

    def _connect(self) -> None:
        if self.readonly:
            self.db = connect_readonly(self.path, check_same_thread=False, isolation_level=None)
            self._attach_acks_readonly()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                      timeout=BUSY_MS / 1000)
            try:
                # Small pages: each scan's commit writes a handful of whole pages to the WAL, and on an SD
                # card 1 KiB pages cost a quarter of the default 4 KiB (see docs/operations.md).
                self.db.execute("PRAGMA page_size=1024")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={self.synchronous}")
                if self._autocheckpoint is not None:
                    self.db.execute(f"PRAGMA wal_autocheckpoint={int(self._autocheckpoint)}")
                self.db.executescript(_SCHEMA)
                self._attach_acks()
            except sqlite3.Error:
                self.db.close()
                raise
            if new:
                readable_by_service(self.path)
        self._ident = _ident(self.path)

    def _attach_acks(self) -> None:
        path = acks_path(self.path)
        new = path is not None and not path.exists()
        try:
            self._open_acks(path)
        except sqlite3.Error as exc:
            if path is None or not is_corrupt(exc):
                raise
            # A damaged acknowledgements file costs only resending (the upstream deduplicates by id): it must
            # not cost the journal, so it alone goes aside.
            with contextlib.suppress(sqlite3.Error):  # not attached when ATTACH itself found the damage
                self.db.execute("DETACH DATABASE acks")
            move_aside(path, str(exc))
            log.error("%s: the acknowledgements file was damaged (%s) and set aside; its events are reported again",
                      path, exc)
            new = True
            self._open_acks(path)
        if new and path is not None:
            readable_by_service(path)

    def _open_acks(self, path: Path | None) -> None:
        self.db.execute("ATTACH DATABASE ? AS acks", (str(path or ":memory:"),))
        self.db.execute("PRAGMA acks.page_size=1024")
        self.db.execute("PRAGMA acks.journal_mode=WAL")
        self.db.execute(f"PRAGMA acks.synchronous={self.synchronous}")
        self.db.executescript(_ACKS_SCHEMA)

    def _attach_acks_readonly(self) -> None:
        """A reader sees acknowledgements if there are any; without the file, none (nothing is created)."""
        path = acks_path(self.path)
        try:
            if path is None or not path.exists():
                raise sqlite3.OperationalError("no acknowledgements file")
            self.db.execute("ATTACH DATABASE ? AS acks", (f"file:{path}?mode=ro",))
            self.db.execute("SELECT 1 FROM acks.acks LIMIT 1").fetchall()
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("DETACH DATABASE acks")
            self.db.execute("ATTACH DATABASE ':memory:' AS acks")
            self.db.executescript(_ACKS_SCHEMA)

    def _start_afresh(self, exc: sqlite3.Error) -> None:
        """The file is damaged: keep it aside for whoever wants to look, and journal into a new one."""
        with contextlib.suppress(Exception):
            self.db.close()
        try:
            self.moved_aside = move_aside(self.path, str(exc))
            self._connect()
        except (OSError, sqlite3.Error) as again:
            raise JournalError(f"{self.path}: the journal is damaged ({exc}) and cannot be replaced ({again})") \
                from again
        self._counts = None

    @property
    def synchronous(self) -> str:
        """SQLite's `synchronous` for `journal.sync`, on every connection that writes the journal's files."""
        return "FULL" if self.sync == "full" else "NORMAL"

    def autocheckpoint(self, pages: int | None) -> None:
        """Past how many WAL pages this connection's own commit checkpoints (None: SQLite's default, 1,000)."""
        with self._lock:
            self._autocheckpoint = pages
            if not self.readonly:
                self.db.execute(f"PRAGMA wal_autocheckpoint={1000 if pages is None else int(pages)}")

    def restart_wal(self, keeper: sqlite3.Connection) -> bool:
        """The JournalKeeper's one small write on its own connection `keeper`, after it folded the whole WAL: the
        commit that starts the WAL afresh syncs its header, and this way it is not a scan's. Under this
        journal's lock, so the counts it keeps are not thought changed by another process (that write moves
        `data_version`). False when someone else held the write lock (tried again after the next fold)."""
        with self._lock:
            if self.readonly or self._reopen:
                return False
            ours = self.db.execute("PRAGMA main.data_version").fetchone()[0] == self._data_version
            try:
                # The smallest write there is, the header's user_version flipping between 0 and 1: nothing reads it.
                flipped = 1 - (keeper.execute("PRAGMA user_version").fetchone()[0] & 1)
                keeper.execute(f"PRAGMA user_version={flipped}")
            except sqlite3.OperationalError as exc:
                if not is_passing(exc):
                    raise
                return False
            if ours:
                self._data_version = self.db.execute("PRAGMA main.data_version").fetchone()[0]
            return True

    def close(self) -> None:
        with self._lock:
            if self._held or self._held_passed:
                self._retry_at = 0.0
                self._flush_held()
            if self._held:
                log.error("%s: closing with %d decisions never written (%s)", self.path, len(self._held), self.problem)
            self.db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # also when the block raised: what is held is written, the file let go

    @contextlib.contextmanager
    def _write(self, what: str, *, begin: bool = True, only_acks: bool = False) -> Iterator[sqlite3.Connection]:
        """One write: committed, or rolled back and raised as JournalError. Call with self._lock held.

        `begin=False` for a single statement, which SQLite runs as its own transaction. `only_acks`: a
        deferred transaction, which locks only what it writes (BEGIN IMMEDIATE would also take the
        journal's write lock, as it locks every attached file)."""
        try:
            if self._reopen:
                self._reopen_if_due()
            if begin:
                self.db.execute("BEGIN" if only_acks else "BEGIN IMMEDIATE")
            yield self.db
            if begin:
                self.db.execute("COMMIT")
            self.writes += 1
            if self.wake_every is not None and self.writes % self.wake_every[0] == 0:
                self.wake_every[1].set()
        except sqlite3.Error as exc:
            self._rollback()
            if is_corrupt(exc) and not self.readonly:
                self._start_afresh(exc)
            raise JournalError(f"{self.path}: cannot {what} ({exc})") from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        self._counts = None
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")

    # -- writing -----------------------------------------------------------------------
    def append(self, *, at: datetime, gate: str, source: str, raw: str, credential: str, verdict: str,
               customer_id: str | None, groups: Iterable[str], cursor: str, reason: str = "",
               passed: bool | None = None, event_id: str | None = None) -> str:
        """Append one event and return its id: committed before this returns, or, while the journal cannot
        be written, held in memory (see `held`) and written by a later `append` or `flush`."""
        event_id = event_id or new_event_id()
        row = [event_id, iso(at), gate, source, printable(raw), printable(credential), verdict, customer_id,
               json.dumps(list(groups)), cursor, None if passed is None else int(passed), reason]
        with self._lock:
            if self._held:
                self._flush_held()
            if not self._held:
                try:
                    with self._write("append to the journal", begin=False):
                        self.db.execute(_INSERT, row)
                except JournalError as exc:
                    if self.readonly or isinstance(exc.__cause__, sqlite3.IntegrityError):
                        raise
                    if not is_corrupt(exc.__cause__):
                        self._hold(row, exc)
                        return event_id
                    with self._write("append to the new journal", begin=False):  # the damaged one is aside
                        self.db.execute(_INSERT, row)
                if self._counts is not None:
                    self._counts["pending"] += 1
                return event_id
            self._hold(row, None)
        return event_id

    def _hold(self, row: list[Any], exc: JournalError | None) -> None:
        if exc is not None:
            self.problem = f"cannot write the journal: {exc.__cause__}"
            log.error("%s; decisions are kept in memory (at most %d) until it can", exc, self.hold_max)
            self._retry_at = time.monotonic() + RETRY_S
        self._held.append(row)
        if len(self._held) > self.hold_max:
            self._held.popleft()
            self.lost += 1
            if self.lost == 1 or self.lost % 1000 == 0:
                log.error("%s: %d decisions LOST: more than %d were waiting to be written", self.path, self.lost,
                          self.hold_max)

    @property
    def held(self) -> int:
        """Decisions made but not yet written (the journal could not be written)."""
        return len(self._held)

    def flush(self) -> bool:
        """Write held decisions if the journal can take them again (tried at most every RETRY_S).
        True when nothing is held any more."""
        with self._lock:
            if self._held or self._held_passed:
                self._flush_held()
            return not self._held and not self._held_passed

    def _flush_held(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        self.db.execute("PRAGMA busy_timeout=0")  # a retry must not stall the gate's loop
        try:
            with self._write("write held decisions"):
                self.db.executemany(_INSERT, self._held)
                for event_id, passed in self._held_passed.items():
                    self.db.execute(_SET_PASSED, (int(passed), event_id))
        except JournalError as exc:
            self._retry_at = time.monotonic() + RETRY_S
            self.problem = f"cannot write the journal: {exc.__cause__}"
            return
        finally:
            self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        if self._held:
            log.warning("%s can be written again: wrote %d held decisions", self.path, len(self._held))
        self._held.clear()
        self._held_passed.clear()
        self.problem = None
        self._counts = None

    def set_passed(self, event_id: str, passed: bool) -> None:
        """Record what the passage sensor saw; the event is (re)reported with it."""
        with self._lock:
            for row in self._held:
                if row[0] == event_id:
                    row[10] = int(passed)
                    return
            self._count_new_acks()
            before = self._category(event_id)
            try:
                with self._write("record a passage", begin=False):
                    self.db.execute(_SET_PASSED, (int(passed), event_id))
            except JournalError as exc:
                if self.readonly:
                    raise
                self._held_passed[event_id] = passed
                self.problem = f"cannot write the journal: {exc.__cause__}"
                self._retry_at = time.monotonic() + RETRY_S
                log.error("%s; the passage is kept in memory until it can", exc)
                return
            # Kept, not recounted: a recount joins every acknowledgement not yet folded in.
            after = self._category(event_id)
            if self._counts is not None and before != after:
                if before is not None:
                    self._counts[before] -= 1
                if after is not None:
                    self._counts[after] += 1

    def _category(self, event_id: str) -> str | None:
        """The event's state as counted: acknowledgements not yet counted (`_acks_seen`) do not count yet."""
        row = self.db.execute(
            "SELECT state, EXISTS (SELECT 1 FROM acks.acks a WHERE a.id = events.id AND a.passed IS events.passed"
            " AND a.rowid <= ?) FROM events WHERE id = ?", (self._acks_seen, event_id)).fetchone()
        if row is None:
            return None
        return "sent" if row[0] == "pending" and row[1] else row[0]

    # -- reporting ---------------------------------------------------------------------
    def pending(self, limit: int = 500) -> list[dict[str, Any]]:
        """Unacknowledged events, oldest first, as protocol events."""
        return self.pending_after(0, limit)[0]

    def pending_after(self, after: int, limit: int = 500) -> tuple[list[dict[str, Any]], int]:
        """Unacknowledged events past journal position `after`, oldest first, and the position of the last.

        A drain asks from where its last batch ended: from the start, every batch would first step over
        all the events acknowledged but not yet folded in."""
        with self._lock:
            self._follow()
            rows = self.db.execute(
                "SELECT id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor, passed, seq"
                f" FROM events WHERE state = 'pending' AND seq > ? AND NOT {_ACKED} ORDER BY seq LIMIT ?",
                (after, limit)).fetchall()
        return [
            {"id": r[0], "at": r[1], "gate": r[2], "source": r[3], "raw": r[4], "credential": r[5], "verdict": r[6],
             "customer_id": r[7], "groups": json.loads(r[8]), "cursor": r[9],
             "passed": None if r[10] is None else bool(r[10])}
            for r in rows
        ], (rows[-1][11] if rows else after)

    def _follow(self) -> None:
        """A reader whose file was moved aside (another connection found it damaged) opens the new one."""
        if self._ident is not None and _ident(self.path) not in (None, self._ident):
            self.db.close()
            self._connect()
            self._counts = None

    def mark_sent(self, sent: Iterable[str | dict[str, Any]], at: datetime) -> int:
        """Acknowledge events: protocol events as sent (an event whose `passed` changed since stays pending,
        to go again), or bare ids (the event as journalled now). Returns how many became sent.

        Written to the acknowledgements file only, never taking the journal's write lock; raises
        JournalError (nothing marked) when that file cannot be written."""
        when = iso(at)
        with self._lock:
            sent = list(sent)
            versions = [(when, e["id"], None if e["passed"] is None else int(e["passed"])) for e in sent
                        if isinstance(e, dict)]
            ids = [(when, e) for e in sent if isinstance(e, str)]
            with self._write("mark events sent", only_acks=True):
                marked = self.db.executemany(_ACK, versions).rowcount if versions else 0
                marked += self.db.executemany(_ACK_CURRENT, ids).rowcount if ids else 0
        return marked

    def isolate(self, event_id: str, note: str) -> None:
        """Set a bad event aside so it can never block the queue; it stays here and in status."""
        with self._lock:
            with self._write("set an event aside", begin=False):
                self.db.execute("UPDATE events SET state = 'isolated', state_note = ? WHERE id = ?",
                                (note[:500], event_id))
            self._counts = None

    # -- housekeeping ------------------------------------------------------------------
    def fold_acks(self, batch: int = FOLD_BATCH) -> int:
        """Fold acknowledgements into the journal's `state`, `batch` per transaction, letting scans in between.
        Returns how many events became sent."""
        folded = 0
        while True:
            with self._lock:
                self._counts = None
                with self._write("fold acknowledgements into the journal") as db:
                    top = db.execute("SELECT rowid FROM acks.acks ORDER BY rowid LIMIT 1 OFFSET ?",
                                     (batch - 1,)).fetchone()
                    limit = top[0] if top else db.execute("SELECT max(rowid) FROM acks.acks").fetchone()[0]
                    if limit is None:
                        return folded
                    # Driven by the acknowledgements through the unique index on events.id (`+state` keeps SQLite off
                    # the pending-queue index): as a join it walked every pending event for each batch, and folding
                    # 100,000 acknowledgements took 44 s; now ~3 s, in batches.
                    folded += db.execute(
                        "UPDATE events SET state = 'sent',"
                        " sent_at = (SELECT a.at FROM acks.acks a WHERE a.id = events.id)"
                        " WHERE id IN (SELECT id FROM acks.acks WHERE rowid <= ?) AND +state = 'pending'"
                        " AND passed IS (SELECT a.passed FROM acks.acks a WHERE a.id = events.id)",
                        (limit,)).rowcount
                    # An acknowledgement for a version since changed is spent: that version goes again.
                    db.execute("DELETE FROM acks.acks WHERE rowid <= ?", (limit,))
            if top is None:
                return folded

    def purge(self, now: datetime, batch: int = FOLD_BATCH) -> int:
        """Drop acknowledged events older than keep_days; past max_events, the oldest acknowledged first.

        In transactions of `batch` events, so a scan on another thread (`JournalKeeper` runs this) waits for
        one at most."""
        cutoff = iso(now - timedelta(days=self.keep_days))
        self.fold_acks(batch)
        removed = 0
        while True:
            with self._lock:
                self._counts = None
                with self._write("purge old events") as db:
                    n = db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'sent'"
                                   " AND at < ? ORDER BY seq LIMIT ?)", (cutoff, batch)).rowcount
            removed += n
            if n < batch:
                break
        with self._lock:
            self._counts = None
            with self._write("purge old events") as db:
                # The span of sequence numbers bounds the count and costs two index reads; count(*) walks a
                # million rows, and a scan would wait for it.
                low, high = db.execute("SELECT min(seq), max(seq) FROM events").fetchone()
                span = 0 if low is None else high - low + 1
                total = db.execute("SELECT count(*) FROM events").fetchone()[0] if span > self.max_events else span
                excess = total - self.max_events
                if excess > 0:
                    removed += db.execute(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = 'sent' ORDER BY seq"
                        " LIMIT ?)", (excess,)).rowcount
                    total = db.execute("SELECT count(*) FROM events").fetchone()[0]
                    excess = total - self.max_events
                    if excess > 0:
                        log.warning("journal holds %d events, over journal.max_events = %d, and %d of them were never "
                                    "reported upstream: dropping the oldest %d UNREPORTED events", total,
                                    self.max_events, excess, excess)
                        removed += db.execute(
                            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
                            (excess,)).rowcount
        return removed

    # -- reading -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Events by state. Counted once, then kept by our own writes (a GROUP BY over a big journal is slow
        on a Pi and the screen asks often); recounted when another process wrote the journal."""
        with self._lock:
            self._follow()
            version = self.db.execute("PRAGMA main.data_version").fetchone()[0]
            if self._counts is None or version != self._data_version:
                self.db.execute("BEGIN")  # one snapshot of both files
                try:
                    rows = dict(self.db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
                    self._acks_seen = self.db.execute("SELECT coalesce(max(rowid), 0) FROM acks.acks").fetchone()[0]
                    acked = self._acked_between(0, self._acks_seen)
                finally:
                    self.db.execute("COMMIT")
                self._counts = {s: rows.get(s, 0) for s in ("pending", "sent", "isolated")}
                self._counts["pending"] -= acked
                self._counts["sent"] += acked
                self._data_version = version
            else:
                self._count_new_acks()
            counts = dict(self._counts)
        return {"total": sum(counts.values()), **counts}

    def _acked_between(self, low: int, high: int) -> int:
        return self.db.execute(
            # CROSS JOIN keeps the acknowledgements outermost: driven by the pending events instead, a count
            # of a few new acknowledgements would walk the whole backlog.
            "SELECT count(*) FROM acks.acks a CROSS JOIN events e ON e.id = a.id AND e.state = 'pending'"
            " AND a.passed IS e.passed WHERE a.rowid > ? AND a.rowid <= ?", (low, high)).fetchone()[0]

    def _count_new_acks(self) -> None:
        """Add acknowledgements written since the last count (by any connection) to self._counts: only the
        new ones are joined, so a status asked for during a long drain stays cheap."""
        if self._counts is None:
            return
        top = self.db.execute("SELECT coalesce(max(rowid), 0) FROM acks.acks").fetchone()[0]
        if top > self._acks_seen:
            acked = self._acked_between(self._acks_seen, top)
            self._counts["pending"] -= acked
            self._counts["sent"] += acked
            self._acks_seen = top

    def last_at(self) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def events(self, since: datetime | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT " + _SELECT + " FROM events"
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
            event = dict(zip(COLUMNS, row, strict=True))
            event["groups"] = json.loads(event["groups"])
            event["passed"] = None if event["passed"] is None else bool(event["passed"])
            yield event

    def recent(self, n: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT " + _SELECT + " FROM events ORDER BY seq DESC LIMIT ?",
                                   (n,)).fetchall()
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]

    def isolated(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT id, at, verdict, state_note FROM events WHERE state = 'isolated' "
                                   "ORDER BY seq").fetchall()
        return [{"id": r[0], "at": r[1], "verdict": r[2], "note": r[3]} for r in rows]


class JournalKeeper:
    """The journal's housekeeping on a thread of its own, so no scan pays for it: the WAL, and `purge`.

    `purge` (every `purge_every_s`, first at start): folding acknowledgements in and dropping old events,
    in small transactions; on the gate's thread it held every scan (and the watchdog) for its whole run.

    Left to SQLite, the commit that takes the WAL past 1,000 pages copies them into the file and syncs it,
    and the next commit, starting the WAL afresh, syncs its header: about one scan in 150 waited ~6 ms on
    the development VM (`./scripts/bench drain` had taken it for the drain's cost, BENCHMARKS.md). Here,
    once the gate has made `every_writes` commits, the keeper's own connection runs a PASSIVE checkpoint
    (never blocking the gate's writes; SQLite runs it without the GIL) and, if that folded the whole WAL,
    makes the one small write that starts the WAL afresh, so that sync is the keeper's too (`Journal.
    restart_wal`). The gate's connection keeps a backstop (`KEEPER_BACKSTOP_PAGES`) should the keeper be
    stuck, and SQLite's default comes back when it stops. A failure is logged once per run of failures.
    """

    def __init__(self, journal: Journal, *, interval_s: float = KEEPER_S, every_writes: int = KEEPER_WRITES,
                 backstop_pages: int = KEEPER_BACKSTOP_PAGES, purge: Callable[[], None] | None = None,
                 purge_every_s: float = PURGE_S):
        self.journal = journal
        self.purge = purge
        self.purge_every_s = purge_every_s
        self.interval_s = interval_s
        self.every_writes = every_writes
        self.backstop_pages = backstop_pages
        self.failures = 0  # in a row
        self._db: sqlite3.Connection | None = None
        self._ident: tuple[int, int] | None = None
        self._writes = -every_writes  # the journal's write count at the last checkpoint: the first cycle runs
        self._stop = threading.Event()
        self._wake = threading.Event()  # every `every_writes` commits, and at stop
        self._cycling = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.journal.autocheckpoint(self.backstop_pages)
        # Woken by the commits themselves: at a rush's pace the WAL would reach the backstop between two looks.
        self.journal.wake_every = (self.every_writes, self._wake)
        self.cycle()  # the WAL as the last run left it: folded, and started afresh here rather than by a scan
        self._thread = threading.Thread(target=self._loop, name="journal-wal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.journal.wake_every = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._writes = -self.every_writes
        self.cycle()  # what the last scans wrote, so the next start finds a short WAL
        self._close()
        self.journal.autocheckpoint(None)

    def _loop(self) -> None:
        next_purge = time.monotonic()
        while not self._stop.is_set():
            if self.purge is not None and time.monotonic() >= next_purge:
                next_purge = time.monotonic() + self.purge_every_s
                try:
                    self.purge()
                except Exception:  # a bug must not end the checkpoints
                    log.exception("journal housekeeping failed")
            self.cycle()
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def cycle(self) -> bool:
        """Checkpoint if the gate has written `every_writes` times since the last; False when that failed."""
        with self._cycling:  # one connection, one caller at a time (the thread; start and stop)
            return self._cycle()

    def _cycle(self) -> bool:
        writes = self.journal.writes
        if writes - self._writes < self.every_writes:
            return True
        try:
            db = self._connection()
            if db is None:
                return True
            busy, frames, folded = db.execute("PRAGMA main.wal_checkpoint(PASSIVE)").fetchone()
            if busy == 0 and frames == folded:  # all folded (or the WAL is empty): the next commit restarts it
                self._writes = writes
                self.journal.restart_wal(db)
            # else a reader's snapshot held some pages back: tried again at the next look, not 1,000 commits on
        except sqlite3.Error as exc:
            self._close()  # a file moved aside or replaced: the next try opens the one at the path
            self.failures += 1
            if self.failures == 1:
                log.warning("%s: checkpointing the journal failed (%s); tried again every %.0f s, and past %d "
                            "pages the gate's own commits checkpoint", self.journal.path, exc, self.interval_s,
                            self.backstop_pages)
            return False
        if self.failures:
            log.info("%s: checkpointing the journal works again", self.journal.path)
            self.failures = 0
        return True

    def _connection(self) -> sqlite3.Connection | None:
        ident = _ident(self.journal.path)
        if self._db is not None and ident == self._ident:
            return self._db
        self._close()
        if ident is None:  # no journal file (yet): nothing to fold
            return None
        # mode=rw never creates the file; busy_timeout 0: a write the gate (or another process) holds the lock
        # for is skipped, never waited for.
        db = sqlite3.connect(f"file:{self.journal.path}?mode=rw", uri=True, check_same_thread=False,
                             isolation_level=None, timeout=0)
        # The restart's sync is the same as the gate's commits would do (the WAL header is synced either way).
        db.execute(f"PRAGMA synchronous={self.journal.synchronous}")
        self._db, self._ident = db, ident
        return db

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev)


def write_csv(events: Iterable[dict[str, Any]], out: IO[str]) -> int:
    csv.writer(out).writerow(COLUMNS)
    # Every cell quoted (OWASP): a spreadsheet whose list separator is ";" (Dutch Excel) would otherwise split
    # an unquoted "x;=HYPERLINK(...)" into a new cell that starts with "=".
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    n = 0
    for event in events:
        row = dict(event)
        row["groups"] = ";".join(row["groups"])
        row["passed"] = "" if row["passed"] is None else str(row["passed"]).lower()
        writer.writerow([csv_cell(row[c]) for c in COLUMNS])
        n += 1
    return n
