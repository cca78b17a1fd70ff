"""Snapshot sync: stream the upstream's NDJSON answer line by line into a SnapshotBuilder.

A full answer builds a new file that is swapped in on commit; a delta is one transaction on
the live file. Anything wrong with the answer (no end marker, a wrong count, a line that is
not JSON, over 64 KiB or of the wrong shape, a dropped connection, a limit passed: see
limits.py) aborts the builder, so the snapshot the kiosk held stays exactly as it was. Memory is
bounded by one line plus the builder's batch, whatever the size of the answer.

A full answer is built as `snapshot.pending.sqlite` and swapped in only if it keeps enough of
the customers held (upstream.max_shrink); otherwise it stays there, held back, until
`kiosk sync --accept-shrink` applies it or a later sync makes it moot.

The kiosk also offers to take a full snapshot as a file (docs/protocol.md, "Snapshot file"): an upstream
that can answers /snapshot with a manifest, the file is downloaded and checked whole (kiosk/snapshot_file.py)
and then takes the same pending/shrink path. An upstream that cannot ignores the offer and answers NDJSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..config import redact_url
from ..errors import SnapshotError, SyncError
from .. import snapshot_file
from ..records import RecordError
from ..snapshot import LoadResult, SnapshotBuilder, _fsync, _fsync_dir, writer_lock
from ..sqlfiles import readable_by_service
from .client import UpstreamClient
from .limits import Deadline, SyncLimits, SyncTooLarge, decoded

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
PROTOCOL_VERSION = 1
# What /snapshot may answer: a snapshot file's manifest (preferred, full snapshots only) or NDJSON.
ACCEPT = f"{snapshot_file.MANIFEST_TYPE}, application/x-ndjson;q=0.9"

# progress(records_so_far, records_expected_or_None); returning True asks the sync to stop.
Progress = Callable[[int, "int | None"], "bool | None"]


class SnapshotRejected(SyncError):
    """The upstream's answer was wrong; nothing of it was applied."""


class SyncStopped(SyncError):
    """The kiosk is shutting down; the sync was abandoned and nothing of it applied."""


class SnapshotHeldBack(SyncError):
    """The answer would drop too many customers: not applied (a full one is kept as pending)."""


def pending_path(path: Path) -> Path:
    """Where a held-back full snapshot waits for `kiosk sync --accept-shrink`."""
    return path.with_name(f"{path.stem}.pending{path.suffix}")


def accept_pending(path: Path) -> bool:
    """Make a held-back full snapshot live; False when there is none."""
    with writer_lock(path):
        pending = pending_path(path)
        if not pending.exists():
            return False
        os.replace(pending, path)
        _fsync_dir(path.parent)
    log.info("applied the held-back snapshot %s", pending)
    return True


def discard_pending(path: Path) -> None:
    """A sync succeeded without it: a held-back snapshot is moot."""
    if not pending_path(path).exists():
        return  # the usual case: no need to wait for the writer lock (an import may hold it for a while)
    with writer_lock(path):
        with contextlib.suppress(FileNotFoundError):
            pending_path(path).unlink()
            log.info("discarded the held-back snapshot %s: a later sync succeeded", pending_path(path))


@dataclass
class SyncResult:
    kind: str  # "full", "delta" or "unchanged" (304)
    cursor: str
    loaded: LoadResult = field(default_factory=LoadResult)
    bytes: int = 0
    seconds: float = 0.0

    def changed(self) -> dict[str, int]:
        r = self.loaded
        return {"groups": r.groups, "customers": r.customers, "cards": r.cards, "deleted": r.deleted,
                "skipped": r.skipped}

    def summary(self) -> str:
        if self.kind == "unchanged":
            return f"snapshot unchanged (cursor {self.cursor})"
        c = self.changed()
        parts = [f"{c['customers']} customers", f"{c['groups']} groups", f"{c['cards']} cards"]
        if c["deleted"]:
            parts.append(f"{c['deleted']} deleted")
        if c["skipped"]:
            parts.append(f"{c['skipped']} unknown records skipped")
        what = "full snapshot" if self.kind == "full" else "delta"
        return f"{what} to cursor {self.cursor}: " + ", ".join(parts) + f" in {self.seconds:.1f} s"


