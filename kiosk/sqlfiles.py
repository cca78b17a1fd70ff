"""What every SQLite store (snapshot, journal, state) does the same way with its file."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, TypedDict, Unpack

log = logging.getLogger(__name__)

# SQLite's primary result codes (sqlite3 gives them as `exc.sqlite_errorcode`, extended codes in the high bits)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 5, 6, 10, 11, 13, 26


def is_corrupt(exc: BaseException | None) -> bool:
    """The file is damaged (not merely locked, full or unreadable)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)


def is_passing(exc: BaseException | None) -> bool:
    """The file cannot be written for now (locked, or a full disk that cannot even map the -shm file)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL)


def move_aside(path: Path, why: str) -> Path:
    """Rename a damaged SQLite file (and its -wal/-shm/-journal companions) out of the way; never delete it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = Path(str(path) + suffix)
        if companion.exists():
            os.replace(companion, Path(str(target) + suffix))
    log.error("%s is damaged (%s): moved aside whole to %s", path, why, target)
    return target


def readable_by_service(path: Path) -> None:
    """A new state file: owner read-write, group read, whatever the creator's umask (0640).

    Run as root (a `kiosk import` by hand), the file is given to the state dir's owner and group, so the
    running kiosk, which owns its state dir (systemd's StateDirectory=), can still open it.
    """
    with contextlib.suppress(OSError):
        if os.geteuid() == 0:
            folder = path.parent.stat()
            os.chown(path, folder.st_uid, folder.st_gid)
        os.chmod(path, 0o640)


class ConnectOptions(TypedDict, total=False):
    """The options of `sqlite3.connect` that the stores pass through `connect_readonly`."""

    check_same_thread: bool
    isolation_level: Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None
    timeout: float


def connect_readonly(path: Path, **kwargs: Unpack[ConnectOptions]) -> sqlite3.Connection:
    """A read-only connection that also works in a folder the caller cannot write.

    A WAL file there cannot get the -shm file SQLite reads it through ("attempt to write a readonly
    database"). With no -wal file, or an empty one (its writer closed it cleanly, or never wrote), the
    main file holds everything, so it is then opened as an unchanging file (`immutable=1`)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, **kwargs)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        wal = Path(str(path) + "-wal")
        if wal.exists() and wal.stat().st_size > 0:  # an empty one (a writer that never got going) holds nothing
            raise
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, **kwargs)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db
