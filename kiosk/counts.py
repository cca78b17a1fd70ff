"""The counts the access rules read: entries per customer, who is inside, occupancy, punch card uses.

Built by the gate from the journal when it starts (so they survive a restart and a kill -9: every
admit is journalled before the relay moves), then kept up to date in memory with each journalled
decision. The rules only read them (kiosk.access.CountsView); the gate is the one writer.

What counts: an `admit` at a gate with direction `in` or `none` is an entry of its customer (entry
limits, minimum interval); at `in` it also puts them inside the zone (anti-passback, capacity);
at `out`, or from the exit button, it takes one out. A staff admit or a guest at an `in` gate
counts one in.
An `occupancy_set` event (staff correcting the count) sets the number inside. At the daily reset
time the zone is empty again. Totals reach back as far as the journal does (journal.keep_days).
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
from array import array
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Iterable, cast

from .access import GUEST_SOURCE, AccessRules
from .errors import JournalError
from .journal import iso
from .sqlfiles import connect_readonly

log = logging.getLogger(__name__)

OCCUPANCY_SET = "occupancy_set"  # the journal's verdict for a staff correction of the count; raw holds the number
CLI_SOURCE = "cli"  # the source of a correction made with `kiosk occupancy set`
# How long each customer's entry times are kept, by the longest period a rule looks back over (with room
# for the day boundary and DST); at least an hour, the repeat window's memory after a restart.
_KEEP_DAYS = {"day": 2, "week": 9, "month": 33}
FORGET_AT = 1000  # customers with entry times before the first pass over them for ones not seen within keep_s


def keep_seconds(rules: AccessRules) -> float:
    days = max((_KEEP_DAYS.get(limit.period, 0) for limit in rules.limits), default=0)
    return max(3600.0, days * 86400.0, rules.min_interval_s)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class Counts:
    """The counts of one gate's zone. Read through the CountsView methods; written by `record`."""

    def __init__(self, rules: AccessRules, tz: tzinfo | None = None):
        self.rules = rules
        self.tz = tz
        self._entries: dict[str, array] = {}  # customer id -> entry times (epoch s), ascending, recent ones
        self._keep_s = keep_seconds(rules)
        self._forget_at = FORGET_AT  # the number of customers in _entries at which old ones are dropped
        self._totals: dict[str, int] | None = {} if any(lim.period == "total" for lim in rules.limits) else None
        self._inside: dict[str, float] = {}  # customer id -> when they entered
        self._occupancy = 0
        self._period = (float("-inf"), float("-inf"))  # the occupancy's day: [start, end) in epoch s
        self._punch: dict[str, array] = {}  # card key -> use times
        self.events = 0  # admits and corrections applied
        self._seq = 0  # the journal's last row this view has read (rebuild, follow)

    # -- reading (kiosk.access.CountsView) ------------------------------------------------------
    def entries(self, customer_id: str, since: datetime) -> int:
        times = self._entries.get(customer_id)
        return len(times) - bisect.bisect_left(times, _epoch(since)) if times else 0

    def total_entries(self, customer_id: str) -> int:
        return self._totals.get(customer_id, 0) if self._totals is not None else 0

    def last_entry(self, customer_id: str) -> datetime | None:
        times = self._entries.get(customer_id)
        return _at(times[-1]) if times else None

    def inside_since(self, customer_id: str, now: datetime) -> datetime | None:
        entered = self._inside.get(customer_id)
        if entered is None or _epoch(now) >= self._period[1]:
            return None
        return _at(entered)

    def occupancy(self, now: datetime) -> int:
        return 0 if _epoch(now) >= self._period[1] else self._occupancy

    def punch_uses(self, card_key: str, since: datetime | None) -> int:
        times = self._punch.get(card_key)
        if not times:
            return 0
        return len(times) if since is None else len(times) - bisect.bisect_right(times, _epoch(since))

    def inside(self, now: datetime) -> list[str]:
        """Who is inside (by customer id), for status and tests."""
        return [] if _epoch(now) >= self._period[1] else sorted(self._inside)

    def recent_admits(self, since: datetime) -> dict[str, datetime]:
        """Customers' entries at or after `since`: the repeat window's memory after a restart."""
        cut = _epoch(since)
        return {cid: _at(t[-1]) for cid, t in self._entries.items() if t and t[-1] >= cut}

    # -- writing --------------------------------------------------------------------------------
    def record(self, *, at: datetime, verdict: str, source: str, customer_id: str | None, credential: str = "",
               punch: bool = False, raw: str = "") -> None:
        """Apply one journalled decision (the gate calls this after the journal write succeeded)."""
        self._apply(_epoch(at), verdict, source, customer_id, credential if punch else None, raw)
        self.forget_old_entries(at)

    def forget_old_entries(self, now: datetime) -> None:
        """Drop the customers whose last entry is older than any rule looks back. A customer's own next admit
        trims their times, but one who does not come back stayed for good (~200 bytes each: a running gate's
        memory grew with every new face, issue 15). As in the gate's repeat memory, a pass waits until the map
        has doubled, so it costs O(1) per admit. `now` is the gate's own clock (a decision it records), never
        the time of a peer's event or a journal row: one dated in the future must not wipe everyone's entries."""
        if len(self._entries) <= self._forget_at:
            return
        horizon = _epoch(now) - self._keep_s
        self._entries = {cid: times for cid, times in self._entries.items() if times[-1] >= horizon}
        self._forget_at = max(FORGET_AT, 2 * len(self._entries))

    def _apply(self, t: float, verdict: str, source: str, customer_id: str | None, punch_key: str | None,
               raw: str) -> None:
        if verdict != "admit" and verdict != OCCUPANCY_SET:
            return  # denials change no count
        self.events += 1
        if t >= self._period[1]:
            self._new_period(t)
        if verdict == OCCUPANCY_SET:
            try:
                self._occupancy = max(0, int(raw))
            except ValueError:
                log.warning("ignored an occupancy_set event with a bad count %r", raw)
            return
        direction = self.rules.direction
        if source == "exit_button" or (direction == "out" and customer_id):
            if customer_id:
                self._inside.pop(customer_id, None)
            self._occupancy = max(0, self._occupancy - 1)
            return
        if not customer_id:
            if source in ("staff", GUEST_SOURCE) and direction == "in":  # someone let in without a card
                self._occupancy += 1
            return
        times = self._entries.get(customer_id)
        if times is None:
            times = self._entries[customer_id] = array("d")
        if times and times[-1] > t:
            bisect.insort(times, t)
        else:
            times.append(t)
        if times[0] < t - self._keep_s:
            del times[:bisect.bisect_left(times, t - self._keep_s)]
        if self._totals is not None:
            self._totals[customer_id] = self._totals.get(customer_id, 0) + 1
        if punch_key:
            self._punch.setdefault(punch_key, array("d")).append(t)
        if direction == "in":
            if customer_id not in self._inside:  # a timed-passback re-entry is not a second person
                self._occupancy += 1
            self._inside[customer_id] = t

    def _period_of(self, t: float) -> tuple[float, float]:
        """The occupancy's day holding `t`: from one daily reset to the next, in epoch seconds."""
        reset = self.rules.occupancy_reset
        local = datetime.fromtimestamp(t, timezone.utc).astimezone(self.tz)  # tz None: the system's zone
        day = (local.replace(tzinfo=None) - timedelta(hours=reset.hour, minutes=reset.minute)).date()
        start = datetime.combine(day, reset, tzinfo=local.tzinfo)
        return start.timestamp(), datetime.combine(day + timedelta(days=1), reset, tzinfo=local.tzinfo).timestamp()

    def _new_period(self, t: float) -> None:
        """The zone empties at the daily reset time."""
        self._period = self._period_of(t)
        self._occupancy = 0
        self._inside.clear()

    # -- building -------------------------------------------------------------------------------
    def _apply_rows(self, rows: Iterable[tuple], punch_cards: frozenset[str] | set[str]) -> None:
        """(at ISO, verdict, source, customer_id, credential, raw) rows in journal order, each in full."""
        parse = datetime.fromisoformat
        for at, verdict, source, customer_id, credential, raw in rows:
            try:
                t = parse(at).timestamp()
            except ValueError:
                log.warning("ignored a journal event with a bad time %r", at)
                continue
            self._apply(t, verdict, source, customer_id, credential if credential in punch_cards else None, raw)

    def _add_entries(self, rows: Iterable[tuple], punch_cards: frozenset[str] | set[str], horizon: float) -> None:
        """(customer_id, credential, at ISO) entries before the current day, in time order: all that is left
        of them is entry times, totals and punch card uses (the zone has been emptied since), so this loop
        does only that; it is most of a start-up's events."""
        parse, entries, totals = datetime.fromisoformat, self._entries, self._totals
        for customer_id, credential, at in rows:
            try:
                t = parse(at).timestamp()
            except ValueError:
                log.warning("ignored a journal event with a bad time %r", at)
                continue
            self.events += 1
            if totals is not None:
                totals[customer_id] = totals.get(customer_id, 0) + 1
            if credential in punch_cards:
                self._punch.setdefault(credential, array("d")).append(t)
            if t >= horizon:
                times = entries.get(customer_id)
                if times is None:
                    entries[customer_id] = array("d", (t,))
                else:
                    times.append(t)

    @classmethod
    def rebuild(cls, journal_path: str | Path, rules: AccessRules, tz: tzinfo | None,
                punch_cards: frozenset[str] | set[str] = frozenset(), until: datetime | None = None,
                since: datetime | None = None) -> "Counts":
        """From the journal file (read-only, its own connection): every admit and occupancy correction
        (`until`: only those at or before it, for `kiosk check --at`; `since`: only those from then on,
        when no rule looks further back, see `history_since`).

        Events before the newest event's day only leave entry times, totals and punch uses, and are read
        in a lean loop in time order (the index on `at`); that day's events are applied in full, in
        journal order."""
        counts = cls(rules, tz)
        path = Path(journal_path)
        if not path.exists():
            return counts
        try:
            db = connect_readonly(path, isolation_level=None)  # also in a folder we may not write (`check`)
            try:
                db.execute("BEGIN")  # one read transaction: the queries below see the same journal
                bounds, args = "", cast(tuple[str, ...], ())
                if until is not None:
                    bounds, args = bounds + " AND at <= ?", (*args, iso(until))
                if since is not None:
                    bounds, args = bounds + " AND at >= ?", (*args, iso(since))
                counts._seq = db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
                newest = db.execute("SELECT max(at) FROM events WHERE 1" + bounds, args).fetchone()[0]
                if newest is None:
                    return counts
                newest_t = datetime.fromisoformat(newest).timestamp()
                day_start = iso(datetime.fromtimestamp(counts._period_of(newest_t)[0], timezone.utc))
                if rules.direction != "out":  # at an out gate every earlier admit was an exit: nothing left
                    counts._add_entries(db.execute(
                        "SELECT customer_id, credential, at FROM events INDEXED BY events_at WHERE verdict = 'admit'"
                        " AND customer_id IS NOT NULL AND source NOT IN ('exit_button', 'staff', ?) AND at < ?"
                        + bounds + " ORDER BY at", (GUEST_SOURCE, day_start, *args)), punch_cards,
                        newest_t - counts._keep_s)
                counts._apply_rows(db.execute(
                    "SELECT at, verdict, source, customer_id, credential, raw FROM events INDEXED BY events_at"
                    " WHERE verdict IN ('admit', ?) AND at >= ?" + bounds + " ORDER BY seq",
                    (OCCUPANCY_SET, day_start, *args)), punch_cards)
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot read the journal to count entries ({exc})") from exc
        return counts

    def follow(self, journal_path: str | Path) -> int:
        """Apply the count corrections another process journalled since we last read (`kiosk occupancy set`
        from a shell while the kiosk runs); our own events are counted as they are made. Returns how many."""
        try:
            db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT seq, at, raw FROM events WHERE seq > ? AND verdict = ? AND source = ?"
                                  " ORDER BY seq", (self._seq, OCCUPANCY_SET, CLI_SOURCE)).fetchall()
                self._seq = db.execute("SELECT max(seq) FROM events").fetchone()[0] or self._seq
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("%s: cannot look for occupancy corrections (%s)", journal_path, exc)
            return 0
        for _seq, at, raw in rows:
            self._apply(datetime.fromisoformat(at).timestamp(), OCCUPANCY_SET, CLI_SOURCE, None, None, raw)
        return len(rows)


def history_since(rules: AccessRules, punch: frozenset[str] | set[str], now: datetime) -> datetime | None:
    """How far back a start must read the journal: everything for a `/total` limit or a punch card (their
    uses may be older than any period), else just as far as the longest rule looks back (`keep_seconds`):
    with no rule on, the last hour (the repeat window's memory) instead of a million events."""
    if punch or any(limit.period == "total" for limit in rules.limits):
        return None
    return now - timedelta(seconds=keep_seconds(rules))


def punch_cards(snapshot_path: str | Path) -> frozenset[str]:
    """The keys of the snapshot's PUNCH cards: whose admits in the journal are punches."""
    path = Path(snapshot_path)
    if not path.exists():
        return frozenset()
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            # the snapshot's partial index `punch_cards` makes this a few pages, not a million rows
            return frozenset(row[0] for row in db.execute("SELECT key FROM cards WHERE card_type = 'PUNCH'"))
        finally:
            db.close()
    except sqlite3.Error as exc:  # an unreadable snapshot is reported where it is read, once
        log.debug("%s: cannot list punch cards (%s)", path, exc)
        return frozenset()
