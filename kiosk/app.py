"""The running kiosk's core, built from one Config: the stores, the gate, the faults and the status.

It imports no adapter: the composition root (`kiosk.compose`) builds the devices, the upstream
link and the venue link, and hands them narrow ports of this App (submit a scan, record an
alarm, read status, trigger a sync), never the App itself.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable

from . import demo
from .access import AccessRules, policy_of
from .config import Config
from .counts import Counts, history_since, punch_cards
from .errors import ConfigError, JournalError, SnapshotError, StateError
from .gate import Gate, utc_now
from .journal import Journal
from .ports import Faults, SyncRequests
from .rules import snapshot_age
from .snapshot import SnapshotStore
from .state import State, SyncOutcome, UploadOutcome, open_state, read_state
from .status import STATUS_FILE, JournalStatus, KioskStatus, SnapshotStatus, publish

if TYPE_CHECKING:
    from .venue.store import PeerStore
    from .venue.union import VenueCounts

log = logging.getLogger(__name__)


class App:
    """Everything a running kiosk holds, built from one Config.

    The journal, the state file and the gate are opened when first used, so a command that only reads
    the snapshot (`import`, `find`) creates neither. `readonly` (`status`, `check`): nothing is created
    or written, not even the state dir; the journal and state are read through read-only connections.
    A context manager: `with App(config) as app:` closes every store it opened.
    """

    def __init__(self, config: Config, *, simulate: bool = False, clock: Callable[[], datetime] = utc_now,
                 readonly: bool = False):
        self.config = config
        self.simulate = simulate
        self.clock = clock
        self.readonly = readonly
        self.started = time.monotonic()
        self._publish_failing = False
        self.state_dir = config.state_path
        if not readonly:
            try:
                self.state_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(config.source, "state_dir", f"cannot create {self.state_dir} ({exc.strerror}); "
                                  "set state_dir or pass --state-dir to a writable folder") from None
        log.debug("state dir %s, %s", self.state_dir, "read-only" if readonly else "read-write")
        self.snapshot_path = self.state_dir / "snapshot.sqlite"
        self.journal_path = self.state_dir / "journal.sqlite"
        self.faults = Faults()
        self.status_changed = threading.Event()  # a fault came or went: publish the live status now
        self.faults.subscribe(lambda *_: self.status_changed.set())
        self.sync = SyncRequests()  # connected to the upstream when one runs (the screen's "sync now")
        if simulate:
            self._seed_demo()
        self.snapshot = SnapshotStore(self.snapshot_path, heal=not readonly, on_problem=self._snapshot_problem)
        self.policy = policy_of(config)
        self.venue_store: PeerStore | None = None  # the peers' events, when [venue] names a broker (kiosk/venue)

    @cached_property
    def journal(self) -> Journal:
        j = self.config.journal
        journal = Journal(self.journal_path, keep_days=j.keep_days, max_events=j.max_events, sync=j.sync,
                          readonly=self.readonly)
        if journal.moved_aside is not None:
            self.faults.set("journal", f"Journal was damaged: moved aside to {journal.moved_aside.name}, "
                                       "a new one started")
        elif journal.problem:
            self.faults.set("journal", f"Journal not writable, decisions kept in memory ({journal.problem})")
        return journal

    @cached_property
    def state(self) -> State:
        return open_state(self.state_dir / "state.sqlite", readonly=self.readonly)

    @cached_property
    def counts(self) -> "Counts | VenueCounts":
        """The access rules' counts, rebuilt from the journal file (read-only; none when there is no journal)."""
        punch = punch_cards(self.snapshot_path)
        since = history_since(self.policy.access, punch, self.clock())
        if self.config.venue.broker:  # over this gate's journal and its peers' events
            from .venue.union import VenueCounts
            from .venue.wiring import open_peer_store

            j = self.config.journal
            self.venue_store = open_peer_store(self.state_dir, keep_days=j.keep_days, max_events=j.max_events,
                                               readonly=self.readonly)
            return VenueCounts.rebuild(self.journal_path, self.venue_store, self.policy.access, self.policy.tz, punch,
                                       since=since)
        return Counts.rebuild(self.journal_path, self.policy.access, self.policy.tz, punch, since=since)

    @cached_property
    def gate(self) -> Gate:
        journal = self.journal  # first: a damaged journal is moved aside before its counts are read
        return Gate(gate_id=self.config.gate.id, snapshot=self.snapshot, journal=journal, policy=self.policy,
                    clock=self.clock, faults=self.faults, counts=self.counts)

    def _snapshot_problem(self, problem: str | None) -> None:
        """The snapshot store moved a damaged file aside (or cannot read it), or has a good file again."""
        if problem is None:
            self.faults.clear("snapshot")
            return
        self.faults.set("snapshot", problem)
        self.sync.request()

    def _seed_demo(self) -> None:
        """--simulate: demo data when there is no snapshot yet, refreshed if the demo data is what we hold."""
        held = SnapshotStore(self.snapshot_path, heal=True)  # a damaged file goes aside, the demo replaces it
        source = held.meta().get("source") if held.exists() else None
        held.close()
        if source in (None, "demo"):
            try:
                demo.seed(self.snapshot_path, self.clock(), rules=AccessRules.from_config(self.config.rules).active)
            except SnapshotError as exc:
                if source is None:
                    raise
                log.warning("demo data not refreshed (%s); the gate decides on the demo snapshot it holds", exc)

    # -- status ------------------------------------------------------------------------
    def live_status(self) -> KioskStatus:
        now = self.clock()
        meta = self.snapshot.meta()
        age = snapshot_age(meta, now)
        snapshot = SnapshotStatus(cursor=meta.get("cursor", ""), synced_at=meta.get("synced_at"),
                                  source=meta.get("source"), age_s=None if age is None else round(age.total_seconds()),
                                  stale=age is None or age.total_seconds() > self.policy.max_snapshot_age_h * 3600,
                                  **self.snapshot.counts())
        stored = read_state(self.state_dir / "state.sqlite") if self.readonly else self._stored()
        gate = self.__dict__.get("gate")
        return KioskStatus(
            gate=self.config.gate.id, device=self.config.device, snapshot=snapshot, journal=self._journal_status(),
            last_sync=SyncOutcome.from_json(stored.get("last_sync")),
            last_upload=UploadOutcome.from_json(stored.get("last_upload")), faults=self.faults.active(),
            uptime_s=None if self.readonly else round(time.monotonic() - self.started),
            scans_queued=gate.scans.qsize() if gate else 0, scans_dropped=gate.dropped if gate else 0)

    def _stored(self) -> dict[str, Any]:
        try:
            return {k: self.state.get(k) for k in ("last_sync", "last_upload")}
        except StateError as exc:  # the status shows less; the gate goes on
            log.warning("%s", exc)
            return {}

    def _journal_status(self) -> JournalStatus:
        if self.readonly and not self.journal_path.exists():
            return JournalStatus()
        try:
            journal = self.journal
            counts = journal.counts()
        except JournalError as exc:
            if not self.readonly:
                raise
            # `kiosk status` on a damaged journal: the fault, and the rest of the status still shown
            self.faults.set("journal", str(exc))
            return JournalStatus()
        return JournalStatus(total=counts["total"], pending=counts["pending"], sent=counts["sent"],
                             isolated=counts["isolated"], held=journal.held, lost=journal.lost,
                             last_scan_at=journal.last_at())

    def status(self) -> dict[str, Any]:
        """`live_status()` as JSON-ready data (the screen, `kiosk status --json`)."""
        return self.live_status().to_json()

    def publish_status(self) -> None:
        """status.json for `kiosk status` in other processes."""
        self.status_changed.clear()
        problem = publish(self.state_dir, self.live_status(), self.clock())
        # a full disk fails every publish (one per decision while faults change): say so once, and when it ends
        if problem is not None and not self._publish_failing:
            log.warning("cannot publish the live status to %s: %s (not logged again until it works)",
                        self.state_dir / STATUS_FILE, problem)
        elif problem is None and self._publish_failing:
            log.info("the live status is published again to %s", self.state_dir / STATUS_FILE)
        self._publish_failing = problem is not None

    def purge_journal(self) -> None:
        try:
            self.journal.purge(self.clock())
        except JournalError as exc:
            log.warning("journal housekeeping skipped, tried again later: %s", exc)

    def status_line(self) -> str:
        s = self.live_status()
        age = s.snapshot.age_s
        age_text = "no snapshot" if not s.snapshot.customers and age is None else (
            "snapshot age unknown" if age is None else f"snapshot {age // 60} min old")
        head = "fault: " + "; ".join(s.faults.values()) if s.faults else "ok"
        return f"{head}, {age_text}, {s.journal.unreported} unreported"

    def watch_staleness(self) -> None:
        """Raise or clear the snapshot_stale fault (screen banner, status, heartbeat)."""
        age = snapshot_age(self.snapshot.meta(), self.clock())
        if age is None or age.total_seconds() > self.policy.max_snapshot_age_h * 3600:
            hours = "never synced" if age is None else f"{age.total_seconds() / 3600:.0f} h old"
            self.faults.set("snapshot_stale", f"Member list out of date ({hours})")
        else:
            self.faults.clear("snapshot_stale")

    def close(self) -> None:
        if self.venue_store is not None:
            self.venue_store.close()
        for name in ("journal", "state"):
            if name in self.__dict__:
                self.__dict__[name].close()
        self.snapshot.close()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

