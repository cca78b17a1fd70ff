"""Access rules beyond "who may enter": opening hours, entry limits, punch cards, capacity, anti-passback.

Pure: `check` reads the rules, the customer, the card, a read-only counts view (kiosk/counts.py)
and the time it is given; it never reads a clock or a file. `kiosk.rules.decide` calls it once the
customer is known, active, valid, in a verified group and not a repeat.

Order of checks (the first that fails names the verdict):

1. an `out` gate admits (an exit) whoever got this far: known, active, in a verified group, not a
   repeat; nothing below applies;
2. opening hours             -> `outside_hours`  (nothing counts while closed);
3. anti-passback             -> `already_inside` (a person inside is not "over a limit");
4. minimum time between entries -> `limit_reached`;
5. entry limits per day/week/month/total -> `limit_reached`;
6. punch card balance        -> `limit_reached`;
7. zone capacity             -> `full`           (last: the only "try again in a minute").

A customer in several groups gets the most generous of them: open if any of their groups is
open, within limits if any of their groups is. Groups without hours (staff) are always open.

A member whose group allows guests is admitted with `guests` set; each "+1 guest" after it
(`guest_decision`, within GUEST_WINDOW) admits one guest while the member has guests left and
the zone has room.

Rules are written as short strings in the config's `[rules]` section (see config/kiosk.toml):
  hours  = ["members: mon-fri 07:00-23:00", "members: sat,sun 10:00-02:00", "members: 2026-12-31 10:00-16:00"]
  limits = ["members: 1/day", "members: 3/week"]
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from .credential import card_key
from .model import Card, Decision, Group, Verdict

if TYPE_CHECKING:
    from .rules import Policy

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERIODS = ("day", "week", "month", "total")
DIRECTIONS = ("in", "out", "none")
_MINUTES_PER_DAY = 1440
_SEARCH_DAYS = 400  # how far ahead "when may they enter next" looks (dated openings up to a year out)


class CountsView(Protocol):
    """What the rules read of the counts (kiosk.counts.Counts implements it). Times are aware datetimes."""

    def entries(self, customer_id: str, since: datetime) -> int: ...

    def total_entries(self, customer_id: str) -> int: ...

    def last_entry(self, customer_id: str) -> datetime | None: ...

    def inside_since(self, customer_id: str, now: datetime) -> datetime | None: ...

    def occupancy(self, now: datetime) -> int: ...

    def punch_uses(self, card_key: str, since: datetime | None) -> int: ...


# -- the rules --------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupHours:
    """One group's opening hours: ranges in minutes from local midnight; an end past 1440 runs into the next day."""

    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7  # Monday first
    dated: Mapping[date, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # special days override


@dataclass(frozen=True)
class Limit:
    group: str
    count: int
    period: str  # one of PERIODS


@dataclass(frozen=True)
class AccessRules:
    hours: Mapping[str, GroupHours] = field(default_factory=dict)
    closed: frozenset[date] = frozenset()
    limits: tuple[Limit, ...] = ()
    min_interval_s: float = 0.0
    day_starts: time = time(0, 0)  # a club's day may end at 04:00
    zone: str = "main"
    capacity: int = 0  # 0: no capacity limit
    occupancy_reset: time = time(0, 0)
    direction: str = "in"
    passback: bool = False
    passback_min: float = 0.0  # 0: until they exit; else only this many minutes after entering
    guests: Mapping[str, int] = field(default_factory=dict)  # group -> guests a member may bring per visit
    guest_key: str = ""  # the text a scanner sends for "+1 guest" ("" = none)

    @functools.cached_property  # asked on every scan; the rules never change (frozen)
    def active(self) -> bool:
        return bool(self.hours or self.limits or self.min_interval_s or self.capacity or self.passback
                    or self.guests or self.direction == "out")

    @classmethod
    def from_config(cls, section: Any) -> "AccessRules":
        """From the `[rules]` section; its values were checked by kiosk.config (same parsers)."""
        reset = section.occupancy_reset or section.day_starts
        return cls(hours=parse_hours(section.hours), closed=frozenset(parse_dates(section.closed)),
                   limits=parse_limits(section.limits), min_interval_s=float(section.min_interval_min) * 60,
                   day_starts=parse_clock(section.day_starts), zone=section.zone, capacity=int(section.capacity),
                   occupancy_reset=parse_clock(reset), direction=section.direction, passback=section.passback,
                   passback_min=float(section.passback_min), guests=parse_guests(section.guests),
                   guest_key=section.guest_key.strip())


@dataclass(frozen=True)
class Outcome:
    """A rule's answer: a denial, or (verdict ADMIT) the words for an admit the rules shaped."""

    verdict: Verdict
    reason: str
    count: int | None = None
    limit: int | None = None
    next_at: datetime | None = None
    guests: int = 0


# -- checks -----------------------------------------------------------------------------------

def check(rules: AccessRules, *, customer_id: str, card: Card | None, group_ids: tuple[str, ...],
          groups: Mapping[str, Group], counts: CountsView, now: datetime, tz: tzinfo | None) -> Outcome | None:
    """The first rule that fails, in the documented order; an ADMIT outcome to reword an admit; else None."""
    if rules.direction == "out":
        if rules.passback and counts.inside_since(customer_id, now) is None:
            return Outcome(Verdict.ADMIT, "Goodbye (was not recorded as inside)")
        return Outcome(Verdict.ADMIT, "Goodbye")
    names = {g: (groups[g].name if g in groups else g) for g in group_ids}
    local = now.astimezone(tz)

    ruled = [g for g in group_ids if g in rules.hours]
    if ruled and len(ruled) == len(group_ids):  # every group has hours: open only if one of them is
        if not any(is_open(rules.hours[g], rules.closed, local) for g in ruled):
            nexts = [(next_opening(rules.hours[g], rules.closed, local), g) for g in ruled]
            found = sorted((t, g) for t, g in nexts if t is not None)
            if found:
                when, g = found[0]
                return Outcome(Verdict.OUTSIDE_HOURS, f"{names[g]}: from {when_text(when, local)}", next_at=when)
            return Outcome(Verdict.OUTSIDE_HOURS, f"{names[ruled[0]]}: no opening hours ahead")

    if rules.direction == "in" and rules.passback:
        since = counts.inside_since(customer_id, now)
        if since is not None and (not rules.passback_min or now - since < timedelta(minutes=rules.passback_min)):
            return Outcome(Verdict.ALREADY_INSIDE,
                           f"Already inside since {since.astimezone(tz):%H:%M}; please exit first", next_at=(
                               since + timedelta(minutes=rules.passback_min) if rules.passback_min else None))

    if rules.min_interval_s:
        last = counts.last_entry(customer_id)
        gap = timedelta(seconds=rules.min_interval_s)
        if last is not None and timedelta(0) <= now - last < gap:
            again = last + gap
            return Outcome(Verdict.LIMIT_REACHED, f"One entry per {_duration(gap)}; again from "
                           f"{when_text(again.astimezone(tz), local)}", next_at=again)

    if rules.limits and group_ids:
        over = [_over_limit(rules, g, customer_id, counts, local) for g in group_ids]
        if all(o is not None for o in over):
            limit, used, resets = over[0]  # type: ignore[misc]
            per = "in total" if limit.period == "total" else f"per {limit.period}"
            until = f"; again from {when_text(resets, local)}" if resets else ""
            return Outcome(Verdict.LIMIT_REACHED, f"{names[limit.group]}: {limit.count} "
                           f"entr{'y' if limit.count == 1 else 'ies'} {per}, {used} used{until}",
                           count=used, limit=limit.count, next_at=resets)

    punch_left = None
    if card is not None and card.card_type == "PUNCH" and card.entries is not None:
        punch_left = card.entries - counts.punch_uses(card_key(card.code), card.entries_at)
        if punch_left <= 0:
            return Outcome(Verdict.LIMIT_REACHED, "Punch card used up", count=0)

    if rules.capacity and rules.direction == "in":
        inside = counts.occupancy(now)
        if inside >= rules.capacity:
            return Outcome(Verdict.FULL, f"Full: {inside} of {rules.capacity} inside; please wait",
                           count=inside, limit=rules.capacity)

    guests = max((rules.guests.get(g, 0) for g in group_ids), default=0)
    if punch_left is not None:
        left = punch_left - 1  # this entry uses one
        return Outcome(Verdict.ADMIT, f"Welcome ({left} entr{'y' if left == 1 else 'ies'} left on the card)",
                       count=left, guests=guests)
    if guests:
        return Outcome(Verdict.ADMIT, f"Welcome (may bring {guests} guest{'' if guests == 1 else 's'})", guests=guests)
    return None


GUEST_SOURCE = "guest"  # the journal's source of a guest's admit; raw is "guest:<member's id>"
GUEST_WINDOW = timedelta(minutes=2)  # how long after a member's admit "+1 guest" still counts for them


def guest_decision(host: Decision | None, used: int, rules: AccessRules, counts: CountsView, now: datetime,
                   cursor: str = "") -> Decision:
    """"+1 guest" for the member admitted last: admit while they have guests left and the zone has room."""
    if host is None or not host.guests or not timedelta(0) <= now - host.at <= GUEST_WINDOW:
        return Decision(Verdict.NOT_RECOGNISED, at=now, raw="guest", cursor=cursor,
                        reason="+1 guest: scan the member's card first")
    base: dict[str, Any] = {"at": now, "raw": f"guest:{host.customer_id}", "credential": "", "cursor": cursor,
            "name": f"Guest of {host.name}", "limit": host.guests}
    if used >= host.guests:
        return Decision(Verdict.LIMIT_REACHED, count=used, reason=f"{host.name} may bring {host.guests} "
                        f"guest{'' if host.guests == 1 else 's'}; all came in", **base)
    if rules.capacity and rules.direction == "in" and counts.occupancy(now) >= rules.capacity:
        inside = counts.occupancy(now)
        return Decision(Verdict.FULL, count=inside, reason=f"Full: {inside} of {rules.capacity} inside; please wait",
                        **{**base, "limit": rules.capacity})
    return Decision(Verdict.ADMIT, count=used + 1, reason=f"Guest {used + 1} of {host.guests} of {host.name}",
                    **base)


def _over_limit(rules: AccessRules, group: str, customer_id: str, counts: CountsView,
                local: datetime) -> tuple[Limit, int, datetime | None] | None:
    """The first of a group's limits this customer has reached, or None (also when the group has none)."""
    for limit in (lim for lim in rules.limits if lim.group == group):
        if limit.period == "total":
            used, resets = counts.total_entries(customer_id), None
        else:
            start, resets = period_bounds(limit.period, local, rules.day_starts)
            used = counts.entries(customer_id, start)
        if used >= limit.count:
            return limit, used, resets
    return None


def period_bounds(period: str, local: datetime, day_starts: time) -> tuple[datetime, datetime]:
    """Start and end of the day/ISO week/calendar month holding `local`, days starting at `day_starts`."""
    tz = local.tzinfo
    offset = timedelta(hours=day_starts.hour, minutes=day_starts.minute)
    day = (local.replace(tzinfo=None) - offset).date()
    if period == "day":
        first, after = day, day + timedelta(days=1)
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    return (datetime.combine(first, day_starts, tzinfo=tz), datetime.combine(after, day_starts, tzinfo=tz))


def ranges_on(hours: GroupHours, closed: frozenset[date], day: date) -> tuple[tuple[int, int], ...]:
    if day in hours.dated:
        return hours.dated[day]
    if day in closed:
        return ()
    return hours.weekly[day.weekday()]


def is_open(hours: GroupHours, closed: frozenset[date], local: datetime) -> bool:
    minute = local.hour * 60 + local.minute + local.second / 60
    today = local.date()
    if any(start <= minute < end for start, end in ranges_on(hours, closed, today)):
        return True
    # yesterday's ranges that run past midnight
    return any(end > _MINUTES_PER_DAY and minute + _MINUTES_PER_DAY < end
               for _start, end in ranges_on(hours, closed, today - timedelta(days=1)))


def next_opening(hours: GroupHours, closed: frozenset[date], local: datetime) -> datetime | None:
    minute = local.hour * 60 + local.minute + local.second / 60
    for ahead in range(_SEARCH_DAYS):
        day = local.date() + timedelta(days=ahead)
        starts = sorted(start for start, _end in ranges_on(hours, closed, day) if ahead or start > minute)
        if starts:
            return datetime.combine(day, time(starts[0] // 60, starts[0] % 60), tzinfo=local.tzinfo)
    return None


def when_text(moment: datetime, local_now: datetime) -> str:
    """"07:00" today, "Mon 07:00" within the week, "25 Dec 07:00" further out (English, for the journal)."""
    moment = moment.astimezone(local_now.tzinfo)
    days = (moment.date() - local_now.date()).days
    if days == 0:
        return f"{moment:%H:%M}"
    if 0 < days < 7:
        return f"{moment:%a %H:%M}"
    return f"{moment.day} {moment:%b %H:%M}"


def _duration(gap: timedelta) -> str:
    minutes = round(gap.total_seconds() / 60)
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


# -- parsing (used by kiosk.config to check the file, and by from_config) ----------------------

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_RANGE = re.compile(r"(\d{1,2}:\d{2})-(\d{1,2}:\d{2})")


def parse_clock(text: str) -> time:
    m = _CLOCK.fullmatch(text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"{text!r} is not a time of day such as \"04:00\"")
    return time(int(m.group(1)), int(m.group(2)))


def _minutes(text: str, *, end: bool) -> int:
    if end and text == "24:00":
        return _MINUTES_PER_DAY
    t = parse_clock(text)
    return t.hour * 60 + t.minute


def parse_dates(items: list[str]) -> list[date]:
    out = []
    for item in items:
        try:
            out.append(date.fromisoformat(item.strip()))
        except ValueError:
            raise ValueError(f"{item!r} is not a date such as \"2026-12-25\"") from None
    return out


def _group_and_rest(item: str, example: str) -> tuple[str, str]:
    group, sep, rest = item.partition(":")
    if not sep or not group.strip() or len(group.split()) != 1 or not rest.strip():
        raise ValueError(f"{item!r} must look like {example!r}")
    return group.strip(), rest.strip()


def _days(spec: str) -> list[int]:
    if spec == "daily":
        return list(range(7))
    days: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{spec!r}: days are daily, mon..sun, ranges like mon-fri and lists like sat,sun")
        a, b = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        days.extend((a + i) % 7 for i in range((b - a) % 7 + 1))  # fri-mon wraps over the weekend
    return days


def parse_hours(items: list[str]) -> dict[str, GroupHours]:
    """["members: mon-fri 07:00-23:00 18:00-02:00", "members: 2026-12-24 closed", ...] by group."""
    weekly: dict[str, list[list[tuple[int, int]]]] = {}
    dated: dict[str, dict[date, list[tuple[int, int]]]] = {}
    example = "members: mon-fri 07:00-23:00"
    for item in items:
        group, rest = _group_and_rest(item, example)
        when, *ranges = rest.split()
        if not ranges:
            raise ValueError(f"{item!r} names no times; write e.g. {example!r} or \"members: 2026-12-24 closed\"")
        spans: list[tuple[int, int]] = []
        if ranges != ["closed"]:
            for r in ranges:
                m = _RANGE.fullmatch(r)
                if not m:
                    raise ValueError(f"{item!r}: {r!r} is not a range such as 07:00-23:00 (22:00-04:00 runs past "
                                     "midnight)")
                start, end = _minutes(m.group(1), end=False), _minutes(m.group(2), end=True)
                if end == start:
                    raise ValueError(f"{item!r}: {r!r} is empty; a whole day is 00:00-24:00")
                spans.append((start, end if end > start else end + _MINUTES_PER_DAY))
        weekly.setdefault(group, [[] for _ in range(7)])
        dated.setdefault(group, {})
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", when):
            day = parse_dates([when])[0]
            dated[group].setdefault(day, []).extend(spans)
        else:
            for d in _days(when):
                weekly[group][d].extend(spans)
    return {g: GroupHours(tuple(tuple(sorted(day)) for day in weekly[g]),
                          {d: tuple(sorted(s)) for d, s in dated[g].items()}) for g in weekly}


def parse_guests(items: list[str]) -> dict[str, int]:
    """["members: 2"]: how many guests a member of the group may bring per visit."""
    out = {}
    for item in items:
        group, rest = _group_and_rest(item, "members: 2")
        if not rest.isdigit() or not 0 < int(rest) <= 20:
            raise ValueError(f"{item!r} must look like \"members: 2\": a number of guests from 1 to 20")
        out[group] = int(rest)
    return out


def parse_limits(items: list[str]) -> tuple[Limit, ...]:
    """["members: 1/day", "members: 3/week", "trial: 5/total"]."""
    out = []
    for item in items:
        group, rest = _group_and_rest(item, "members: 1/day")
        m = re.fullmatch(r"(\d+)\s*/\s*(\w+)", rest)
        if not m or m.group(2) not in PERIODS or int(m.group(1)) < 1:
            raise ValueError(f"{item!r} must look like \"members: 2/day\": a count of at least 1 per "
                             + ", ".join(PERIODS))
        out.append(Limit(group, int(m.group(1)), m.group(2)))
    return tuple(out)


def policy_of(config: Any) -> "Policy":
    """The gate's Policy with its access rules, from the whole config (the App and `kiosk replay` use it)."""
    import dataclasses

    from .pass_keys import PassSettings
    from .rules import Policy  # here, not at the top: kiosk.rules imports this module

    policy = Policy.from_config(config.gate, PassSettings.from_config(config.passes, config.source))
    return dataclasses.replace(policy, access=AccessRules.from_config(config.rules))
