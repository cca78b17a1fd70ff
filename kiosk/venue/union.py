"""The access rules' counts over the union of this gate's journal and its peers' events.

Two parts, because they merge differently:
- entries, totals and punch uses (per customer, across the whole venue): adding an event commutes,
  so every admit at an `in` or `none` gate anywhere counts once, whenever it arrives;
- who is inside and the occupancy of this gate's zone depend on order (in, then out), so the zone's
  events of the current period (since the daily reset) are kept in time order, each with what it
  changed; a peer's event that arrives late is put in its place by taking back the events after it
  and replaying those (a late event costs the events after it, not the day). Two gates holding the
  same events therefore hold the same counts, whatever order the events came in (a set union:
  duplicates are dropped by id upstream).

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
# What one zone event changed, to take it back: (period, occupancy, customer id, when they entered or None if
# they were not inside) before it; None when it began a period (that empties the zone: nothing before it counts).
Undo = tuple[tuple[float, float], int, str | None, float | None] | None


class _NoEntries(dict):
    """The zone's Counts keeps no entry times (entries_counts does; the zone is read for who is inside and
    occupancy only): what Counts._apply stores here is forgotten, so replaying an event twice adds nothing."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


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
        self.zone_counts._entries = _NoEntries()
        self.zone_counts._totals = None
        self._zone_log: list[ZoneEvent] = []  # the current period's zone events, in order
        self._undo: list[Undo] = []  # what each of them changed (same index)
        self._late: list[ZoneEvent] = []  # late events not yet in the zone's order: sorted in on the next read
        self.replayed = 0  # zone events taken back and applied again to put late ones in place
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

    def period_start(self, moment: datetime) -> datetime:
        """The daily reset at or before `moment`: where the zone's count starts from empty."""
        return datetime.fromtimestamp(self.zone_counts._period_of(moment.timestamp())[0], timezone.utc)

    # -- this gate's decisions (the gate's thread, after the journal write) ------------------------
    def record(self, *, at: datetime, verdict: str, source: str, customer_id: str | None, credential: str = "",
               punch: bool = False, raw: str = "", event_id: str = "") -> None:
        with self._lock:
            self._add(at.timestamp(), event_id, verdict, source, customer_id, credential if punch else None, raw,
                      self.rules.direction, here=True)
            self.entries_counts.forget_old_entries(at)  # by this gate's clock, not the peers' (Counts.record)

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
            self._undo.clear()
        self._zone_log.append(event)
        self._undo.append(self._step(event))

    def _settled(self) -> Counts:
        """The zone's counts with every late event in its place: the events after the earliest late one are
        taken back (newest first), then those and the late ones applied in time order. One pass however many
        came (a catch-up brings thousands; the rules read the zone once per scan)."""
        if self._late:
            self._late.sort()
            at = bisect.bisect_left(self._zone_log, self._late[0])
            for i in range(len(self._zone_log) - 1, at - 1, -1):
                self._take_back(self._undo[i])
            tail = self._zone_log[at:]
            del self._zone_log[at:], self._undo[at:]
            self.replayed += len(tail)
            tail.extend(self._late)
            self._late.clear()
            tail.sort()  # two sorted runs: linear
            for event in tail:
                self._zone_log.append(event)
                self._undo.append(self._step(event))
            start = self.zone_counts._period[0]
            if self._zone_log[0][0] < start:  # keep only the current period's events
                cut = bisect.bisect_left(self._zone_log, (start,))
                del self._zone_log[:cut], self._undo[:cut]
        return self.zone_counts

    def _step(self, event: ZoneEvent) -> Undo:
        """Apply one zone event (Counts' own rules, in the direction of the gate that saw it); what it changed."""
        t, _id, verdict, source, customer_id, raw, direction = event
        zone = self.zone_counts
        if t >= zone._period[1]:
            undo = None
        else:
            undo = (zone._period, zone._occupancy, customer_id,
                    None if customer_id is None else zone._inside.get(customer_id))
        zone.rules = self._by_dir[direction]
        zone._apply(t, verdict, source, customer_id, None, raw)
        return undo

    def _take_back(self, undo: Undo) -> None:
        zone = self.zone_counts
        if undo is None:  # it began the period: as before any event (its first event empties the zone again)
            zone._period = (float("-inf"), float("-inf"))
            zone._occupancy = 0
            zone._inside.clear()
            return
        zone._period, zone._occupancy, customer_id, entered = undo
        if customer_id is not None:
            if entered is None:
                zone._inside.pop(customer_id, None)
            else:
                zone._inside[customer_id] = entered

    # -- building ------------------------------------------------------------------------------------
    @classmethod
    def rebuild(cls, journal_path: str | Path, store: PeerStore | None, rules: AccessRules, tz: tzinfo | None,
                punch: frozenset[str] | set[str] = frozenset(), since: datetime | None = None,
                until: datetime | None = None) -> "VenueCounts":
        """From this gate's journal and the peers' store: entries over `since` (kiosk.counts.history_since),
        the zone replayed over the current period; `until`: only events at or before it (`kiosk check --at`:
        the counts the running gate held then). No store (a read-only look before any peer was heard): the
        journal alone."""
        counts = cls(rules, tz, punch)
        own = rules.direction
        # this gate's entries in Counts' own lean rebuild (an `out` gate's admits are exits: no entries)
        counts.entries_counts = Counts.rebuild(journal_path, counts._by_dir["out" if own == "out" else "none"], tz,
                                               punch, since=since, until=until)
        counts.entries_counts.rules = counts._by_dir["none"]
        counts._seq = counts.entries_counts._seq
        peers = store.count_rows(since=since, until=until) if store is not None else []
        for at, verdict, source, customer_id, credential, value, _zone, direction, _gate in peers:
            if verdict == "admit" and direction != "out" and source != "exit_button":
                counts.entries_counts._apply(_t(at), verdict, source, customer_id,
                                             credential if credential in counts.punch else None, value or "")
        counts.peer_events = len(peers)
        # the zone: this gate's and the zone's peers' events of the newest period, in time order
        counts._rebuild_zone(Path(journal_path), store, until)
        return counts

    def _rebuild_zone(self, journal_path: Path, store: PeerStore | None, until: datetime | None) -> None:
        """The zone: this gate's and the zone's peers' events of the newest period (since its reset), in time order."""
        peers_newest = store.newest(self.zone, until) if store is not None else None
        bound, bounds = ("", ()) if until is None else (" AND at <= ?", (iso(until),))
        own: list[ZoneEvent] = []
        db = None
        try:
            own_newest = None
            if journal_path.exists():
                db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
                own_newest = db.execute("SELECT max(at) FROM events WHERE verdict IN (?, ?)" + bound,
                                        (*_COUNTED, *bounds)).fetchone()[0]
            newest = max(filter(None, (own_newest, peers_newest)), default=None)
            if newest is None:
                return
            start = datetime.fromtimestamp(self.zone_counts._period_of(_t(newest))[0], timezone.utc)
            if db is not None:
                own = [(_t(at), eid, verdict, source, customer, raw, self.rules.direction)
                       for at, eid, verdict, source, customer, raw in db.execute(
                           "SELECT at, id, verdict, source, customer_id, raw FROM events INDEXED BY events_at"
                           " WHERE at >= ? AND verdict IN (?, ?)" + bound, (iso(start), *_COUNTED, *bounds))]
        except sqlite3.Error as exc:
            raise JournalError(f"{journal_path}: cannot read the journal to count who is inside ({exc})") from exc
        finally:
            if db is not None:
                db.close()
        rows = store.zone_rows(self.zone, start, _COUNTED, until) if store is not None else []
        peers = [(_t(at), eid, verdict, source, customer, value or "", direction)
                 for at, eid, verdict, source, customer, value, direction in rows]
        for event in sorted(own + peers):
            self._zone(event)
