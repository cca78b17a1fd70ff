"""A full snapshot as one SQLite file: built once by the upstream, downloaded by every gate, checked on arrival.

The NDJSON sync parses, checks and inserts every record in Python on every gate (~20 µs a record). Here the
upstream builds the snapshot file once (the same SnapshotBuilder, record checks and indexes) and serves it
gzip'd beside a small manifest (docs/protocol.md, "Snapshot file"). A gate trusts nothing of it until it has
checked, in this order:

1. integrity: the sha256 and size the manifest names, then `PRAGMA quick_check` (every page, b-tree and
   index structure, NOT NULL);
2. schema: exactly the tables, columns and indexes of kiosk.snapshot's schema (sqlite_master compared with
   a fresh one: nothing else, no view or trigger), and the schema version and cursor in its meta;
3. records, in bulk: SQL over whole tables finds any value that kiosk.records' checks would refuse or
   store differently (types, caps, ids, kinds, flags, dates, the key and search columns derived from
   them), Python reads every row's texts (strict UTF-8) and finds control and bidi characters and untrimmed
   text; every row found, each distinct group and tag list and the small tables are put through the records
   module's own check_* functions and must come out unchanged. The first fault refuses the whole file,
   naming the record.

Only then does the gate write its own meta; the caller swaps the file in.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .credential import card_key
from .pass_keys import check_pass_record
from .credential import MAX_LEN as MAX_CODE
from .records import (MAX_BATCH, MAX_EMAIL, MAX_ID, MAX_NAME, MAX_PHOTO, MAX_POSTCODE, RecordError,
                      check_card, check_customer, check_group)
from .snapshot import _INDEXES, _SCHEMA, SCHEMA_VERSION, SnapshotBuilder
from .text import has_unsafe, safe_text

MANIFEST_TYPE = "application/vnd.kiosk.snapshot-manifest+json"
FILE_TYPE = "application/vnd.sqlite3"
FORMAT = 1  # the manifest's own version
MAX_MANIFEST = 64 * 1024
_FILE_PATH = re.compile(r"snapshot/file/[A-Za-z0-9_-]{1,100}\.sqlite\.gz")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEADER = b"SQLite format 3\x00"


class FileRejected(ValueError):
    """The snapshot file (or its manifest) fails a check; the message says which and where."""


@dataclass(frozen=True)
class Manifest:
    cursor: str
    sha256: str  # of the SQLite file itself, after gunzip
    size: int  # bytes of the SQLite file
    path: str  # relative to the upstream's base URL
    records: int = 0  # rows it holds, for the progress bar only (the file itself is counted on arrival)

    def as_json(self) -> dict[str, Any]:
        return {"type": "snapshot-file", "format": FORMAT, "schema": SCHEMA_VERSION, "cursor": self.cursor,
                "sha256": self.sha256, "size": self.size, "path": self.path, "records": self.records}


def parse_manifest(body: bytes, max_bytes: int) -> Manifest:
    """The manifest an upstream answered /snapshot with. Raises FileRejected."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileRejected(f"the snapshot file's manifest is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") != "snapshot-file":
        raise FileRejected("the snapshot file's manifest is not a JSON object of type snapshot-file")
    if doc.get("format") != FORMAT:
        raise FileRejected(f"the snapshot file's manifest has format {safe_text(repr(doc.get('format')), 40)}; "
                           f"this kiosk reads {FORMAT}")
    if doc.get("schema") != SCHEMA_VERSION:
        raise FileRejected(f"the snapshot file has schema version {safe_text(repr(doc.get('schema')), 40)}; this "
                           f"kiosk reads {SCHEMA_VERSION}")
    cursor, sha, size, path = doc.get("cursor"), doc.get("sha256"), doc.get("size"), doc.get("path")
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_ID or has_unsafe(cursor):
        raise FileRejected("the snapshot file's manifest has no usable cursor (text of 1-128 printable characters)")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise FileRejected("the snapshot file's manifest has no sha256 (64 lower-case hex digits)")
    if not isinstance(size, int) or isinstance(size, bool) or size < len(_HEADER):
        raise FileRejected("the snapshot file's manifest has no size in bytes")
    if size > max_bytes:
        raise FileRejected(f"the snapshot file is too large: {size:,} bytes, over upstream.max_snapshot_mb")
    if not isinstance(path, str) or not _FILE_PATH.fullmatch(path):
        # never a URL of its own: the bearer token goes only to the configured upstream
        raise FileRejected("the snapshot file's manifest path must be snapshot/file/<name>.sqlite.gz")
    records = doc.get("records", 0)
    if not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise FileRejected("the snapshot file's manifest 'records' must be a whole number")
    return Manifest(cursor, sha, size, path, records)


