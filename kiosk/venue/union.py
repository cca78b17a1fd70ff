"""The access rules' counts over the union of this gate's journal and its peers' events.

Two parts, because they merge differently:
- entries, totals and punch uses (per customer, across the whole venue): adding an event commutes,
  so every admit at an `in` or `none` gate anywhere counts once, whenever it arrives;
- who is inside and the occupancy of this gate's zone depend on order (in, then out), so they are
  replayed in time order over the zone's events of the current period (since the daily reset)
  whenever a peer's event arrives late. Two gates holding the same events therefore hold the same
  counts, whatever order the events came in (a set union: duplicates are dropped by id upstream).

Both parts are kiosk.counts.Counts (issue 11); this class is the read-only CountsView the rules
see. The gate's thread records its own decisions, the link's thread adds peers' events: a lock
keeps them apart. Nothing here decides: a peer's event can only add counts.
"""

from __future__ import annotations

import bisect
import dataclasses
import sqlite3
import threading
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterable

from ..access import AccessRules
from ..counts import CLI_SOURCE, OCCUPANCY_SET, Counts
from ..errors import JournalError
from ..journal import iso
from .store import PeerStore

_COUNTED = ("admit", OCCUPANCY_SET)
# (time, event id, verdict, source, customer id, raw, direction): sorting these is the zone's order
ZoneEvent = tuple[float, str, str, str, str | None, str, str]


