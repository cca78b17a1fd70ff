"""The reference upstream: a small real HTTP(S) server speaking docs/protocol.md.

It serves a snapshot of the records it holds (loaded from the CSV files `kiosk import` reads,
or a JSON / NDJSON records file), keeps a version per record so `since=<cursor>` deltas work,
stores reported scans in SQLite deduplicated by id, records heartbeats, and checks the bearer
token. Fault switches (`inject`) make it misbehave on purpose for tests and demos.

Cursors are "<epoch>.<seq>": the epoch names this server's database, so a cursor from another
upstream (or another database) gets a full snapshot rather than a wrong delta.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import socket
import sqlite3
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

from ...snapshot_file import FILE_TYPE, MANIFEST_TYPE, Manifest
from ...snapshot_file import build as build_file
from ...credential import card_key, customer_key
from ...pass_keys import PASS_RECORDS, check_pass_record
from ...pass_page import PassPages
from ...passes import PassError
from ...records import (
    RecordError,
    check_card,
    check_customer,
    check_delete,
    check_group,
)

log = logging.getLogger(__name__)

ENTITIES = {"group": 0, "customer": 1, "card": 2, "pass_key": 3, "pass_revocation": 4}  # full snapshot order
NAMES = {v: k for k, v in ENTITIES.items()}
MAX_SCANS = 500
MAX_BODY = 16 * 1024 * 1024  # bytes of one request body; 500 events take well under 1 MB
SKIP_BODY = 64 * 1024  # a refused request's body up to this size is read and dropped; a longer one is not read
FAULTS = ("500", "503", "401", "403", "400", "422", "slow", "stall", "close", "no_end", "wrong_count", "bad_json",
          "long_line", "bad_record", "lose_answer", "accept_extra", "hold_back", "corrupt")

_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    ord INTEGER NOT NULL, key TEXT NOT NULL, ident TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT,
    PRIMARY KEY (ord, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_seq ON records (seq);
CREATE TABLE IF NOT EXISTS scans (id TEXT PRIMARY KEY, device TEXT NOT NULL, received_at TEXT NOT NULL,
    passed INTEGER, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heartbeats (n INTEGER PRIMARY KEY, device TEXT NOT NULL, at TEXT NOT NULL,
    body TEXT NOT NULL);
"""


class DataError(ValueError):
    """A records file or record the server was given is wrong; the message says where."""


def _identify(rec: dict) -> tuple[int, str, str]:
    """(order, key, id) of a record, checked with the kiosk's own rules so the server never serves what the kiosk
    rejects."""
    kind = rec.get("type")
    if kind == "customer":
        check_customer(rec)
        return ENTITIES[kind], customer_key(rec["id"]), rec["id"]
    if kind == "card":
        check_card(rec)
        return ENTITIES[kind], card_key(rec["code"]), rec["code"]
    if kind == "group":
        check_group(rec)
        return ENTITIES[kind], rec["id"].strip(), rec["id"]
    if kind in PASS_RECORDS:
        # Signed passes' keys and revocations: their id is the record that retracts them in a delta.
        _, row, _ = check_pass_record(rec)
        if kind == "pass_key":
            return ENTITIES[kind], str(row[0]), json.dumps({"type": kind, "key_id": row[0], "active": False})
        return ENTITIES[kind], f"{row[0]}:{row[1]}", json.dumps(
            {"type": kind, "customer_id": row[0], "serial": row[1], "revoked": False})
    raise RecordError(f"unknown record type {kind!r}")


