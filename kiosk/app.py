"""The composition root: reads the config and wires adapters to the pipeline.

This is the one module of `kiosk/` that imports `hardware/` (lazily, inside functions),
because choosing adapters is its job. Nothing else reads the config file.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime
from typing import Any, Callable

from . import demo
from .access import AccessRules, policy_of
from .config import Config
from .counts import Counts, history_since, punch_cards
from .gate import Gate, utc_now
from .journal import Journal
from .ports import Faults, Output, ScanSource
from .rules import snapshot_age
from .snapshot import SnapshotStore
from .state import open_state

log = logging.getLogger(__name__)


class App:
    """Everything a running kiosk holds, built from one Config."""

    def __init__(self, config: Config, *, simulate: bool = False, clock: Callable[[], datetime] = utc_now):
        self.config = config
        self.simulate = simulate
        self.clock = clock
        self.started = time.monotonic()
        self.state_dir = config.state_path
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from .errors import ConfigError

            raise ConfigError(config.source, "state_dir", f"cannot create {self.state_dir} ({exc.strerror}); "
                              "set state_dir or pass --state-dir to a writable folder") from None
        self.snapshot_path = self.state_dir / "snapshot.sqlite"
        self.faults = Faults()
        if simulate:
            self._seed_demo()
        self.snapshot = SnapshotStore(self.snapshot_path)
        j = config.journal
        self.journal = Journal(self.state_dir / "journal.sqlite", keep_days=j.keep_days, max_events=j.max_events,
                               sync=j.sync)
        self.state = open_state(self.state_dir / "state.sqlite")
        self.policy = policy_of(config)
        punch = punch_cards(self.snapshot_path)
        since = history_since(self.policy.access, punch, clock())
        self.venue_store = None
        if config.venue.broker:  # the counts over this gate's journal and its peers' events (kiosk/venue)
            from .venue.wiring import union_counts

            self.counts = union_counts(self, punch, since)
        else:
            self.counts = Counts.rebuild(self.journal.path, self.policy.access, self.policy.tz, punch, since=since)
        self.gate = Gate(gate_id=config.gate.id, snapshot=self.snapshot, journal=self.journal, policy=self.policy,
                         clock=clock, faults=self.faults, counts=self.counts)
        self.sync_now: Callable[[], None] | None = None  # set when an upstream is configured

    def _seed_demo(self) -> None:
        """--simulate: demo data when there is no snapshot yet, refreshed if the demo data is what we hold."""
        held = SnapshotStore(self.snapshot_path)
        source = held.meta().get("source") if held.exists() else None
        held.close()
        if source in (None, "demo"):
            demo.seed(self.snapshot_path, self.clock(), rules=AccessRules.from_config(self.config.rules).active)

    # -- status ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        meta = self.snapshot.meta()
        age = snapshot_age(meta, now)
        counts = self.journal.counts()
        last_sync = self.state.get("last_sync")
        return {
            "gate": self.config.gate.id, "device": self.config.device,
            "snapshot": {"cursor": meta.get("cursor", ""), "synced_at": meta.get("synced_at"),
                         "source": meta.get("source"), "age_s": None if age is None else round(age.total_seconds()),
                         "stale": age is None or age.total_seconds() > self.policy.max_snapshot_age_h * 3600,
                         **self.snapshot.counts()},
            "journal": {**counts, "unreported": counts["pending"], "last_scan_at": self.journal.last_at()},
            "last_sync": last_sync, "last_upload": self.state.get("last_upload"), "faults": self.faults.active(),
            "uptime_s": round(time.monotonic() - self.started),
        }

    def status_line(self) -> str:
        s = self.status()
        age = s["snapshot"]["age_s"]
        age_text = "no snapshot" if not s["snapshot"]["customers"] and age is None else (
            "snapshot age unknown" if age is None else f"snapshot {age // 60} min old")
        head = "fault: " + "; ".join(s["faults"].values()) if s["faults"] else "ok"
        return f"{head}, {age_text}, {s['journal']['unreported']} unreported"

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
        self.journal.close()
        self.snapshot.close()
        self.state.close()


def build_sources(app: App, source: str | None) -> list[ScanSource]:
    """`--source` when given, else the config's `gate.sources` through the hardware adapters."""
    from .decoder import FrameDecoder
    from .sources import ImageFolderSource, StdinSource

    if source == "stdin":
        return [StdinSource()]
    if source and source.startswith("images:"):
        return [ImageFolderSource(source.split(":", 1)[1], FrameDecoder.from_config(app.config.camera))]
    from hardware import factory

    names = [source] if source else list(app.config.gate.sources)
    scans = demo.SCANS + (demo.RULE_SCANS if app.policy.access.active else [])
    return factory.make_sources(app.config, app.faults, names=names, simulate=app.simulate, demo_scans=scans)


