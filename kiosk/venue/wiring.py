"""Wiring the venue link into a running kiosk, through narrow ports (the composition root,
`kiosk.compose.venue_link`, fills them when [venue] names a broker)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..model import Decision
from ..ports import Clock, Faults, KeyValues, Output, Scan, StatusReader, Submit
from .link import VenueLink
from .settings import VenueSettings
from .store import PeerStore

STORE_FILE = "venue.sqlite"


class _Wake:
    """An output: a decision was journalled, so the link publishes it now instead of at its next poll."""

    def __init__(self, link: VenueLink):
        self.link = link

    def act(self, decision: Decision) -> None:
        self.link.wake()

    def close(self) -> None:
        """The link is stopped by the composition root, after the sources."""


@dataclass(frozen=True)
class VenuePorts:
    """What the venue link may touch of the running kiosk."""

    journal_path: Path  # read by the link's own connection: what this gate journalled is its outbox
    store: PeerStore  # the peers' events
    state: KeyValues  # the published watermark
    status: StatusReader
    occupancy: Callable[[], dict[str, int]]  # the zone's count now, for the heartbeat
    clock: Clock
    on_peer_events: Callable[[list[dict[str, Any]]], None]  # the counts take in what peers did
    submit: Submit  # a remote "open once" is queued like every other scan
    faults: Faults
    watch_decisions: Callable[[Output], None]  # adds an output to the gate (the link wakes on each decision)


def heartbeat_status(status: StatusReader, occupancy: Callable[[], dict[str, int]]) -> dict[str, Any]:
    """What the heartbeat tells the fleet about this gate."""
    s = status.live_status()
    return {"snapshot_age_s": s.snapshot.age_s, "unreported": s.journal.unreported, "faults": dict(s.faults),
            "last_scan_at": s.journal.last_scan_at, "occupancy": occupancy()}


def open_peer_store(state_dir: Path, *, keep_days: int, max_events: int, readonly: bool) -> PeerStore | None:
    """The peers' store beside the journal; read-only for `kiosk status` and `check`, which create nothing
    (None then when there is none yet)."""
    path = state_dir / STORE_FILE
    if not readonly:
        return PeerStore(path, keep_days=keep_days, max_events=max_events)
    if path.exists():
        return PeerStore(path, readonly=True)
    return None


def read_only_store(config: Any) -> PeerStore | None:
    """The venue's store of the peers' events for a look that changes nothing (`kiosk replay`): None without a
    broker, or when no peer has been heard yet (there is no file, and none is created)."""
    if not config.venue.broker:
        return None
    return open_peer_store(config.state_path, keep_days=config.journal.keep_days,
                           max_events=config.journal.max_events, readonly=True)


def start_link(settings: VenueSettings, ports: VenuePorts) -> VenueLink:
    """The running link."""
    link = VenueLink(settings, journal_path=ports.journal_path, store=ports.store, state=ports.state,
                     status=lambda: heartbeat_status(ports.status, ports.occupancy), clock=ports.clock,
                     on_peer_events=ports.on_peer_events,
                     on_remote_open=lambda by: ports.submit(Scan(raw="", source="remote", note=f"Remote open by {by}")),
                     faults=ports.faults)
    ports.watch_decisions(_Wake(link))
    link.start()
    return link
