"""Wiring the venue link into a running kiosk (called by the composition root when [venue] names a broker)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..model import Decision
from ..ports import Scan
from .link import VenueLink
from .settings import VenueSettings
from .store import PeerStore
from .union import VenueCounts

STORE_FILE = "venue.sqlite"


class _Wake:
    """An output: a decision was journalled, so the link publishes it now instead of at its next poll."""

    def __init__(self, link: VenueLink):
        self.link = link

    def act(self, decision: Decision) -> None:
        self.link.wake()

    def close(self) -> None:
        """The link is stopped by the composition root, after the sources."""


def heartbeat_status(app: Any) -> dict[str, Any]:
    """What the heartbeat tells the fleet about this gate."""
    s = app.status()
    return {"snapshot_age_s": s["snapshot"]["age_s"], "unreported": s["journal"]["unreported"],
            "faults": s["faults"], "last_scan_at": s["journal"]["last_scan_at"],
            "occupancy": {app.policy.access.zone: app.counts.occupancy(app.clock())}}


def union_counts(app: Any, punch: frozenset[str], since: datetime | None,
                 until: datetime | None = None) -> VenueCounts:
    """The App's counts when a broker is configured: its journal and the peers' store (opened here once, kept on
    app; read-only for `kiosk status` and `check`, which create nothing). `until`: as they were then."""
    j = app.config.journal
    path = app.state_dir / STORE_FILE
    if app.venue_store is None:
        if not app.readonly:
            app.venue_store = PeerStore(path, keep_days=j.keep_days, max_events=j.max_events)
        elif path.exists():
            app.venue_store = PeerStore(path, readonly=True)
    return VenueCounts.rebuild(app.journal_path, app.venue_store, app.policy.access, app.policy.tz, punch,
                               since=since, until=until)


def read_only_store(config: Any) -> PeerStore | None:
    """The venue's store of the peers' events for a look that changes nothing (`kiosk replay`): None without a
    broker, or when no peer has been heard yet (there is no file, and none is created)."""
    path = config.state_path / STORE_FILE
    if not config.venue.broker or not path.exists():
        return None
    return PeerStore(path, readonly=True)


def start_link(app: Any) -> VenueLink | None:
    """The running link, or None when no broker is configured. Raises ConfigError on bad [venue] settings."""
    settings = VenueSettings.from_config(app.config)
    if settings is None:
        return None
    link = VenueLink(settings, journal_path=app.journal.path, store=app.venue_store, state=app.state,
                     status=lambda: heartbeat_status(app), clock=app.clock,
                     on_peer_events=app.counts.add_peer_events,
                     on_remote_open=lambda by: app.gate.submit(Scan(raw="", source="remote",
                                                                     note=f"Remote open by {by}")),
                     faults=app.faults)
    app.gate.add_output(_Wake(link))
    link.start()
    return link
