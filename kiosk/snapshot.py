"""The local snapshot of customers, groups and cards: one SQLite file.

Writers never touch the live file in place for a full load: they build a new file in one
transaction and `os.replace` it, so a crash at any point leaves the previous snapshot
intact. Deltas run in one transaction on the live file (SQLite's rollback journal makes a
crash there safe too). Readers use a read-only connection and notice a swapped file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator

from .credential import card_key, customer_key
from .errors import SnapshotError
from .model import Card, Customer, Group
from .pass_keys import PASS_RECORDS, apply_pass_record
from .records import (RecordError, card_from_row, check_card, check_customer, check_delete, check_group,
                      customer_from_row, group_from_row, normalise_postcode)
from .sqlfiles import is_corrupt, move_aside, readable_by_service

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, scannable INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers (
    key TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, first_name TEXT NOT NULL,
    last_name TEXT NOT NULL, name TEXT NOT NULL, active INTEGER NOT NULL, groups TEXT NOT NULL,
    valid_from TEXT, valid_until TEXT, email TEXT NOT NULL, postcode TEXT NOT NULL,
    photo TEXT NOT NULL, tags TEXT NOT NULL,
    last_fold TEXT NOT NULL, first_fold TEXT NOT NULL, email_fold TEXT NOT NULL, postcode_norm TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cards (
    key TEXT PRIMARY KEY, code TEXT NOT NULL, customer_key TEXT, card_type TEXT NOT NULL,
    revoked INTEGER NOT NULL, batch TEXT NOT NULL, entries INTEGER, entries_at TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pass_keys (key_id INTEGER PRIMARY KEY, public_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pass_revocations (customer_key TEXT NOT NULL, serial INTEGER NOT NULL,
    PRIMARY KEY (customer_key, serial)) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS customers_by_name ON customers (last_fold, first_fold);
CREATE INDEX IF NOT EXISTS customers_by_email ON customers (email_fold) WHERE email_fold != '';
CREATE INDEX IF NOT EXISTS customers_by_postcode ON customers (postcode_norm) WHERE postcode_norm != '';
CREATE INDEX IF NOT EXISTS cards_by_customer ON cards (customer_key);
CREATE INDEX IF NOT EXISTS punch_cards ON cards (key) WHERE card_type = 'PUNCH';
"""
_CUSTOMER_COLS = ("key, id, kind, first_name, last_name, name, active, groups, valid_from, valid_until, email, "
                  "postcode, photo, tags")
# How long an owner read with its card may answer the next customer() call: that call comes microseconds
# later in decide(); a later one reads afresh, so a delta committed since is seen.
_OWNER_FRESH_S = 0.05
_CUSTOMER_BY_KEY = f"SELECT {_CUSTOMER_COLS} FROM customers WHERE key = ?"
_INSERT_CUSTOMER = ("INSERT OR REPLACE INTO customers VALUES (" + ",".join("?" * 18) + ")")
_INSERT_CARD = "INSERT OR REPLACE INTO cards VALUES (?,?,?,?,?,?,?,?)"
_CARD_COLS = "key, code, customer_key, card_type, revoked, batch, entries, entries_at"
# A file written before punch cards had a balance: the same columns, the balance read as none.
_OLD_CARD_COLS = "key, code, customer_key, card_type, revoked, batch, NULL, NULL"
_INSERT_GROUP = "INSERT OR REPLACE INTO groups VALUES (?,?,?)"
_BATCH = 5000


def _card_and_owner(card_cols: str) -> str:
    """A card with its owner's row in one statement: decide() asks for the owner right after the card, and
    one statement instead of two saves a read transaction (lock, check, unlock) per card scan."""
    cols = ", ".join(c if c == "NULL" else f"cards.{c}" for c in card_cols.split(", "))
    owner = ", ".join(f"customers.{c}" for c in _CUSTOMER_COLS.split(", "))
    return (f"SELECT {cols}, {owner} FROM cards LEFT JOIN customers ON customers.key = cards.customer_key "
            "WHERE cards.key = ?")


_CARD_AND_OWNER = _card_and_owner(_CARD_COLS)
_CARD_WIDTH = len(_CARD_COLS.split(", "))