def _t(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


class VenueCounts:
    def __init__(self, rules: AccessRules, tz: tzinfo | None, punch: frozenset[str] | set[str] = frozenset()):
        self.rules = rules
        self.tz = tz
        self.zone = rules.zone
        self.punch = frozenset(punch)
        self._by_dir = {d: dataclasses.replace(rules, direction=d) for d in ("in", "out", "none")}
        self._lock = threading.RLock()
        self.entries_counts = Counts(self._by_dir["none"], tz)  # entries only: a `none` gate counts no one inside
        self.zone_counts = Counts(rules, tz)
        self._zone_log: list[ZoneEvent] = []
        self._late: list[ZoneEvent] = []  # late events not yet in the zone's order: sorted in on the next read
        self._seq = 0  # the journal's last row `follow` has read
        self.peer_events = 0

    # -- what the rules read (kiosk.access.CountsView) --------------------------------------------
    def entries(self, customer_id: str, since: datetime) -> int:
        with self._lock:
            return self.entries_counts.entries(customer_id, since)

    def total_entries(self, customer_id: str) -> int:
        with self._lock:
            return self.entries_counts.total_entries(customer_id)

    def last_entry(self, customer_id: str) -> datetime | None:
        with self._lock:
            return self.entries_counts.last_entry(customer_id)

    def punch_uses(self, card_key: str, since: datetime | None) -> int:
        with self._lock:
            return self.entries_counts.punch_uses(card_key, since)

    def inside_since(self, customer_id: str, now: datetime) -> datetime | None:
        with self._lock:
            return self._settled().inside_since(customer_id, now)

    def occupancy(self, now: datetime) -> int:
        with self._lock:
            return self._settled().occupancy(now)

    def inside(self, now: datetime) -> list[str]:
        with self._lock:
            return self._settled().inside(now)

    def recent_admits(self, since: datetime) -> dict[str, datetime]:
        with self._lock:
            return self.entries_counts.recent_admits(since)

    # -- this gate's decisions (the gate's thread, after the journal write) ------------------------
    def record(self, *, at: datetime, verdict: str, source: str, customer_id: str | None, credential: str = "",
               punch: bool = False, raw: str = "", event_id: str = "") -> None:
        with self._lock:
            self._add(at.timestamp(), event_id, verdict, source, customer_id, credential if punch else None, raw,
                      self.rules.direction, here=True)

    def follow(self, journal_path: str | Path) -> int:
        """Occupancy corrections `kiosk occupancy set` journalled from a shell meanwhile (as Counts.follow)."""
        try:
            db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT seq, id, at, raw FROM events WHERE seq > ? AND verdict = ? AND source = ?"
                                  " ORDER BY seq", (self._seq, OCCUPANCY_SET, CLI_SOURCE)).fetchall()
                self._seq = db.execute("SELECT max(seq) FROM events").fetchone()[0] or self._seq
            finally:
                db.close()
        except sqlite3.Error:
            return 0
        with self._lock:
            for _seq, eid, at, raw in rows:
                self._add(_t(at), eid, OCCUPANCY_SET, CLI_SOURCE, None, None, raw, self.rules.direction, here=True)
        return len(rows)

    # -- the peers' events (the link's thread) -------------------------------------------------------
    def add_peer_events(self, events: Iterable[dict[str, Any]]) -> None:
        """New peer events (kiosk.venue.messages.parse_event, already de-duplicated by the store)."""
        with self._lock:
            for e in sorted(events, key=lambda e: (e["at"], e["id"])):
                if e["verdict"] not in _COUNTED:
                    continue
                card = e["card"] if e["card"] in self.punch else None
                self.peer_events += 1
                self._add(_t(e["at"]), e["id"], e["verdict"], e["source"], e["customer"], card, e["value"] or "",
                          e["dir"], here=e["zone"] == self.zone)

    # -- both ----------------------------------------------------------------------------------------
    def _add(self, t: float, event_id: str, verdict: str, source: str, customer_id: str | None,
             punch_key: str | None, raw: str, direction: str, *, here: bool) -> None:
        if verdict not in _COUNTED:
            return
        if verdict == "admit" and direction != "out" and source != "exit_button":
            self.entries_counts._apply(t, verdict, source, customer_id, punch_key, raw)
        if here:
            self._zone((t, event_id, verdict, source, customer_id, raw, direction))

    def _zone(self, event: ZoneEvent) -> None:
        zone = self.zone_counts
        if event[0] < zone._period[0]:
            return  # before the daily reset: the zone has been emptied since
        if self._late or (self._zone_log and event < self._zone_log[-1]):
            self._late.append(event)  # late (or after a late one): put in order when the zone is next read
            return
        if event[0] >= zone._period[1]:
            self._zone_log.clear()  # a new period: the reset emptied the zone
        self._zone_log.append(event)
        self._step(event)

    def _settled(self) -> Counts:
        """The zone's counts with every late event in its place: one sort and one replay however many came
        (a catch-up brings thousands; the rules read the zone once per scan)."""
        if self._late:
            self._zone_log.extend(self._late)
            self._late.clear()
            self._zone_log.sort()  # two sorted runs: linear
            self.zone_counts = Counts(self.rules, self.tz)
            for e in self._zone_log:
                self._step(e)
            start = self.zone_counts._period[0]
            if self._zone_log[0][0] < start:  # keep only the current period's events
                del self._zone_log[:bisect.bisect_left(self._zone_log, (start,))]
        return self.zone_counts

    def _step(self, event: ZoneEvent) -> None:
        t, _id, verdict, source, customer_id, raw, direction = event
        zone = self.zone_counts
        zone.rules = self._by_dir[direction]  # the direction of the gate that saw it
        zone._apply(t, verdict, source, customer_id, None, raw)

    # -- building ------------------------------------------------------------------------------------
    @classmethod
    def rebuild(cls, journal_path: str | Path, store: PeerStore | None, rules: AccessRules, tz: tzinfo | None,
                punch: frozenset[str] | set[str] = frozenset(), since: datetime | None = None) -> "VenueCounts":
        """From this gate's journal and the peers' store: entries over `since` (kiosk.counts.history_since),
        the zone replayed over the current period. No store (a read-only look before any peer was heard): the
        journal alone."""
        counts = cls(rules, tz, punch)
        own = rules.direction
        # this gate's entries in Counts' own lean rebuild (an `out` gate's admits are exits: no entries)
        counts.entries_counts = Counts.rebuild(journal_path, counts._by_dir["out" if own == "out" else "none"], tz,
                                               punch, since=since)
        counts.entries_counts.rules = counts._by_dir["none"]
        counts._seq = counts.entries_counts._seq
        peers = store.count_rows(since=since) if store is not None else []
        for at, verdict, source, customer_id, credential, value, _zone, direction, _gate in peers:
            if verdict == "admit" and direction != "out" and source != "exit_button":
                counts.entries_counts._apply(_t(at), verdict, source, customer_id,
                                             credential if credential in counts.punch else None, value or "")
        counts.peer_events = len(peers)
        # the zone: this gate's and the zone's peers' events of the newest period, in time order
        counts._rebuild_zone(Path(journal_path), store)
        return counts

    def _rebuild_zone(self, journal_path: Path, store: PeerStore | None) -> None:
        """The zone: this gate's and the zone's peers' events of the newest period (since its reset), in time order."""
        peers_newest = store.newest(self.zone) if store is not None else None
        own: list[ZoneEvent] = []
        db = None
        try:
            own_newest = None
            if journal_path.exists():
                db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
                own_newest = db.execute("SELECT max(at) FROM events WHERE verdict IN (?, ?)", _COUNTED).fetchone()[0]
            newest = max(filter(None, (own_newest, peers_newest)), default=None)
            if newest is None:
                return
            start = datetime.fromtimestamp(self.zone_counts._period_of(_t(newest))[0], timezone.utc)
            if db is not None:
                own = [(_t(at), eid, verdict, source, customer, raw, self.rules.direction)
                       for at, eid, verdict, source, customer, raw in db.execute(
                           "SELECT at, id, verdict, source, customer_id, raw FROM events INDEXED BY events_at"
                           " WHERE at >= ? AND verdict IN (?, ?)", (iso(start), *_COUNTED))]
        except sqlite3.Error as exc:
            raise JournalError(f"{journal_path}: cannot read the journal to count who is inside ({exc})") from exc
        finally:
            if db is not None:
                db.close()
        rows = store.zone_rows(self.zone, start, _COUNTED) if store is not None else []
        peers = [(_t(at), eid, verdict, source, customer, value or "", direction)
                 for at, eid, verdict, source, customer, value, direction in rows]
        for event in sorted(own + peers):
            self._zone(event)