# -- the upstream's side ------------------------------------------------------------------------

def build(records: Iterable[dict[str, Any]], cursor: str, directory: Path) -> tuple[Manifest, Path]:
    """The snapshot file for `records` (checked as a sync checks them), gzip'd in `directory`; its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        plain = Path(tmp) / "snapshot.sqlite"
        with SnapshotBuilder(plain, "full") as builder:
            for record in records:
                builder.apply(record)
            loaded = builder.commit({"cursor": cursor})
        digest = hashlib.sha256()
        with open(plain, "rb") as src, tempfile.NamedTemporaryFile(dir=directory, delete=False) as out:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    gz.write(chunk)
        size = plain.stat().st_size
    sha = digest.hexdigest()
    final = directory / f"{sha}.sqlite.gz"
    os.replace(out.name, final)
    return Manifest(cursor, sha, size, f"snapshot/file/{sha}.sqlite.gz", loaded.records), final


# -- the gate's side ----------------------------------------------------------------------------

def receive(chunks: Iterable[bytes], target: Path, manifest: Manifest) -> None:
    """Write the (gunzip'd) file to `target`, checking its size and sha256 against the manifest."""
    digest = hashlib.sha256()
    size = 0
    with open(target, "wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > manifest.size:
                raise FileRejected(f"the snapshot file is longer than the {manifest.size:,} bytes its manifest names")
            digest.update(chunk)
            out.write(chunk)
        out.flush()
    if size != manifest.size:
        raise FileRejected(f"the snapshot file has {size:,} bytes; its manifest names {manifest.size:,}")
    if digest.hexdigest() != manifest.sha256:
        raise FileRejected(f"the snapshot file's sha256 {digest.hexdigest()} is not the manifest's {manifest.sha256}: "
                           "damaged or altered on the way")


def check_and_finish(target: Path, manifest: Manifest, meta: dict[str, str], max_records: int) -> dict[str, int]:
    """Check the received file (integrity, schema, records), then write the gate's meta. Returns the row counts.
    Raises FileRejected; the caller removes the file."""
    with open(target, "rb") as fh:
        if fh.read(len(_HEADER)) != _HEADER:
            raise FileRejected("the snapshot file is not an SQLite database")
    db = _connect(target)
    try:
        try:
            _check_integrity(db)
            _check_schema(db)
            counts = _check_meta_and_size(db, manifest, max_records)
            db.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.DatabaseError as exc:
            raise FileRejected(f"the snapshot file cannot be read ({safe_text(str(exc), 300)})") from None
        _check_records(target)
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM meta")
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [(k, str(v)) for k, v in {**meta, "schema": SCHEMA_VERSION}.items()])
        db.execute("COMMIT")
    finally:
        db.close()
    return counts


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Nothing in the file may run code of its own (views, triggers: refused by the schema check anyway).
    db.execute("PRAGMA trusted_schema=OFF")
    db.execute("PRAGMA cell_size_check=ON")
    db.execute("PRAGMA cache_size=-2000")  # 2 MB: every check reads each page once, in order; three connections
    if read_only:
        db.execute("PRAGMA query_only=1")
    return db


class _Worker(threading.Thread):
    """fn(*args) on its own thread; result() re-raises what it raised."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        super().__init__(daemon=True)
        self._call = (fn, args)
        self._error: BaseException | None = None
        self._value: Any = None
        self.start()

    def run(self) -> None:
        fn, args = self._call
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to the thread that joins
            self._error = exc

    def result(self) -> Any:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


def _check_integrity(db: sqlite3.Connection) -> None:
    problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise FileRejected("the snapshot file is damaged (PRAGMA quick_check: "
                           f"{safe_text('; '.join(str(p) for p in problems), 300)})")


def _schema_of(db: sqlite3.Connection) -> set[tuple]:
    return set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


_EXPECTED: set[tuple] | None = None


def _check_schema(db: sqlite3.Connection) -> None:
    global _EXPECTED
    if _EXPECTED is None:
        with contextlib.closing(sqlite3.connect(":memory:")) as ref:
            ref.executescript(_SCHEMA + _INDEXES)
            _EXPECTED = _schema_of(ref)
    found = _schema_of(db)
    if found != _EXPECTED:
        extra = sorted(f"{t} {n}" for t, n, _, _ in found - _EXPECTED)
        missing = sorted(f"{t} {n}" for t, n, _, _ in _EXPECTED - found)
        differences = f"unexpected or changed: {', '.join(extra) or 'none'}; missing or changed: " \
                      f"{', '.join(missing) or 'none'}"
        raise FileRejected(f"the snapshot file's schema is not the kiosk's (schema version {SCHEMA_VERSION}): "
                           + safe_text(differences, 300))


def _check_meta_and_size(db: sqlite3.Connection, manifest: Manifest, max_records: int) -> dict[str, int]:
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('schema', 'cursor')"))
    if meta.get("schema") != str(SCHEMA_VERSION):
        raise FileRejected(f"the snapshot file's meta names schema {safe_text(repr(meta.get('schema')), 40)}; this "
                           f"kiosk reads {SCHEMA_VERSION}")
    if meta.get("cursor") != manifest.cursor:
        raise FileRejected("the snapshot file's cursor is not its manifest's")
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("customers", "groups", "cards", "pass_keys", "pass_revocations")}
    if sum(counts.values()) > max_records:
        raise FileRejected(f"the snapshot file is too large: over {max_records:,} records (upstream.max_records)")
    return counts


# -- the record checks, in bulk ------------------------------------------------------------------
#
# Two passes per table find the rows to look at; every row they find is put through the records module's own
# check (check_customer, check_card) and must come out exactly as stored, else the file is refused naming it.
# 1. SQL, in C, over the whole table: types, caps, kinds, flags, dates, and the key and search columns against
#    SQL's upper()/lower() (exact for ASCII; a row where they differ from Python's is only a candidate, and
#    Python decides).
# 2. Python over the joined texts of each row, 10,000 rows at a time: decoding them is a strict UTF-8 check,
#    `isascii()` of the batch is O(1), one regex search finds control and bidi characters and two substring
#    searches a space before or after a text; only a batch holding any of these is looked at row by row.
# The two passes run at once (pass 1 on a thread of its own; SQLite releases the GIL while it steps).


def _bad_text(col: str, cap: int, *, nullable: bool = False, empty: bool = True) -> str:
    """SQL true when `col` is not a text within its cap (its characters and spaces around it: pass 2)."""
    bad = f"typeof({col}) != 'text' OR length({col}) > {cap}"
    if not empty:
        bad += f" OR {col} = ''"
    return f"({col} IS NOT NULL AND ({bad}))" if nullable else f"({bad})"


def _bad_date(col: str) -> str:
    """SQL true when `col` is not an ISO date Python reads: '+0 days' makes SQLite roll 02-30 over to March."""
    return f"(typeof({col}) != 'text' OR date({col}, '+0 days') IS NOT {col} OR {col} < '0001-01-01')"


_CUSTOMER_TEXT = " || '`' || ".join(("id", "kind", "first_name", "last_name", "name", "email", "postcode", "photo"))
_CUSTOMER_SUSPECT = f"""
SELECT key FROM customers WHERE
  {_bad_text("id", MAX_ID, empty=False)} OR substr(id, 1, 1) NOT IN ('I', 'i', 'O', 'o')
  OR kind NOT IN ('individual', 'organisation')
  OR {_bad_text("first_name", MAX_NAME)} OR {_bad_text("last_name", MAX_NAME)} OR {_bad_text("name", MAX_NAME)}
  OR {_bad_text("email", MAX_EMAIL)} OR {_bad_text("postcode", MAX_POSTCODE)} OR {_bad_text("photo", MAX_PHOTO)}
  OR typeof(active) != 'integer' OR active NOT IN (0, 1)
  OR (valid_from IS NOT NULL AND {_bad_date("valid_from")}) OR (valid_until IS NOT NULL AND {_bad_date("valid_until")})
  OR valid_from > valid_until
  OR typeof(groups) != 'text' OR typeof(tags) != 'text'
  OR typeof(key) != 'text' OR key != upper(id)
  OR typeof(last_fold) != 'text' OR last_fold != lower(CASE WHEN last_name != '' THEN last_name ELSE name END)
  OR typeof(first_fold) != 'text' OR first_fold != lower(first_name)
  OR typeof(email_fold) != 'text' OR email_fold != lower(email)
  OR typeof(postcode_norm) != 'text' OR postcode_norm != upper(replace(postcode, ' ', ''))
"""

_CARD_TEXT = "code || '`' || batch || '`' || coalesce(customer_key, '')"
_CARD_SUSPECT = f"""
SELECT key FROM cards WHERE
  {_bad_text("code", MAX_CODE, empty=False)} OR typeof(key) != 'text' OR key IS NOT kiosk_card_key(code)
  OR {_bad_text("customer_key", MAX_ID, nullable=True, empty=False)} OR customer_key != upper(customer_key)
  OR card_type NOT IN ('ID', 'VIP', 'GIFT', 'PUNCH') OR typeof(revoked) != 'integer' OR revoked NOT IN (0, 1)
  OR {_bad_text("batch", MAX_BATCH)}
  OR (entries IS NOT NULL AND (typeof(entries) != 'integer' OR entries < 0 OR entries > 1000000))
  OR entries_at IS NOT NULL
"""
_BATCH = 10_000


def _check_records(target: Path) -> None:
    """Pass 1 (SQL) on a thread of its own while this one runs pass 2 (Python), then the rechecks."""
    sql, text = _connect(target, read_only=True), _connect(target, read_only=True)
    try:
        try:
            sql.create_function("kiosk_card_key", 1, _card_key_or_none, deterministic=True)
            suspects = _Worker(lambda: [{key for (key,) in sql.execute(query)}
                                        for query in (_CUSTOMER_SUSPECT, _CARD_SUSPECT)])
            try:
                unusual = [_unusual_text(text, "customers", _CUSTOMER_TEXT), _unusual_text(text, "cards", _CARD_TEXT)]
                for column in ("groups", "tags"):  # lists repeat: each distinct one checked once, by the records' check
                    for (value,) in text.execute(f"SELECT DISTINCT {column} FROM customers"):
                        _check_list(column, value)
                for row in text.execute("SELECT * FROM groups"):
                    _same(_recheck_group(row), row, "group", row[0])
                for table in ("pass_keys", "pass_revocations"):
                    for row in text.execute(f"SELECT * FROM {table}"):
                        _check_pass_row(table, row)
            except BaseException:
                sql.interrupt()
                raise
            finally:
                suspects.join()
            found = suspects.result()
            _check_punch_index(text)
            tables = (("customers", _recheck_customer, "customer"), ("cards", _recheck_card, "card"))
            for (table, recheck, name), keys in zip(tables, (found[0] | unusual[0], found[1] | unusual[1]),
                                                    strict=True):
                for key in sorted(keys, key=str):
                    row = text.execute(f"SELECT * FROM {table} WHERE key IS ?", (key,)).fetchone()
                    _same(recheck(row), row, name, row[1])
        except sqlite3.DatabaseError as exc:
            raise FileRejected(f"the snapshot file cannot be read ({safe_text(str(exc), 300)})") from None
    finally:
        sql.close()
        text.close()


def _check_punch_index(db: sqlite3.Connection) -> None:
    """The one index a decision depends on (`kiosk run` finds the PUNCH cards whose uses it counts through it)
    must list exactly the PUNCH cards: quick_check sees its structure, not its entries. The other indexes serve
    staff searches only."""
    listed = {key for (key,) in db.execute("SELECT key FROM cards INDEXED BY punch_cards WHERE card_type = 'PUNCH'")}
    # `+card_type`: no index can answer it (NOT INDEXED still lets SQLite read a WITHOUT ROWID table's partial index)
    held = {key for (key,) in db.execute("SELECT key FROM cards WHERE +card_type = 'PUNCH'")}
    if listed != held:
        raise FileRejected(f"the snapshot file's index punch_cards does not list its PUNCH cards (card "
                           f"{_shown(sorted(listed ^ held, key=str)[0])})")


def _unusual_text(db: sqlite3.Connection, table: str, text: str) -> set:
    """Keys of the rows whose texts hold anything but ASCII, a character has_unsafe finds, or a leading or
    trailing space (each text is joined with "`" on both sides: "` " or " `" finds one; a "` " inside a value
    only costs that row a recheck)."""
    found: set[str] = set()
    cursor = db.execute(f"SELECT key, {text} FROM {table}")
    while batch := cursor.fetchmany(_BATCH):
        joined = "`" + "``".join([row[1] or "" for row in batch]) + "`"
        if joined.isascii() and not has_unsafe(joined) and " `" not in joined and "` " not in joined:
            continue
        found.update(key for key, value in batch
                     if value and (not value.isascii() or has_unsafe(value) or " `" in f"`{value}`"
                                   or "` " in f"`{value}`"))
    return found


def _card_key_or_none(code: object) -> str | None:
    return card_key(code) if isinstance(code, str) else None


def _shown(value: object) -> str:
    return safe_text(repr(value), 80)


def _same(checked: tuple, row: tuple, name: str, ident: object) -> None:
    if tuple(checked) != tuple(row):
        columns = [i for i, (a, b) in enumerate(zip(checked, row, strict=False)) if a != b]
        raise FileRejected(f"the snapshot file holds a {name} whose stored fields (columns {columns}) are not what "
                           f"the record checks make of it ({name} {_shown(ident)})")


def _list(value: object) -> object:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _flag(value: object) -> object:
    """A stored 0/1 as the record's true/false; anything else as it is, for the check to refuse."""
    return value == 1 if type(value) is int and value in (0, 1) else value


def _recheck_customer(row: tuple) -> tuple:
    (_key, cid, kind, first, last, name, active, groups, vf, vu, email, postcode, photo, tags) = row[:14]
    rec = {"id": cid, "kind": kind, "first_name": first, "last_name": last, "name": name,
           "active": _flag(active),
           "groups": _list(groups), "valid_from": vf, "valid_until": vu, "email": email, "postcode": postcode,
           "photo": photo, "tags": _list(tags)}
    try:
        return check_customer(rec)
    except RecordError as exc:
        raise FileRejected(f"the snapshot file holds a customer the record checks refuse (customer {_shown(cid)}): "
                           f"{exc}") from None


def _recheck_card(row: tuple) -> tuple:
    _key, code, owner, card_type, revoked, batch, entries, entries_at = row
    rec = {"code": code, "customer_id": owner, "card_type": card_type, "batch": batch, "entries": entries,
           "entries_at": entries_at, "revoked": _flag(revoked)}
    try:
        return check_card(rec)
    except RecordError as exc:
        raise FileRejected(f"the snapshot file holds a card the record checks refuse (card {_shown(code)}): "
                           f"{exc}") from None


def _recheck_group(row: tuple) -> tuple:
    gid, name, scannable = row
    rec = {"id": gid, "name": name, "scannable": _flag(scannable)}
    try:
        return check_group(rec)
    except RecordError as exc:
        raise FileRejected(f"the snapshot file holds a group the record checks refuse (group {_shown(gid)}): "
                           f"{exc}") from None


def _check_list(column: str, value: object) -> None:
    """A distinct group or tag list must be what check_customer stores for it (the JSON it writes)."""
    try:
        row = check_customer({"id": "I-check", column: _list(value)})
    except RecordError as exc:
        raise FileRejected(f"the snapshot file holds customers with {column} {_shown(value)} that the record "
                           f"checks refuse: {exc}") from None
    if row[7 if column == "groups" else 13] != value:
        raise FileRejected(f"the snapshot file holds customers with {column} {_shown(value)}, not stored as the "
                           "record checks store it (a JSON list of trimmed strings)")


def _check_pass_row(table: str, row: tuple) -> None:
    if table == "pass_keys":
        key_id, public = row
        rec: dict[str, Any] = {"type": "pass_key", "key_id": key_id}
        if isinstance(public, bytes):
            rec["public_key"] = base64.b64encode(public).decode()
        expected: tuple = (key_id, public)
    else:
        owner, serial = row
        rec = {"type": "pass_revocation", "customer_id": owner, "serial": serial}
        expected = (owner, serial)
    try:
        _table, stored, _present = check_pass_record(rec)
    except RecordError as exc:
        raise FileRejected(f"the snapshot file holds a {rec['type']} the record checks refuse ({_shown(row[0])}): "
                           f"{exc}") from None
    if stored != expected:
        raise FileRejected(f"the snapshot file holds a {rec['type']} not stored as the record checks store it "
                           f"({_shown(row[0])})")