@dataclass
class LoadResult:
    groups: int = 0
    customers: int = 0
    cards: int = 0
    deleted: int = 0
    skipped: int = 0  # records of an unknown type
    passes: int = 0  # pass_key and pass_revocation records

    @property
    def records(self) -> int:
        return self.groups + self.customers + self.cards + self.deleted + self.skipped + self.passes


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """One snapshot writer at a time (the sync thread, `kiosk import`, ...), across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(str(path) + ".lock")
    new = not lock.exists()
    # Read-only is enough for flock, so a lock file root made under umask 077 still works for the kiosk.
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o640)
    try:
        if new:
            readable_by_service(lock)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def sqlite_errors(path: Path, what: str) -> Iterator[None]:
    """The snapshot's boundary: sqlite3 errors become SnapshotError naming the file and what failed."""
    try:
        yield
    except sqlite3.Error as exc:
        hint = "; it is damaged: `kiosk import --replace` or `kiosk sync` makes a new one" if is_corrupt(exc) else ""
        raise SnapshotError(f"{path}: cannot {what} ({exc}){hint}") from exc


class SnapshotBuilder:
    """Applies records to a snapshot in one transaction, then makes the result live.

    mode "full":  a new, empty file; swapped in by `commit`.
    mode "merge": a copy of the live file; records upsert into it; swapped in by `commit`.
    mode "delta": one transaction on the live file itself.
    Anything but `commit` (an exception, `abort`, a crash) leaves the live snapshot as it was.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "full"):
        if mode not in ("full", "merge", "delta"):
            raise ValueError(mode)
        self.path = Path(path)
        self.mode = mode
        self.result = LoadResult()
        self._pending: dict[str, list[tuple]] = {"groups": [], "customers": [], "cards": []}
        self._lock_cm = writer_lock(self.path)
        self._lock_cm.__enter__()
        try:
            with sqlite_errors(self.path, f"open the snapshot for a {mode} load"):
                self._open()
        except BaseException:
            self.abort()
            raise

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.mode == "delta":
            if not self.path.exists():
                raise SnapshotError(f"{self.path}: no snapshot to apply a delta to")
            self._target = self.path
        else:
            # Holding the writer lock, any half-built file is a dead writer's (a kill -9): clear it.
            for stale in self.path.parent.glob(f"{self.path.name}.new-*"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            self._target = self.path.with_name(f"{self.path.name}.new-{os.getpid()}")
            if self.mode == "merge" and self.path.exists():
                src = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                dst = sqlite3.connect(self._target)
                try:
                    src.backup(dst)
                finally:
                    src.close()
                    dst.close()
        self.db = sqlite3.connect(self._target, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=DELETE")
        self.db.execute("PRAGMA synchronous=NORMAL" if self.mode == "delta" else "PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-16000")  # 16 MB: bounded memory on a 1M-customer load
        self.db.executescript(_SCHEMA)
        if "entries" not in {row[1] for row in self.db.execute("PRAGMA table_info(cards)")}:
            self.db.executescript("ALTER TABLE cards ADD COLUMN entries INTEGER; "
                                  "ALTER TABLE cards ADD COLUMN entries_at TEXT;")
        self.db.execute("BEGIN IMMEDIATE")

    # -- records -----------------------------------------------------------------------
    def apply(self, record: dict[str, Any]) -> None:
        """Apply one protocol record. Raises RecordError naming what is wrong with it, SnapshotError when
        the file cannot take it (the caller aborts the load)."""
        with sqlite_errors(self.path, "write the snapshot"):
            self._apply(record)

    def _apply(self, record: dict[str, Any]) -> None:
        if not isinstance(record, dict):
            raise RecordError("a record must be a JSON object")
        kind = record.get("type")
        if kind == "customer":
            self._add("customers", check_customer(record))
        elif kind == "card":
            self._add("cards", check_card(record))
        elif kind == "group":
            self._add("groups", check_group(record))
        elif kind in PASS_RECORDS:
            apply_pass_record(self.db, record)
            self.result.passes += 1
        elif kind == "delete":
            entity, key = check_delete(record)
            self._flush()
            table = {"customer": "customers", "card": "cards", "group": "groups"}[entity]
            column = "id" if entity == "group" else "key"
            self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
            self.result.deleted += 1
        else:
            self.result.skipped += 1

    def add_customer(self, row: tuple) -> None:
        self._add("customers", row)

    def add_customers(self, rows: Iterable[tuple]) -> None:
        """Checked customer rows (records.check_customer's tuples) streamed into one executemany: a bulk
        load's fast path, with no Python call per row here."""
        self._flush_table("customers")
        before = self.db.total_changes
        self.db.executemany(_INSERT_CUSTOMER, rows)
        self.result.customers += self.db.total_changes - before

    def _add(self, table: str, row: tuple) -> None:
        pending = self._pending[table]
        pending.append(row)
        setattr(self.result, table, getattr(self.result, table) + 1)
        if len(pending) >= _BATCH:
            self._flush_table(table)

    def _flush_table(self, table: str) -> None:
        rows = self._pending[table]
        if rows:
            sql = {"customers": _INSERT_CUSTOMER, "cards": _INSERT_CARD, "groups": _INSERT_GROUP}[table]
            self.db.executemany(sql, rows)
            rows.clear()

    def _flush(self) -> None:
        for table in self._pending:
            self._flush_table(table)

    def totals(self) -> dict[str, int]:
        """What the snapshot will hold once committed."""
        self._flush()
        return {t: self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("customers", "groups", "cards")}

    def group_ids(self) -> set[str]:
        self._flush()
        return {row[0] for row in self.db.execute("SELECT id FROM groups")}

    # -- finish ------------------------------------------------------------------------
    def commit(self, meta: dict[str, str]) -> LoadResult:
        try:
            with sqlite_errors(self.path, "commit the snapshot"):
                self._commit(meta)
        except BaseException:
            self.abort()
            raise
        self._lock_cm.__exit__(None, None, None)
        return self.result

    def _commit(self, meta: dict[str, str]) -> None:
        self._flush()
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(k, str(v)) for k, v in {**meta, "schema": SCHEMA_VERSION}.items()])
        if self.mode != "delta":
            self.db.execute("COMMIT")
            self.db.executescript(_INDEXES)
            self.db.execute("PRAGMA synchronous=FULL")
        else:
            self.db.execute("COMMIT")
        self.db.close()
        if self.mode != "delta":
            readable_by_service(self._target)
            _fsync(self._target)
            os.replace(self._target, self.path)
            _fsync_dir(self.path.parent)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.db.execute("ROLLBACK")
        with contextlib.suppress(Exception):
            self.db.close()
        if self.mode != "delta" and hasattr(self, "_target"):
            with contextlib.suppress(FileNotFoundError):
                self._target.unlink()
            for suffix in ("-journal",):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(self._target) + suffix).unlink()
        with contextlib.suppress(Exception):
            self._lock_cm.__exit__(None, None, None)

    def __enter__(self) -> "SnapshotBuilder":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def load_records(path: str | os.PathLike[str], records: Iterable[dict], meta: dict[str, str],
                 mode: str = "full") -> LoadResult:
    with SnapshotBuilder(path, mode) as builder:
        for record in records:
            builder.apply(record)
        return builder.commit(meta)