def iter_lines(chunks: Iterable[bytes], limit: int = MAX_LINE) -> Iterator[bytes]:
    """Split a byte stream into lines, refusing any line over `limit` bytes before buffering more of it."""
    rest = b""
    for chunk in chunks:
        if rest:
            chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if len(line) > limit:
                raise _LineTooLong()
            yield line
        if len(rest) > limit:
            raise _LineTooLong()
    if rest:
        yield rest


class _LineTooLong(Exception):
    pass


def held_basis(meta: dict[str, str], url: str) -> tuple[str, str]:
    """(cursor, etag) to send: only for a snapshot that came from this upstream, else ask for a full one."""
    if meta.get("source") == "upstream" and meta.get("upstream") == redact_url(url):
        return meta.get("cursor", ""), meta.get("etag", "")
    return "", ""


def sync_snapshot(client: UpstreamClient, path: Path, held_meta: dict[str, str], now: datetime,
                  progress: Progress | None = None, *, limits: SyncLimits, accept_shrink: bool = False) -> SyncResult:
    """One snapshot sync. Returns what changed; raises SyncError (the held snapshot untouched) otherwise."""
    started = time.monotonic()
    url = client.settings.url
    since, etag = held_basis(held_meta, url)
    if since and not path.exists():
        since, etag = "", ""
    deadline = Deadline(limits.deadline_s)
    with client.snapshot(since, etag, deadline, accept=ACCEPT) as response:
        if response.status_code == 304:
            if not since:
                raise SnapshotRejected("the upstream answered 304 Not Modified to a request for a full snapshot")
            _touch(path, now)
            return SyncResult("unchanged", since, seconds=time.monotonic() - started)
        ctype = response.headers.get("content-type", "")
        encoding = response.headers.get("content-encoding", "")
        if ctype.split(";")[0].strip().lower() == snapshot_file.MANIFEST_TYPE:
            try:
                manifest = b"".join(decoded(response.iter_raw(), encoding, snapshot_file.MAX_MANIFEST))
            except SyncTooLarge:
                raise SnapshotRejected("the upstream's snapshot file manifest is over 64 KiB") from None
            manifest_etag = response.headers.get("etag", "")
        else:
            if ctype and "ndjson" not in ctype:
                raise SnapshotRejected(f"the upstream's snapshot is {ctype.split(';')[0]}, not application/x-ndjson")
            body = decoded(response.iter_raw(), encoding, limits.max_bytes)
            result = _apply(_until(deadline, body), path, since, now, url, response.headers.get("etag", ""),
                            progress, limits, accept_shrink)
            result.seconds = time.monotonic() - started
            return result
    result = _apply_file(client, manifest, path, now, url, manifest_etag, deadline, progress, limits, accept_shrink)
    result.seconds = time.monotonic() - started
    return result


