"""The kiosk's link to its upstream: snapshot sync, scan reporting and heartbeat, offline-first.

Two background threads, so a long snapshot download never delays reporting and neither ever
delays a scan (scans are decided on the main thread from the snapshot already held):

- "upstream-sync": a sync every `upstream.sync_interval_s`, or at once on `request_sync()`;
  on failure it retries with exponential backoff and jitter, up to `upstream.retry_max_s`.
- "upstream-report": uploads pending journal events as soon as a scan is journalled (and on a
  timer, for passage updates), and sends a heartbeat every `upstream.heartbeat_s`.

What happened last goes to `state["last_sync"]` / `["last_upload"]`; what is wrong now
to `faults` ("upstream": unreachable or refusing; "token": the upstream refused the token;
"snapshot_pending": a sync that would drop too many customers was held back).

It is built from `UpstreamSettings` and the narrow `UpstreamPorts` (the composition root,
`kiosk.compose.upstream`, fills them), never from the whole App.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import __version__
from ..errors import KioskError, SyncError
from ..journal import Journal, iso
from ..ports import Clock, Faults, KeyValues, Output
from ..rules import snapshot_age
from ..snapshot import SnapshotStore
from ..state import SyncOutcome, UploadOutcome
from .client import ClientSettings, UpstreamClient, UpstreamError, read_token, url_warnings
from .limits import SyncLimits
from .reporter import ReporterProcess
from .sync import Progress, SnapshotHeldBack, SyncResult, SyncStopped, discard_pending, sync_snapshot
from .uploader import PAUSE_BETWEEN_BATCHES_S, UploadPacer, UploadResult, backoff_delay, summary, upload_round

__all__ = ["Upstream", "UpstreamPorts", "UpstreamSettings", "SyncResult", "UploadResult", "backoff_delay"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamSettings:
    """The [upstream] section, checked once: the client's settings, the timers and the sync's limits."""

    client: ClientSettings
    sync_interval_s: float
    heartbeat_s: float
    retry_max_s: float
    limits: SyncLimits
    # upstream.reporter = "process": what the reporter process is started with (JSON of the effective config and
    # its source); "" to report on a thread of `kiosk run`.
    reporter_start: str = ""

    @classmethod
    def from_config(cls, config: Any) -> "UpstreamSettings":
        """Raises ConfigError (file, key, fix) on an empty url or token_file."""
        up = config.upstream
        start = json.dumps({"config": config.as_data(), "source": config.source}) if up.reporter == "process" else ""
        return cls(client=ClientSettings.from_config(config), sync_interval_s=float(up.sync_interval_s),
                   heartbeat_s=float(up.heartbeat_s), retry_max_s=float(up.retry_max_s),
                   limits=SyncLimits.from_config(up), reporter_start=start)

    @property
    def retry_base_s(self) -> float:
        """The first retry's delay (doubling up to `retry_cap_s`)."""
        return min(5.0, self.sync_interval_s)

    @property
    def retry_cap_s(self) -> float:
        return max(self.retry_max_s, self.sync_interval_s)

    def pacer(self, rng: random.Random) -> UploadPacer:
        """The reporter's schedule: a pass from the start every heartbeat, at most every 5 s."""
        return UploadPacer(min(5.0, self.heartbeat_s), self.retry_base_s, self.retry_cap_s, rng)


@dataclass(frozen=True)
class UpstreamPorts:
    """What the upstream link may touch of the running kiosk, and nothing more."""

    snapshot: SnapshotStore  # the live snapshot: a sync replaces its file, then reloads it
    journal: Journal  # the reporter's own connection (closed by `stop`), never the gate's
    state: KeyValues  # where last_sync / last_upload are kept
    faults: Faults
    clock: Clock
    held: Callable[[], int]  # decisions the gate's journal holds in memory, not yet written
    synced: Callable[[], None]  # after a sync applied: the snapshot's staleness is looked at again
    watch_decisions: Callable[[Output], None]  # adds an output to the gate (the reporter wakes on each scan)
    started: float  # time.monotonic() when the kiosk started, for the heartbeat's uptime