class SnapshotStore:
    """Read side of the snapshot: indexed point reads on a read-only connection.

    Thread-safe. Reopens by itself when a writer swapped the file (checked at most every
    `recheck_s`), and refreshes its cached groups and meta when a delta was committed.

    A file it cannot read raises SnapshotError, unless `heal` (the running kiosk): then a damaged file is
    moved aside (never deleted), an unreadable one left alone, and the store reads as empty, so the
    gate decides by its stale policy, until a sync or an import brings a good file. `problem` says why,
    and `on_problem(text or None)` is told when that changes. `report` does the same but moves nothing.
    """

    def __init__(self, path: str | os.PathLike[str], recheck_s: float = 0.5, *, heal: bool = False,
                 report: bool = False, on_problem: Callable[[str | None], None] | None = None):
        self.path = Path(path)
        self.recheck_s = recheck_s
        self.heal = heal
        self.report = report  # `kiosk status`: say what is wrong (problem) and read as empty, moving nothing
        self.on_problem = on_problem
        self.problem: str | None = None
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._ident: tuple[int, int] | None = None
        self._data_version = -1
        self._checked = 0.0
        self._groups: dict[str, Group] = {}
        self._meta: dict[str, str] = {}
        self._counts: dict[str, int] | None = None
        self._owner: tuple[str, tuple, float] | None = None  # (customer key, row, when) read with the last card
        self._card_cols = _CARD_COLS
        self._card_and_owner = _CARD_AND_OWNER

    # -- connection --------------------------------------------------------------------
    def _connect(self) -> None:
        self._owner = None
        if self._db is not None:
            self._db.close()
            self._db = None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._ident, self._groups, self._meta = None, {}, {}
            return
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            db.execute("PRAGMA query_only=1")
            # Point reads straight from the page cache through a memory map: fewer copies and syscalls, so
            # the slowest lookups (p99) stay low; the map is address space, not resident memory.
            db.execute("PRAGMA mmap_size=1073741824")
            self._db = db
            self._ident = (st.st_ino, st.st_dev)
            self._refresh()
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self._set_problem(None)

    def _failed(self, exc: sqlite3.Error) -> None:
        """A read failed: raise, or (heal) move a damaged file aside and read as empty meanwhile."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db, self._groups, self._meta, self._counts = None, {}, {}, None
        if not (self.heal or self.report):
            raise SnapshotError(f"{self.path}: cannot read the snapshot ({exc})") from exc
        if self.heal and is_corrupt(exc):
            try:
                aside = move_aside(self.path, str(exc))
                problem = (f"Member list was damaged: moved aside to {aside.name}; "
                           "waiting for a sync or `kiosk import`")
            except OSError as move_exc:
                problem = f"Member list is damaged ({exc}) and cannot be moved aside ({move_exc.strerror})"
            self._ident = None
        else:
            problem = f"Member list cannot be read ({exc})"
            # keep the file's identity: tried again when a writer replaces it, or after recheck_s
        if problem != self.problem:
            log.error("%s: %s", self.path, problem)
        self._set_problem(problem)

    def _set_problem(self, problem: str | None) -> None:
        if problem != self.problem:
            self.problem = problem
            if self.on_problem is not None:
                self.on_problem(problem)

    def _refresh(self) -> None:
        assert self._db is not None
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
        self._groups = {row[0]: group_from_row(row)
                        for row in self._db.execute("SELECT id, name, scannable FROM groups")}
        self._meta = dict(self._db.execute("SELECT key, value FROM meta"))
        self._counts = None
        self._owner = None
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(cards)")}
        self._card_cols = _CARD_COLS if "entries" in columns else _OLD_CARD_COLS
        self._card_and_owner = _card_and_owner(self._card_cols)

    def _ensure(self) -> sqlite3.Connection | None:
        now = time.monotonic()
        if self._db is None or now - self._checked >= self.recheck_s:
            self._checked = now
            try:
                st = os.stat(self.path)
                ident = (st.st_ino, st.st_dev)
            except FileNotFoundError:
                ident = None
            if self._db is None or ident != self._ident:
                self._connect()
            else:
                try:
                    if self._db.execute("PRAGMA data_version").fetchone()[0] != self._data_version:
                        self._refresh()
                except sqlite3.Error as exc:
                    self._failed(exc)
        return self._db

    def reload(self) -> None:
        """Pick up a swapped file or a delta now (a writer in this process calls this)."""
        with self._lock:
            self._checked = 0.0
            self._ensure()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "SnapshotStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------
    def customer(self, customer_id: str) -> Customer | None:
        key = customer_key(customer_id)
        with self._lock:
            db = self._ensure()  # first: a swapped file or a delta seen here drops the owner read with a card
            owner, self._owner = self._owner, None  # one use only
            if owner is not None and owner[0] == key and time.monotonic() - owner[2] < _OWNER_FRESH_S:
                row = owner[1]
            elif db is None:
                return None
            else:
                try:
                    row = db.execute(_CUSTOMER_BY_KEY, (key,)).fetchone()
                except sqlite3.Error as exc:
                    self._failed(exc)
                    return None
        return customer_from_row(row) if row else None

    def card(self, code: str) -> Card | None:
        with self._lock:
            db = self._ensure()
            if db is None:
                return None
            try:
                row = db.execute(self._card_and_owner, (card_key(code),)).fetchone()
            except sqlite3.Error as exc:
                self._failed(exc)
                return None
            owned = row is not None and row[_CARD_WIDTH] is not None
            self._owner = (row[2], row[_CARD_WIDTH:], time.monotonic()) if owned else None
        return card_from_row(row[:_CARD_WIDTH]) if row else None

    def groups(self) -> dict[str, Group]:
        with self._lock:
            self._ensure()
            return dict(self._groups)

    def meta(self) -> dict[str, str]:
        with self._lock:
            self._ensure()
            return dict(self._meta)

    @property
    def cursor(self) -> str:
        return self.meta().get("cursor", "")

    def exists(self) -> bool:
        with self._lock:
            return self._ensure() is not None

    def counts(self) -> dict[str, int]:
        """Row counts; counted once per snapshot version (a full count of a million rows is slow on a Pi)."""
        with self._lock:
            db = self._ensure()
            if db is None:
                return {"customers": 0, "groups": 0, "cards": 0}
            if self._counts is None:
                try:
                    self._counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                    for t in ("customers", "groups", "cards")}
                except sqlite3.Error as exc:
                    self._failed(exc)
                    return {"customers": 0, "groups": 0, "cards": 0}
            return dict(self._counts)

    # -- signed passes: keys and revoked serials delivered with the snapshot ----------------
    def pass_keys(self) -> dict[int, bytes]:
        with self._lock:
            db = self._ensure()
            if db is None:
                return {}
            try:
                return dict(db.execute("SELECT key_id, public_key FROM pass_keys"))
            except sqlite3.OperationalError:  # a snapshot written before passes existed
                return {}
            except sqlite3.DatabaseError as exc:  # damaged: moved aside (heal) or SnapshotError
                self._failed(exc)
                return {}

    def pass_revoked(self, customer_id: str, serial: int) -> bool:
        with self._lock:
            db = self._ensure()
            if db is None:
                return False
            try:
                return db.execute("SELECT 1 FROM pass_revocations WHERE customer_key = ? AND serial = ?",
                                  (customer_key(customer_id), serial)).fetchone() is not None
            except sqlite3.OperationalError:
                return False
            except sqlite3.DatabaseError as exc:
                self._failed(exc)
                return False

    def cards_of(self, customer_id: str) -> list[Card]:
        with self._lock:
            db = self._ensure()
            if db is None:
                return []
            try:
                rows = db.execute(f"SELECT {self._card_cols} FROM cards WHERE customer_key = ?",
                                  (customer_key(customer_id),)).fetchall()
            except sqlite3.Error as exc:
                self._failed(exc)
                return []
        return [card_from_row(r) for r in rows]

    def find(self, query: str, limit: int = 20) -> list[Customer]:
        """Search like a box office: an id, an email, a postcode, "Surname, First", "First Surname",
        a surname or organisation name (or the first three or more letters of one), a card code.

        Every query is an indexed lookup (see find_queries), so a million customers cost no more than ten."""
        queries = find_queries(query, limit)
        if not queries:
            return []
        with self._lock:
            db = self._ensure()
            if db is None:
                return []
            rows: dict[str, tuple] = {}
            try:
                for sql, params in queries:
                    for row in db.execute(sql, params):
                        rows.setdefault(row[0], row)
                    if len(rows) >= limit:
                        break
            except sqlite3.Error as exc:  # a damaged index: moved aside (heal) or SnapshotError, like every read
                self._failed(exc)
                return []
        return [customer_from_row(r) for r in list(rows.values())[:limit]]


_FIND = f"SELECT {_CUSTOMER_COLS} FROM customers WHERE "
_MAX_FIND_WORDS = 6  # "First Middle de Last" and such: more words are not tried split by split


def _prefix(text: str) -> tuple[str, str]:
    """The bounds of an index range holding every string that starts with `text`."""
    return text, text + "\U0010ffff"


def find_queries(query: str, limit: int) -> list[tuple[str, tuple]]:
    """The SQL `find` runs for `query`, in order of preference; each one reads an index (customers' key,
    email, postcode or name), never the whole table."""
    q = " ".join(query.split())
    if not q:
        return []
    folded = q.casefold()
    if "@" in q:
        # "!= ''" lets SQLite use the partial indexes on email and postcode (a bound value could be '')
        return [(_FIND + "email_fold = ? AND email_fold != '' LIMIT ?", (folded, limit))]
    by_name = _FIND + "last_fold = ? AND first_fold >= ? AND first_fold < ? ORDER BY first_fold LIMIT ?"
    if "," in q:
        last, _, first = (p.strip() for p in folded.partition(","))
        return [(by_name, (last, *_prefix(first), limit))]
    queries = [(_FIND + "key = ?", (customer_key(q),)),
               (_FIND + "postcode_norm = ? AND postcode_norm != '' ORDER BY last_fold, first_fold LIMIT ?",
                (normalise_postcode(q), limit))]
    if len(folded) >= 3:  # a surname or organisation name, or the start of one
        queries.append((_FIND + "last_fold >= ? AND last_fold < ? ORDER BY last_fold, first_fold LIMIT ?",
                        (*_prefix(folded), limit)))
    else:
        queries.append((_FIND + "last_fold = ? ORDER BY first_fold LIMIT ?", (folded, limit)))
    words = folded.split(" ")
    if 1 < len(words) <= _MAX_FIND_WORDS:  # "Jane Smith", "Pieter de Vries", and "Smith Jane"
        for cut in range(1, len(words)):
            head, tail = " ".join(words[:cut]), " ".join(words[cut:])
            queries.append((by_name, (tail, *_prefix(head), limit)))
            queries.append((by_name, (head, *_prefix(tail), limit)))
    queries.append((_FIND + "key = (SELECT customer_key FROM cards WHERE key = ?)", (card_key(q),)))
    return queries