def build_devices(app: App) -> list[Output]:
    from hardware import factory

    return factory.make_outputs(app.config, app.faults, app.gate, simulate=app.simulate)


def open_screen(app: App, headless: bool) -> Any | None:
    """The pygame screen, or None when headless, disabled or there is no display."""
    if headless or app.config.screen.enabled == "off":
        return None
    from hardware import screen

    return screen.open_screen(app, required=app.config.screen.enabled == "on")


def run(app: App, *, source: str | None = None, headless: bool = False, events: bool = False,
        limit: int | None = None) -> int:
    """`kiosk run`: until SIGINT/SIGTERM, end of input (stdin/images) or `limit` decisions."""
    from .notify import Notifier
    from .outputs import DecisionLog, EventPrinter

    notifier = Notifier()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    sources: list[ScanSource] = []
    devices: list[Output] = []
    screen = None
    upstream = None
    venue = None
    try:
        devices = build_devices(app)
        for device in devices:
            app.gate.add_output(device)
        if events:
            app.gate.add_output(EventPrinter(app.config.gate.id))
        app.gate.add_output(DecisionLog())  # before the screen: the log line comes even if drawing fails
        screen = open_screen(app, headless)
        if screen is not None:
            app.gate.add_output(screen)
        if app.config.upstream.url:
            from .upstream import Upstream

            upstream = Upstream.from_app(app)
            app.sync_now = upstream.request_sync
            upstream.start()
        if app.config.venue.broker:
            from .venue.wiring import start_link

            venue = start_link(app)
        sources = build_sources(app, source)
        finite = [s.done for s in sources if hasattr(s, "done")]
        ended = threading.Event()
        for s in sources:
            s.start(app.gate.submit)
        app.watch_staleness()
        app.journal.purge(app.clock())
        ready = app.status_line()
        notifier.ready(ready)
        log.info("gate %s ready: %s", app.config.gate.id, ready)
        last_status = last_purge = time.monotonic()

        def tick() -> None:
            nonlocal last_status, last_purge
            notifier.watchdog()
            if finite and all(d.is_set() for d in finite):
                ended.set()
            if limit is not None and app.gate.decided >= limit:
                stop.set()
            now = time.monotonic()
            if now - last_status >= 10:
                last_status = now
                app.counts.follow(app.journal.path)  # `kiosk occupancy set N` from a shell, meanwhile
                app.watch_staleness()
                notifier.status(app.status_line())
            if now - last_purge >= 3600:
                last_purge = now
                app.journal.purge(app.clock())
            if screen is not None and not screen.tick():
                stop.set()

        app.gate.run_loop(stop, tick=tick, tick_s=1 / 30, until_idle=ended if finite else None)
        return 0
    finally:
        notifier.stopping()
        for s in sources:
            s.stop()
        if upstream is not None:
            upstream.stop()
        if venue is not None:
            venue.stop()
        for output in devices + ([screen] if screen is not None else []):
            try:
                output.close()
            except Exception:
                log.exception("closing %s failed", type(output).__name__)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        notifier.close()