def _canonical(rec: dict) -> str:
    return json.dumps(rec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class RefStore:
    """The server's data: versioned records, received scans, heartbeats (one SQLite file)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._write = threading.Lock()
        with contextlib.closing(self.connect()) as db:
            db.executescript(_SCHEMA)
            if not db.execute("SELECT 1 FROM meta WHERE key = 'epoch'").fetchone():
                db.executemany("INSERT INTO meta VALUES (?, ?)", [("epoch", secrets.token_hex(4)), ("seq", "0")])

    def connect(self) -> sqlite3.Connection:
        """A new connection; each request thread uses its own and closes it."""
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _meta(self, db: sqlite3.Connection, key: str) -> str:
        return db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    def cursor(self, db: sqlite3.Connection | None = None) -> str:
        if db is None:
            with contextlib.closing(self.connect()) as db:
                return self.cursor(db)
        return f"{self._meta(db, 'epoch')}.{self._meta(db, 'seq')}"

    # -- changing the data -------------------------------------------------------------
    def put(self, records: Iterable[dict[str, Any]]) -> str:
        """Upsert and delete records as one new version; returns the new cursor."""
        return self._change(records, replace=False)

    def replace(self, records: Iterable[dict[str, Any]]) -> str:
        """Make `records` the whole data set. Only what really changed gets a new version, so deltas stay small."""
        return self._change(records, replace=True)

    def _change(self, records: Iterable[dict[str, Any]], replace: bool) -> str:
        with self._write, contextlib.closing(self.connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                seq = int(self._meta(db, "seq")) + 1
                changed = 0
                if replace:
                    db.execute("CREATE TEMP TABLE IF NOT EXISTS seen (ord INTEGER, key TEXT, PRIMARY KEY (ord, key))")
                    db.execute("DELETE FROM temp.seen")
                for n, rec in enumerate(records, 1):
                    if not isinstance(rec, dict):
                        raise DataError(f"record {n}: not a JSON object")
                    try:
                        if rec.get("type") == "delete":
                            entity, key = check_delete(rec)
                            changed += db.execute("UPDATE records SET body = NULL, seq = ? WHERE ord = ? AND key = ?"
                                                  " AND body IS NOT NULL", (seq, ENTITIES[entity], key)).rowcount
                            continue
                        order, key, ident = _identify(rec)
                    except RecordError as exc:
                        raise DataError(f"record {n}: {exc}") from None
                    changed += db.execute(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?) ON CONFLICT (ord, key) DO UPDATE SET"
                        " body = excluded.body, ident = excluded.ident, seq = excluded.seq"
                        " WHERE body IS NOT excluded.body", (order, key, ident, seq, _canonical(rec))).rowcount
                    if replace:
                        db.execute("INSERT OR IGNORE INTO temp.seen VALUES (?, ?)", (order, key))
                if replace:
                    changed += db.execute(
                        "UPDATE records SET body = NULL, seq = ? WHERE body IS NOT NULL AND NOT EXISTS"
                        " (SELECT 1 FROM temp.seen s WHERE s.ord = records.ord AND s.key = records.key)",
                        (seq,)).rowcount
                if changed:
                    db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return self.cursor(db)

    # -- reading the data ----------------------------------------------------------------
    def since_seq(self, db: sqlite3.Connection, since: str) -> int | None:
        """The version a kiosk's cursor names, or None when it is not ours (then it gets a full snapshot)."""
        epoch, _, seq = since.partition(".")
        if epoch != self._meta(db, "epoch") or not seq.isdigit() or int(seq) > int(self._meta(db, "seq")):
            return None
        return int(seq)

    def full(self, db: sqlite3.Connection) -> tuple[int, Iterator[str]]:
        count = db.execute("SELECT count(*) FROM records WHERE body IS NOT NULL").fetchone()[0]
        rows = db.execute("SELECT body FROM records WHERE body IS NOT NULL ORDER BY ord, key")
        return count, (body for (body,) in rows)

    def delta(self, db: sqlite3.Connection, since: int) -> tuple[int, Iterator[str]]:
        count = db.execute("SELECT count(*) FROM records WHERE seq > ?", (since,)).fetchone()[0]
        rows = db.execute("SELECT ord, ident, body FROM records WHERE seq > ? ORDER BY seq, ord", (since,))

        def lines() -> Iterator[str]:
            for order, ident, body in rows:
                if body is None and NAMES[order] in PASS_RECORDS:
                    yield ident
                    continue
                yield body if body is not None else json.dumps(
                    {"type": "delete", "entity": NAMES[order], "id": ident}, ensure_ascii=False)
        return count, lines()

    # -- scans and heartbeats ----------------------------------------------------------
    def store_scans(self, device: str, scans: list[dict]) -> list[str]:
        """Store each event once by id (a resent id is a no-op, except that it may bring the passage result)."""
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        rows = [(e["id"], device, now, None if e.get("passed") is None else int(e["passed"]),
                 json.dumps(e, ensure_ascii=False)) for e in scans]
        with self._write, contextlib.closing(self.connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO scans VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET passed ="
                           " excluded.passed WHERE passed IS NULL AND excluded.passed IS NOT NULL", rows)
            db.execute("COMMIT")
        return [e["id"] for e in scans]

    def scans(self) -> list[dict[str, Any]]:
        with contextlib.closing(self.connect()) as db:
            rows = db.execute("SELECT body, passed FROM scans ORDER BY received_at, id").fetchall()
        return [{**json.loads(body), "passed": None if passed is None else bool(passed)} for body, passed in rows]

    def scan_count(self) -> int:
        with contextlib.closing(self.connect()) as db:
            return db.execute("SELECT count(*) FROM scans").fetchone()[0]

    def store_heartbeat(self, device: str, body: dict) -> None:
        with self._write, contextlib.closing(self.connect()) as db:
            db.execute("INSERT INTO heartbeats (device, at, body) VALUES (?, ?, ?)",
                              (device, datetime.now(timezone.utc).isoformat(timespec="seconds"), json.dumps(body)))

    def heartbeats(self) -> list[dict[str, Any]]:
        with contextlib.closing(self.connect()) as db:
            return [json.loads(b) for (b,) in db.execute("SELECT body FROM heartbeats ORDER BY n")]


def check_event(e: Any) -> str | None:
    """What is wrong with one reported scan event, or None."""
    if not isinstance(e, dict):
        return "an event must be a JSON object"
    if not isinstance(e.get("id"), str) or not 0 < len(e["id"]) <= 100:
        return "'id' must be a string of 1 to 100 characters"
    try:
        datetime.fromisoformat(str(e.get("at")).replace("Z", "+00:00"))
    except ValueError:
        return f"event {e['id']}: 'at' must be an ISO time"
    for key in ("gate", "source", "verdict"):
        if not isinstance(e.get(key), str) or not e[key]:
            return f"event {e['id']}: {key!r} must be a non-empty string"
    if not isinstance(e.get("raw", ""), str) or len(e.get("raw", "")) > 256:
        return f"event {e['id']}: 'raw' must be a string of at most 256 characters"
    if not isinstance(e.get("groups", []), list):
        return f"event {e['id']}: 'groups' must be a list"
    if e.get("passed") not in (None, True, False):
        return f"event {e['id']}: 'passed' must be true, false or null"
    return None


# -- loading records files ---------------------------------------------------------------

def read_records(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Records from CSV files (as `kiosk import` reads them), a JSON list/{"records": [...]}, or NDJSON."""
    csvs: list[Path] = []
    for p in map(Path, paths):
        if p.suffix.lower() in (".csv", ".tsv", ".txt"):
            csvs.append(p)
        elif p.suffix.lower() == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            records = data.get("records") if isinstance(data, dict) else data
            if not isinstance(records, list):
                raise DataError(f"{p}: expected a list of records or {{\"records\": [...]}}")
            yield from records
        else:
            with open(p, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError as exc:
                        raise DataError(f"{p}:{n}: not valid JSON ({exc})") from None
                    if isinstance(rec, dict) and rec.get("type") in ("header", "end"):
                        continue
                    yield rec
    if csvs:
        from ...importer import records_from_files

        yield from records_from_files(csvs)


# -- HTTP --------------------------------------------------------------------------------

@dataclass
class Fault:
    kind: str
    endpoint: str  # "snapshot", "scans", "heartbeat" or "*"
    times: int  # how many requests it affects; -1 = until cleared


class RefUpstream:
    """The server. `start()` serves on a background thread; `serve_forever()` on this one."""

    def __init__(self, store: RefStore, token: str, host: str = "127.0.0.1", port: int = 0, *,
                 ssl_context: ssl.SSLContext | None = None, slow_s: float = 2.0, gzip_level: int = 1,
                 pass_pages: PassPages | None = None, max_body: int = MAX_BODY, demo_photos: bool = False,
                 snapshot_files: Path | None = None):
        self.store = store
        # Full snapshots as files (kiosk/snapshot_file.py), built here once per cursor; None: NDJSON only.
        self.snapshot_files = snapshot_files
        self._files: dict[str, tuple[Manifest, Path]] = {}  # cursor -> the file served for it
        self._building: str | None = None  # the cursor a background build is making a file for
        self._build_lock = threading.Lock()
        self.pass_pages = pass_pages  # members' pass pages at /pass/<token>, when it issues passes
        self.photos: dict[str, bytes] = {}  # members' photos at /photos/<name>
        self.demo_photos = demo_photos  # /photos/<id>.png not in `photos`: a generated stand-in (demo_photo)
        self.token = token
        self.max_body = max_body
        self.slow_s = slow_s
        self.gzip_level = gzip_level
        self.bad_ids: set[str] = set()  # events with these ids are rejected as bad (422)
        self.requests: dict[str, int] = {}
        self.last_headers: dict[str, dict[str, str]] = {}  # what the last request to each endpoint sent
        self.last_paths: dict[str, str] = {}
        self.lines_sent = 0  # snapshot lines written, for tests that act mid-stream
        self.unstall = threading.Event()  # set: a "stall" fault ends now rather than after slow_s
        self._faults: list[Fault] = []
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]  # typeshed allows bytes (an AF_UNIX server); this one is TCP
        return f"{self.scheme}://{host if isinstance(host, str) else host.decode()}:{self.port}/kiosk/v1"

    def start(self) -> "RefUpstream":
        # A short poll interval only makes stop() quick (tests start and stop many servers).
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="refupstream", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop listening and drop kept-alive connections too, as a server that went down would."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    # -- fault switches ----------------------------------------------------------------
    def inject(self, kind: str, endpoint: str = "*", times: int = 1) -> None:
        """Misbehave on the next `times` requests to `endpoint` (-1: until `clear_faults`)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append(Fault(kind, endpoint, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- snapshot files ------------------------------------------------------------------
    def snapshot_file(self, wait: bool = True) -> tuple[Manifest, Path] | None:
        """The file for the current cursor: built on this thread (`wait`), or started in the background and
        None meanwhile (a request then gets NDJSON: a million records take a while to build)."""
        if self.snapshot_files is None:
            return None
        cursor = self.store.cursor()
        with self._lock:
            ready = self._files.get(cursor)
            if ready is not None or (not wait and self._building == cursor):
                return ready
            if not wait:
                self._building = cursor
                threading.Thread(target=self._build_logged, name="snapshot-file", daemon=True).start()
                return None
        return self._build()

    def serve_file(self, manifest: Manifest, packed: Path) -> None:
        """Serve this (manifest, gzip'd file) for the current cursor, whatever it holds: a hostile upstream's."""
        with self._lock:
            self._files[self.store.cursor()] = (manifest, packed)

    def _build_logged(self) -> None:
        try:
            self._build()
        except Exception:  # a background thread: say why, the next request tries again
            log.exception("cannot build the snapshot file")
        finally:
            with self._lock:
                self._building = None

    def _build(self) -> tuple[Manifest, Path]:
        assert self.snapshot_files is not None
        with self._build_lock:
            with contextlib.closing(self.store.connect()) as db:
                db.execute("BEGIN")  # one read transaction: the cursor and the records agree
                cursor = self.store.cursor(db)
                with self._lock:
                    if cursor in self._files:
                        return self._files[cursor]
                started = time.monotonic()
                _count, lines = self.store.full(db)
                built = build_file((json.loads(line) for line in lines), cursor, self.snapshot_files)
            log.info("built the snapshot file for cursor %s in %.1f s: %s", cursor, time.monotonic() - started,
                     built[1].name)
            with self._lock:
                self._files[cursor] = built
                for old in list(self._files)[:-2]:  # keep the previous one for gates still downloading it
                    stale = self._files.pop(old)[1]
                    if stale not in (f for _, f in self._files.values()):
                        stale.unlink(missing_ok=True)
            return built

    def file_named(self, name: str) -> Path | None:
        with self._lock:
            return next((f for m, f in self._files.values() if m.path == f"snapshot/file/{name}"), None)

    def take_fault(self, endpoint: str, request: BaseHTTPRequestHandler | None = None) -> str | None:
        with self._lock:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            if request is not None:
                self.last_headers[endpoint] = dict(request.headers)
                self.last_paths[endpoint] = request.path
            for fault in self._faults:
                if fault.endpoint in (endpoint, "*"):
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault.kind
        return None


def _handler(server: RefUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        ref = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    ref: RefUpstream
    protocol_version = "HTTP/1.1"
    server_version = "kiosk-refupstream"

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms to each answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.ref._lock:
            self.ref._connections.add(self.connection)

    def finish(self) -> None:
        with self.ref._lock:
            self.ref._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    # -- plumbing ------------------------------------------------------------------------
    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        for prefix in ("/kiosk/v1", ""):
            if path.startswith(prefix + "/"):
                return path[len(prefix) + 1:], parse_qs(parts.query)
        return path, parse_qs(parts.query)

    def _json(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        if self._unread:
            self._skip_body()
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status not in (204, 304):
            self.wfile.write(data)

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.ref.token}".encode()):
            return True
        self._json(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
        return False

    _unread = False  # a POST whose body was not read yet

    def _skip_body(self) -> None:
        """Answering before reading the body: read a small one (the connection stays usable), else hang up after."""
        self._unread = False
        text = self.headers.get("Content-Length") or "0"
        if text.isdigit() and int(text) <= SKIP_BODY and not self.headers.get("Transfer-Encoding"):
            self.rfile.read(int(text))
        else:
            self.close_connection = True

    def _body(self) -> bytes | None:
        """The request body, read only after the token was checked; None when it was refused (answered)."""
        self._unread = False
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "send the body with a Content-Length, not chunked")
            return None
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            self._refuse(400, f"Content-Length {text[:20]!r} is not a number")
            return None
        length = int(text)
        if length > self.ref.max_body:
            self._refuse(413, f"the body is {length:,} bytes; at most {self.ref.max_body:,} are accepted")
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, error: str) -> None:
        # The body stays unread: this connection cannot carry another request.
        self.close_connection = True
        self._json(status, {"error": error})

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _common_fault(self, fault: str | None) -> bool:
        """Faults every endpoint shares; True when the request was answered (or dropped) by one."""
        if fault is None:
            return False
        if fault.isdigit():
            extra = {"Retry-After": "1"} if fault == "503" else None
            self._json(int(fault), {"error": f"injected fault {fault}"}, extra)
            return True
        if fault == "slow" and self.command == "GET":
            time.sleep(self.ref.slow_s)
        return False

    def _let_through(self, resource: str) -> tuple[bool, str | None]:
        """Injected faults and the bearer token, before any resource: (go on?, the fault taken)."""
        fault = self.ref.take_fault(resource, self)
        if fault == "401":
            self._json(401, {"error": "token expired"}, {"WWW-Authenticate": "Bearer"})
            return False, fault
        if not self._authorised() or self._common_fault(fault):
            return False, fault
        return True, fault

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            path, query = self._route()
            if path.startswith("pass/"):
                self._pass_page(path[5:])
                return
            if path.startswith("photos/"):
                self._photo(path[7:])
                return
            if path.startswith("snapshot/file/"):
                go_on, fault = self._let_through("snapshot_file")
                if go_on:
                    self._file(path[len("snapshot/file/"):], fault)
                return
            if path != "snapshot":
                self._json(404, {"error": f"no such resource {path!r}"})
                return
            go_on, fault = self._let_through("snapshot")
            if not go_on:
                return
            self._snapshot(query.get("since", [""])[0], fault)

    def do_POST(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            path, query = self._route()
            # The token first: an unauthenticated client must not make the server read (or hold) a body.
            self._unread = True
            if path.startswith("admin/"):
                if self._authorised() and (body := self._body()) is not None:
                    self._admin(path[6:], query, body)
                return
            if path not in ("scans", "heartbeat"):
                self._json(404, {"error": f"no such resource {path!r}"})
                return
            go_on, fault = self._let_through(path)
            if not go_on or (body := self._body()) is None:
                return
            try:
                data = json.loads(body)
            except ValueError:
                self._json(400, {"error": "the body is not JSON"})
                return
            if not isinstance(data, dict):
                self._json(400, {"error": "the body must be a JSON object"})
                return
            if path == "heartbeat":
                self.ref.store.store_heartbeat(str(data.get("device", "")), data)
                self._json(204)
            else:
                self._scans(data, fault)

    # -- endpoints -----------------------------------------------------------------------
    def _snapshot(self, since: str, fault: str | None) -> None:
        store = self.ref.store
        with contextlib.closing(store.connect()) as db:
            db.execute("BEGIN")  # one read transaction: the cursor and the lines agree
            cursor = store.cursor(db)
            etag = f'"{cursor}"'
            if self.headers.get("If-None-Match") == etag:
                self._json(304, headers={"ETag": etag})
                return
            base = store.since_seq(db, since) if since else None
            if base is None and MANIFEST_TYPE in self.headers.get("Accept", ""):
                ready = self.ref.snapshot_file(wait=False)
                if ready is not None and ready[0].cursor == cursor:
                    self._manifest(ready[0], etag)
                    return
            count, lines = store.full(db) if base is None else store.delta(db, base)
            header = {"type": "header", "version": 1, "cursor": cursor, "full": base is None, "records": count}
            self._stream(header, count, lines, etag, fault)

    def _manifest(self, manifest: Manifest, etag: str) -> None:
        data = json.dumps(manifest.as_json()).encode()
        self.send_response(200)
        self.send_header("Content-Type", MANIFEST_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(data)

    def _file(self, name: str, fault: str | None) -> None:
        """A snapshot file, gzip'd as built (Content-Encoding: gzip). Faults: corrupt (one byte flipped), close."""
        packed = self.ref.file_named(name)
        if packed is None:
            self._json(404, {"error": "no such snapshot file (a newer one replaced it): ask /snapshot again"})
            return
        size = packed.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", FILE_TYPE)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        with open(packed, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if fault in ("corrupt", "close") and sent <= size // 2 < sent + len(chunk):
                    if fault == "close":
                        self.wfile.write(chunk[: size // 2 - sent])
                        self._hang_up()
                        return
                    at = size // 2 - sent
                    chunk = chunk[:at] + bytes([chunk[at] ^ 0x01]) + chunk[at + 1:]
                self.wfile.write(chunk)
                sent += len(chunk)

    def _stream(self, header: dict, count: int, lines: Iterator[str], etag: str, fault: str | None) -> None:
        gzip = self.ref.gzip_level > 0 and "gzip" in self.headers.get("Accept-Encoding", "")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("ETag", etag)
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        packer = zlib.compressobj(self.ref.gzip_level, zlib.DEFLATED, 31) if gzip else None

        def send(data: bytes, final: bool = False) -> None:
            if packer is not None:
                data = packer.compress(data) + (packer.flush() if final else packer.flush(zlib.Z_SYNC_FLUSH))
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def hang_up() -> None:
            send(b"")
            self._hang_up()

        middle = count // 2
        out: list[str] = [json.dumps(header)]
        sent = 0
        for n, line in enumerate(lines):
            if n == middle and fault in ("bad_json", "long_line", "bad_record", "close", "stall"):
                if fault == "bad_json":
                    line = line[: len(line) // 2]
                elif fault == "long_line":
                    line = json.dumps({"type": "customer", "id": "I-LONG", "name": "x" * (70 * 1024)})
                elif fault == "bad_record":
                    line = json.dumps({"type": "customer", "name": "no id"})
                else:
                    send(("\n".join(out) + "\n").encode())
                    self.ref.lines_sent += len(out)
                    out = []
                    if fault == "stall":
                        self.ref.unstall.wait(self.ref.slow_s)
                    else:
                        hang_up()
                        return
            out.append(line)
            sent += 1
            if len(out) >= 1000:
                send(("\n".join(out) + "\n").encode())
                self.ref.lines_sent += len(out)
                out = []
        if fault in ("close", "stall") and count == 0:
            hang_up()
            return
        if fault != "no_end":
            out.append(json.dumps({"type": "end", "records": sent + (1 if fault == "wrong_count" else 0)}))
        send(("\n".join(out) + "\n").encode() if out else b"", final=True)
        self.ref.lines_sent += len(out)
        self.wfile.write(b"0\r\n\r\n")

    def _pass_page(self, token: str) -> None:
        """A member's pass page: no bearer token, the page token is the secret."""
        page = self.ref.pass_pages.page(token, datetime.now(timezone.utc)) if self.ref.pass_pages else None
        if page is None:
            self._json(404, {"error": "no such pass"})
            return
        data = page.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _photo(self, name: str) -> None:
        """A member's photo: behind the bearer token, like the snapshot that names it."""
        go_on, _ = self._let_through("photos")
        if not go_on:
            return
        data = self.ref.photos.get(name)
        if data is None and self.ref.demo_photos and name.endswith(".png"):
            from ...photos import demo_photo

            data = demo_photo(name[:-4])
        if data is None:
            self._json(404, {"error": "no such photo"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png" if data.startswith(b"\x89PNG") else "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _scans(self, data: dict, fault: str | None) -> None:
        scans = data.get("scans")
        if not isinstance(data.get("device"), str) or not isinstance(scans, list) or len(scans) > MAX_SCANS:
            self._json(400, {"error": f"expected {{\"device\": ..., \"scans\": [at most {MAX_SCANS} events]}}"})
            return
        problems = [p for p in map(check_event, scans) if p]
        bad = [e["id"] for e in scans if isinstance(e, dict) and e.get("id") in self.ref.bad_ids]
        if problems or bad:
            self._json(422, {"error": problems[0] if problems else f"event {bad[0]} refused", "ids": bad})
            return
        accepted = self.ref.store.store_scans(data["device"], scans)
        if fault == "slow":  # stored, but the answer is late: the kiosk times out and must resend
            time.sleep(self.ref.slow_s)
        if fault == "lose_answer":
            self._hang_up()
            return
        if fault == "accept_extra":
            accepted = accepted + accepted[:2] + ["not-" + secrets.token_hex(8)]
        elif fault == "hold_back":
            accepted = accepted[: len(accepted) // 2]
        self._json(200, {"accepted": accepted})

    def _admin(self, what: str, query: dict[str, list[str]], body: bytes) -> None:
        if what == "records":
            try:
                records = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                replace = query.get("replace", ["0"])[0] in ("1", "true")
                cursor = self.ref.store.replace(records) if replace else self.ref.store.put(records)
            except (ValueError, DataError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"cursor": cursor})
        elif what == "fault":
            try:
                spec = json.loads(body)
                self.ref.inject(spec["kind"], spec.get("endpoint", "*"), int(spec.get("times", 1)))
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(204)
        elif what == "pass" and self.ref.pass_pages is not None:
            try:
                spec = json.loads(body)
                token, text = self.ref.pass_pages.issue(spec["customer_id"], list(spec.get("groups", [])),
                                                        int(spec.get("days", 30)), bool(spec.get("rotating")),
                                                        datetime.now(timezone.utc).date())
            except (ValueError, KeyError, TypeError, PassError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"token": token, "path": f"/pass/{token}", "text": text})
        elif what == "clear":
            self.ref.clear_faults()
            self._json(204)
        else:
            self._json(404, {"error": f"no such admin resource {what!r}"})