class Upstream:
    def __init__(self, settings: UpstreamSettings, ports: UpstreamPorts, *, rng: random.Random | None = None):
        self.settings = settings.client
        self.ports = ports
        self.limits = settings.limits
        self.sync_interval_s = settings.sync_interval_s
        self.heartbeat_s = settings.heartbeat_s
        self.retry_max_s = settings.retry_cap_s
        self.retry_base_s = settings.retry_base_s
        self.reporter_start = settings.reporter_start
        self.rng = rng or random.Random()
        self._pacer = settings.pacer(self.rng)
        read_token(self.settings.token_file, self.settings.config_file)  # refuse to start on a bad token file
        for warning in url_warnings(self.settings.url):
            log.warning("%s", warning)
        # The reporter's own connection to the journal: WAL readers never block the gate, and its
        # acknowledgements go to the acknowledgements file, so a scan being journalled never waits for
        # them, on the journal's lock or on SQLite's. Only setting a bad event aside writes the journal.
        self._journal = ports.journal
        self._sync_client = UpstreamClient(self.settings)
        self._report_client = UpstreamClient(self.settings)
        self._stop = threading.Event()
        self._sync_wanted = threading.Event()
        self._upload_wanted = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reporter: ReporterProcess | None = None  # upstream.reporter = "process": the child that uploads
        self._problems: dict[str, str] = {}  # channel -> what is wrong ("sync", "report")
        self._problems_lock = threading.Lock()
        self.sync_failures = 0
        self.report_failures = 0

    # -- one round each (the threads and `kiosk sync` use these) -------------------------
    def sync_once(self, progress: Progress | None = None, accept_shrink: bool = False) -> SyncResult:
        """One snapshot sync; records the outcome in state and faults. Raises SyncError on failure.

        `accept_shrink` lets an answer through that drops more customers than upstream.max_shrink allows.
        """
        p = self.ports
        now = p.clock()

        def watch(done: int, expected: int | None) -> bool:
            if progress is not None:
                progress(done, expected)
            return self._stop.is_set()

        try:
            result = sync_snapshot(self._sync_client, p.snapshot.path, p.snapshot.meta(), now, watch,
                                   limits=self.limits, accept_shrink=accept_shrink)
        except SyncStopped:
            raise  # shutting down: not a failure worth a fault or a status entry
        except KioskError as exc:
            self.sync_failures += 1
            if isinstance(exc, SnapshotHeldBack):
                log.warning("sync: %s", exc)
                p.faults.set("snapshot_pending", "New member list held back: it drops many members")
            else:
                self._failed("sync", exc)
            before = SyncOutcome.from_json(p.state.get("last_sync"))
            p.state["last_sync"] = SyncOutcome(
                at=iso(now), ok=False, cursor=p.snapshot.meta().get("cursor", ""), error=str(exc),
                failures=self.sync_failures, last_ok_at=before.last_ok_at if before else None).to_json()
            raise
        self.sync_failures = 0
        discard_pending(p.snapshot.path)
        p.faults.clear("snapshot_pending")
        p.snapshot.reload()
        self._succeeded("sync")
        p.synced()
        p.state["last_sync"] = SyncOutcome(at=iso(now), ok=True, kind=result.kind, cursor=result.cursor,
                                             changed=result.changed(), bytes=result.bytes,
                                             seconds=round(result.seconds, 2), last_ok_at=iso(now)).to_json()
        log.info("sync: %s", result.summary())
        return result

    def upload_once(self, pause_s: float = 0.0, after: int = 0) -> UploadResult:
        """Report every pending event past journal position `after` (until the upstream holds some back).
        Raises SyncError on failure."""
        try:
            result = upload_round(self._report_client, self._journal, self.ports.clock, stop=self._stop,
                                  pause_s=pause_s, after=after)
        except KioskError as exc:
            self._upload_failed(exc)
            raise
        self._uploaded(result.accepted, len(result.isolated), result.requests)
        return result

    def _upload_failed(self, exc: KioskError) -> None:
        p = self.ports
        self.report_failures += 1
        self._failed("report", exc)
        p.state["last_upload"] = UploadOutcome(at=iso(p.clock()), ok=False, error=str(exc),
                                                 failures=self.report_failures).to_json()

    def _uploaded(self, accepted: int, isolated: int, requests: int) -> None:
        p = self.ports
        self.report_failures = 0
        self._succeeded("report")
        if requests:
            p.state["last_upload"] = UploadOutcome(at=iso(p.clock()), ok=True, accepted=accepted,
                                                     isolated=isolated).to_json()
            log.info("upload: %s", summary(accepted, isolated))

    def _reported(self, outcome: dict[str, Any]) -> None:
        """One line from the reporter process (our own child, still checked: a bad line is a failure)."""
        def count(key: str) -> int:
            value = outcome.get(key, 0)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

        if outcome.get("ok") is True:
            self._uploaded(count("accepted"), count("isolated"), count("requests"))
            return
        error = str(outcome.get("error") or "the reporter process failed")[:500]
        status = outcome.get("status")
        self._upload_failed(UpstreamError(error, status) if isinstance(status, int) and not isinstance(status, bool)
                            else SyncError(error))

    def heartbeat_once(self) -> None:
        self._report_client.heartbeat(self.heartbeat_payload())

    def heartbeat_payload(self) -> dict[str, Any]:
        p = self.ports
        meta = p.snapshot.meta()
        age = snapshot_age(meta, p.clock())
        return {"device": self.settings.device, "version": __version__, "cursor": meta.get("cursor", ""),
                "snapshot_age_s": None if age is None else round(age.total_seconds()),
                # held: decided while the journal could not be written, still to be written and reported
                "queue": self._journal.counts()["pending"] + p.held(), "uptime_s": round(time.monotonic() - p.started),
                "last_scan_at": self._journal.last_at(), "faults": sorted(p.faults.active())}

    # -- faults --------------------------------------------------------------------------
    def _failed(self, channel: str, exc: KioskError) -> None:
        log.warning("upstream %s failed: %s", channel, exc)
        if isinstance(exc, UpstreamError) and exc.status == 401:
            self.ports.faults.set("token", "Upstream refused the kiosk's token: renew it")
            self._set_problem(channel, None)
        else:
            self._set_problem(channel, f"{'sync' if channel == 'sync' else 'reporting'}: {exc}")

    def _succeeded(self, channel: str) -> None:
        self.ports.faults.clear("token")
        self._set_problem(channel, None)

    def _set_problem(self, channel: str, problem: str | None) -> None:
        with self._problems_lock:
            if problem is None:
                self._problems.pop(channel, None)
            else:
                self._problems[channel] = problem
            text = "; ".join(self._problems[c] for c in sorted(self._problems))
        if text:
            self.ports.faults.set("upstream", "Upstream " + text)
        else:
            self.ports.faults.clear("upstream")

    # -- background ----------------------------------------------------------------------
    def start(self) -> None:
        if self.reporter_start:
            hello = {**json.loads(self.reporter_start), "journal": str(self._journal.path), "sync": self._journal.sync}
            self._reporter = ReporterProcess(hello, self._reported)
            self._reporter.start()
            self.ports.watch_decisions(_WakeOnScan(self._reporter.wake))
        else:
            self.ports.watch_decisions(_WakeOnScan(self._upload_wanted.set))
        for name, target in (("upstream-sync", self._sync_loop), ("upstream-report", self._report_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._sync_wanted.set()
        self._upload_wanted.set()
        if self._reporter is not None:
            self._reporter.stop(timeout)
            self._reporter = None
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self._sync_client.close()
        self._report_client.close()
        self._journal.close()

    def request_sync(self) -> None:
        """Sync as soon as possible (the screen's "sync now"); returns at once."""
        self._sync_wanted.set()

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            self._sync_wanted.clear()
            try:
                self.sync_once()
                wait = self.sync_interval_s
            except KioskError:
                wait = backoff_delay(self.sync_failures, self.retry_base_s, self.retry_max_s, self.rng)
            except Exception:
                log.exception("sync failed unexpectedly")
                wait = self.retry_max_s
            self._sync_wanted.wait(wait)

    def _report_loop(self) -> None:
        next_heartbeat = time.monotonic()
        pacer = self._pacer
        while not self._stop.is_set():
            self._upload_wanted.clear()
            now = time.monotonic()
            # With a reporter process, that process paces the uploads: this thread only sends heartbeats.
            if self._reporter is None and pacer.due(now) and self._journal.pending_after(pacer.after, 1)[0]:
                try:
                    pacer.succeeded(self.upload_once(pause_s=PAUSE_BETWEEN_BATCHES_S, after=pacer.after).after)
                except KioskError:
                    pacer.failed(now, self.report_failures)
                except Exception:
                    log.exception("upload failed unexpectedly")
                    pacer.retry_after(now, self.retry_max_s)
            if now >= next_heartbeat:
                next_heartbeat = now + self.heartbeat_s
                try:
                    self.heartbeat_once()
                    if not self.report_failures:
                        self._succeeded("report")
                except KioskError as exc:
                    self._failed("report", exc)
                except Exception:
                    log.exception("heartbeat failed unexpectedly")
            now = time.monotonic()
            self._upload_wanted.wait(pacer.wait_s(now, next_heartbeat))


class _WakeOnScan:
    """A gate output that wakes the reporter (thread or process) when an event was journalled."""

    def __init__(self, wake: Callable[[], None]):
        self.wake = wake

    def act(self, decision: Any) -> None:
        self.wake()

    def close(self) -> None:
        pass