def _apply_file(client: UpstreamClient, body: bytes, path: Path, now: datetime, url: str, etag: str,
                deadline: Deadline, progress: Progress | None, limits: SyncLimits, accept_shrink: bool) -> SyncResult:
    """A full snapshot as a file: download it, check it whole, then promote it as a full NDJSON answer is."""
    try:
        manifest = snapshot_file.parse_manifest(body, limits.max_bytes)
    except snapshot_file.FileRejected as exc:
        raise SnapshotRejected(str(exc)) from None
    pending = pending_path(path)
    with writer_lock(pending):
        for stale in pending.parent.glob(f"{pending.name}.new-*"):  # a writer killed mid-way left it; we hold the lock
            stale.unlink(missing_ok=True)
        target = pending.with_name(f"{pending.name}.new-{os.getpid()}")
        try:
            with client.snapshot_file(manifest.path, deadline) as response:
                counted = _Counted(decoded(_until(deadline, response.iter_raw()),
                                           response.headers.get("content-encoding", ""), limits.max_bytes))
                snapshot_file.receive(_reporting(counted, manifest, progress), target, manifest)
            meta = {"cursor": manifest.cursor, "synced_at": now.isoformat(timespec="seconds"), "etag": etag,
                    "source": "upstream", "upstream": redact_url(url)}
            counts = snapshot_file.check_and_finish(target, manifest, meta, limits.max_records)
            readable_by_service(target)
            _fsync(target)
            os.replace(target, pending)
        except snapshot_file.FileRejected as exc:
            raise SnapshotRejected(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise SyncError(f"cannot write the snapshot: {exc}") from exc
        finally:
            for leftover in (target, *(Path(f"{target}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
    _promote(path, limits, accept_shrink)
    loaded = LoadResult(groups=counts["groups"], customers=counts["customers"], cards=counts["cards"],
                        passes=counts["pass_keys"] + counts["pass_revocations"])
    if progress is not None:
        progress(loaded.records, loaded.records)
    return SyncResult("full", manifest.cursor, loaded, counted.bytes)


def _reporting(chunks: Iterable[bytes], manifest: snapshot_file.Manifest, progress: Progress | None) -> Iterator[bytes]:
    """The download's progress in the records the manifest announces (its share of the bytes); stops when asked."""
    done = 0
    for chunk in chunks:
        done += len(chunk)
        if progress is not None and progress(manifest.records * done // manifest.size, manifest.records or None):
            raise SyncStopped("sync abandoned: the kiosk is stopping")
        yield chunk


def _until(deadline: Deadline, chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        deadline.check()
        yield chunk


def _apply(chunks: Iterable[bytes], path: Path, since: str, now: datetime, url: str, etag: str,
           progress: Progress | None, limits: SyncLimits, accept_shrink: bool) -> SyncResult:
    counted = _Counted(chunks)
    lines = iter_lines(counted)
    lineno = 1
    try:
        first = next(lines, None)
        if first is None:
            raise SnapshotRejected("the upstream's snapshot is empty (no header line)")
        header = _header(first)
        full = header["full"]
        if not full and not since:
            raise SnapshotRejected("the upstream sent a delta although the kiosk asked for a full snapshot")
        builder = SnapshotBuilder(pending_path(path), "full") if full else _open_builder(path, "delta")
        try:
            if not full:
                _check_base(builder, since)
            expected = header.get("records") if isinstance(header.get("records"), int) else None
            count, end = 0, None
            held = None  # a delta's customers before its first customer delete
            for line in lines:
                lineno += 1
                record = _parse(line, lineno)
                kind = record.get("type")
                if kind == "end":
                    end = record
                    break
                if kind == "header":
                    raise SnapshotRejected(f"line {lineno}: a second header")
                if count >= limits.max_records:
                    raise SyncTooLarge(f"the upstream's answer is too large: over {limits.max_records:,} records "
                                       "(upstream.max_records); nothing of it was applied")
                if held is None and not full and kind == "delete" and record.get("entity") == "customer":
                    held = builder.totals()["customers"]
                try:
                    builder.apply(record)
                except RecordError as exc:
                    raise SnapshotRejected(f"line {lineno}: {kind or 'record'}: {exc}") from None
                count += 1
                if progress is not None and count % 10_000 == 0 and progress(count, expected):
                    raise SyncStopped("sync abandoned: the kiosk is stopping")
            if end is None:
                raise SnapshotRejected(f"the answer ended after line {lineno} without its end marker")
            for extra in lines:
                lineno += 1
                if extra.strip():
                    raise SnapshotRejected(f"line {lineno}: data after the end marker")
            if end.get("records") != count or isinstance(end.get("records"), bool):
                raise SnapshotRejected(f"the end marker counts {end.get('records')!r} records but {count} arrived")
            meta = {"cursor": header["cursor"], "synced_at": now.isoformat(timespec="seconds"), "etag": etag}
            if full:
                meta.update(source="upstream", upstream=redact_url(url))  # the snapshot file holds no password
            elif held is not None and not accept_shrink:
                _check_shrink(held, builder.totals()["customers"], limits, "a delta", "not applied")
            loaded = builder.commit(meta)
        except BaseException:
            builder.abort()
            raise
        if full:
            _promote(path, limits, accept_shrink)
    except _LineTooLong:
        raise SnapshotRejected(f"line {lineno + 1} is longer than {MAX_LINE // 1024} KiB") from None
    except (SnapshotError, sqlite3.Error) as exc:
        raise SyncError(f"cannot write the snapshot: {exc}") from exc
    if progress is not None:
        progress(count, expected)
    return SyncResult("full" if full else "delta", header["cursor"], loaded, counted.bytes)


def _promote(path: Path, limits: SyncLimits, accept_shrink: bool) -> None:
    """Swap the new full snapshot in, unless it drops too many of the customers held (then it stays pending)."""
    with writer_lock(path):
        pending = pending_path(path)
        if not accept_shrink:
            _check_shrink(_customers(path), _customers(pending), limits, "the full snapshot",
                          f"kept as pending in {pending.name}")
        os.replace(pending, path)
        _fsync_dir(path.parent)


def _check_shrink(held: int, new: int, limits: SyncLimits, what: str, outcome: str) -> None:
    if held and (held - new) / held > limits.max_shrink:
        raise SnapshotHeldBack(
            f"held back: {what} from the upstream would leave {new:,} of the {held:,} customers held "
            f"(drops {(held - new) / held:.0%}, more than upstream.max_shrink = {limits.max_shrink:g}); {outcome}; "
            "if that is right, run: kiosk sync --accept-shrink")


def _customers(path: Path) -> int:
    """Customers in a snapshot file; 0 when there is none or it cannot be read (nothing then to protect)."""
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT count(*) FROM customers").fetchone()[0]
    except sqlite3.Error:
        return 0


class _Counted:
    """Counts the (decoded) bytes that went by, for the report."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = chunks
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.bytes += len(chunk)
            yield chunk


_decode = json.JSONDecoder().decode  # on str: skips json.loads' encoding sniffing, ~25% of parsing a line


def _parse(line: bytes, lineno: int) -> dict:
    try:
        record = _decode(line.decode("utf-8"))
    except ValueError as exc:
        raise SnapshotRejected(f"line {lineno} is not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise SnapshotRejected(f"line {lineno} is not a JSON object")
    return record


def _header(line: bytes) -> dict:
    header = _parse(line, 1)
    if header.get("type") != "header":
        raise SnapshotRejected("line 1 is not the header")
    if header.get("version") != PROTOCOL_VERSION:
        raise SnapshotRejected(f"the upstream speaks protocol version {header.get('version')!r}; this kiosk speaks "
                               f"{PROTOCOL_VERSION}")
    if not isinstance(header.get("cursor"), str) or not header["cursor"]:
        raise SnapshotRejected("the header has no cursor")
    if not isinstance(header.get("full"), bool):
        raise SnapshotRejected("the header's 'full' must be true or false")
    return header


def _open_builder(path: Path, mode: str) -> SnapshotBuilder:
    builder = SnapshotBuilder(path, mode)
    # We hold the writer lock: any other half-built file is left by a writer that crashed.
    own = f"{path.name}.new-{os.getpid()}"
    for stale in path.parent.glob(f"{path.name}.new-*"):
        if stale.name != own and not stale.name.endswith("-journal"):
            log.info("removing %s, left by an interrupted snapshot load", stale)
            with contextlib.suppress(OSError):
                stale.unlink()
                Path(str(stale) + "-journal").unlink(missing_ok=True)
    return builder


def _check_base(builder: SnapshotBuilder, since: str) -> None:
    """A delta applies only to the snapshot it was asked for (an import may have replaced it meanwhile)."""
    row = builder.db.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
    if not row or row[0] != since:
        raise SnapshotRejected(f"the snapshot changed while syncing (cursor {row[0] if row else None!r}, "
                               f"asked for a delta on {since!r}); the next sync starts from the snapshot now held")


def _touch(path: Path, now: datetime) -> None:
    """304: the held snapshot is current as of now."""
    builder = SnapshotBuilder(path, "delta")
    builder.commit({"synced_at": now.isoformat(timespec="seconds")})
