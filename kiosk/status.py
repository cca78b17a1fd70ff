"""The kiosk's status, typed, and the live copy a running kiosk publishes for other processes.

`kiosk run` writes `status.json` in the state dir (atomically: a temp file, then `os.replace`)
when a fault changes and every PUBLISH_S seconds; `kiosk status` in another process reads it,
and calls it stale when it is older than STALE_S (the kiosk is not running, or hung).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .state import SyncOutcome, UploadOutcome


STATUS_FILE = "status.json"
PUBLISH_S = 5.0
STALE_S = 30.0


@dataclass(frozen=True)
class SnapshotStatus:
    cursor: str = ""
    synced_at: str | None = None
    source: str | None = None
    age_s: int | None = None
    stale: bool = True
    customers: int = 0
    groups: int = 0
    cards: int = 0


@dataclass(frozen=True)
class JournalStatus:
    total: int = 0
    pending: int = 0
    sent: int = 0
    isolated: int = 0
    held: int = 0  # decided, not yet written: the journal cannot be written right now
    lost: int = 0  # decided and never written: more were held than memory may keep
    last_scan_at: str | None = None

    @property
    def unreported(self) -> int:
        return self.pending + self.held


@dataclass(frozen=True)
class KioskStatus:
    gate: str
    device: str
    snapshot: SnapshotStatus
    journal: JournalStatus
    last_sync: SyncOutcome | None = None
    last_upload: UploadOutcome | None = None
    faults: dict[str, str] = field(default_factory=dict)
    uptime_s: int | None = None  # None: not from a running kiosk
    scans_queued: int = 0
    scans_dropped: int = 0  # from live sources, queue full

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["journal"]["unreported"] = self.journal.unreported
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "KioskStatus":
        """Read back what `to_json` wrote (a published status.json); unknown keys are ignored."""
        def pick(kind: type, value: Any) -> dict[str, Any]:
            names = {f.name for f in dataclasses.fields(kind)}
            return {k: v for k, v in (value or {}).items() if k in names}

        return cls(**{**pick(cls, data),
                      "snapshot": SnapshotStatus(**pick(SnapshotStatus, data.get("snapshot"))),
                      "journal": JournalStatus(**pick(JournalStatus, data.get("journal"))),
                      "last_sync": SyncOutcome.from_json(data.get("last_sync")),
                      "last_upload": UploadOutcome.from_json(data.get("last_upload")),
                      "faults": {str(k): str(v) for k, v in (data.get("faults") or {}).items()}})


@dataclass(frozen=True)
class Published:
    """A status.json as another process reads it."""

    status: KioskStatus
    written_at: datetime
    pid: int
    age_s: float

    @property
    def fresh(self) -> bool:
        return -STALE_S < self.age_s <= STALE_S


def publish(state_dir: Path, status: KioskStatus, now: datetime) -> OSError | None:
    """Replace status.json in one step, so a reader never sees half a file. Returns what went wrong, never
    raises: the status file is a window on the kiosk, not something the gate may stop for."""
    body = {**status.to_json(), "written_at": now.astimezone(timezone.utc).isoformat(), "pid": os.getpid()}
    try:
        fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".status-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, ensure_ascii=False)
            os.chmod(tmp, 0o644)  # no personal data; whoever may run `kiosk status` may read it
            os.replace(tmp, state_dir / STATUS_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        return exc
    return None


def read_published(state_dir: Path, now: datetime) -> Published | None:
    """The running kiosk's status.json, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
        written_at = datetime.fromisoformat(data["written_at"])
        status = KioskStatus.from_json(data)
        pid = int(data.get("pid", 0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return Published(status, written_at, pid, (now - written_at).total_seconds())
