"""Access rules (kiosk/access.py) through kiosk.rules.decide, with the counts given (kiosk/counts.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.access import AccessRules, parse_hours, parse_limits
from kiosk.config import validate
from kiosk.counts import Counts
from kiosk.credential import parse
from kiosk.errors import ConfigError
from kiosk.model import Decision, Verdict
from kiosk.rules import Policy, decide
from kiosk.snapshot import SnapshotStore, load_records

AMS = ZoneInfo("Europe/Amsterdam")
PUNCH = "PUNCH-0001"
SYNCED = datetime(2026, 11, 1, tzinfo=timezone.utc)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=AMS)


RECORDS = [
    {"type": "group", "id": "members", "name": "Members"},
    {"type": "group", "id": "patrons", "name": "Patrons"},
    {"type": "group", "id": "staff", "name": "Staff"},
    {"type": "customer", "id": "I-1", "first_name": "Mia", "last_name": "Member", "groups": ["members"]},
    {"type": "customer", "id": "I-2", "first_name": "Pat", "last_name": "Patron", "groups": ["members", "patrons"]},
    {"type": "customer", "id": "I-3", "first_name": "Sam", "last_name": "Staff", "groups": ["members", "staff"]},
    {"type": "customer", "id": "I-4", "first_name": "Otto", "last_name": "Other", "groups": ["members"]},
    {"type": "card", "code": PUNCH, "customer_id": "I-4", "card_type": "PUNCH", "entries": 2,
     "entries_at": "2026-11-20T12:00:00Z"},
]


@pytest.fixture
def store(tmp_path: Path):
    load_records(tmp_path / "snap.sqlite", RECORDS, {"cursor": "c-1", "synced_at": SYNCED.isoformat()})
    s = SnapshotStore(tmp_path / "snap.sqlite")
    yield s
    s.close()


def policy(**rules) -> Policy:
    return Policy(groups=("members", "patrons", "staff"), tz=AMS, max_snapshot_age_h=24 * 365,
                  access=AccessRules(**rules))


def counted(rules: AccessRules, *events: tuple) -> Counts:
    """Counts after (time, customer_id[, source[, verdict]]) admits, as the gate records them."""
    counts = Counts(rules, AMS)
    for at, who, *rest in events:
        source = rest[0] if rest else "camera"
        verdict = rest[1] if len(rest) > 1 else "admit"
        counts.record(at=at, verdict=verdict, source=source, customer_id=who, credential=PUNCH if who == "I-4" else who,
                      punch=source == "punch", raw=rest[2] if len(rest) > 2 else "")
    return counts


def check(text: str, store, pol: Policy, at: datetime, counts: Counts | None = None) -> Decision:
    return decide(parse(text), store, pol, at, None, counts)


# -- the order of checks ---------------------------------------------------------------------------

def test_first_failing_rule_names_the_verdict_in_the_documented_order(store):
    """Every rule fails at once; taking them away one by one walks down the documented order."""
    at = local(2026, 11, 23, 6, 0)  # a Monday, before opening
    rules = dict(hours=parse_hours(["members: mon-fri 07:00-23:00"]), direction="in", passback=True,
                 min_interval_s=3600, limits=parse_limits(["members: 1/day"]), capacity=1)
    # I-4 used both entries of its punch card, yesterday and 30 minutes ago, and is still inside.
    events = [(at - timedelta(days=1), "I-4", "punch"), (at - timedelta(minutes=30), "I-4", "punch")]
    expected = [("hours", Verdict.OUTSIDE_HOURS), ("passback", Verdict.ALREADY_INSIDE),
                ("min_interval_s", Verdict.LIMIT_REACHED), ("limits", Verdict.LIMIT_REACHED),
                ("punch", Verdict.LIMIT_REACHED), ("capacity", Verdict.FULL), (None, Verdict.ADMIT)]
    reasons = []
    text = PUNCH
    for remove, verdict in expected:
        pol = policy(**rules)
        d = check(text, store, pol, at, counted(pol.access, *events))
        assert d.verdict is verdict, (remove, d.reason)
        reasons.append(d.reason)
        if remove == "punch":
            text = "I-4"  # by customer id, not the punch card: no balance applies
        elif remove:
            rules.pop(remove)
    assert reasons[0] == "Members: from 07:00"
    assert reasons[1].startswith("Already inside since 05:30")
    assert reasons[2].startswith("One entry per 1 h; again from 06:30")
    assert reasons[3] == "Members: 1 entry per day, 1 used; again from Tue 00:00"
    assert reasons[4] == "Punch card used up"
    assert reasons[5] == "Full: 1 of 1 inside; please wait"


def test_no_rules_no_counts_consulted(store):
    class Exploding:
        def __getattr__(self, name):
            raise AssertionError(f"counts.{name} read with no rules on")

    d = check("I-1", store, policy(), local(2026, 11, 23, 3, 0), Exploding())  # type: ignore[arg-type]
    assert d.verdict is Verdict.ADMIT and d.reason == "Welcome"


def test_repeat_comes_before_the_rules(store):
    pol = policy(limits=parse_limits(["members: 1/day"]))
    at = local(2026, 11, 23, 12, 0)
    d = decide(parse("I-1"), store, pol, at, {"I-1": at - timedelta(seconds=2)},
               counted(pol.access, (at - timedelta(seconds=2), "I-1")))
    assert d.verdict is Verdict.REPEAT


# -- opening hours ---------------------------------------------------------------------------------

HOURS = ["members: mon-fri 07:00-23:00", "members: fri,sat 22:00-04:00", "members: sun 10:00-12:00",
         "members: 2026-12-24 10:00-14:00", "members: 2026-12-31 closed", "members: 2027-01-01 closed",
         "members: 2027-01-04 closed", "members: 2027-01-05 closed", "members: 2027-01-06 closed",
         "members: 2027-01-07 closed", "members: 2027-01-08 closed", "members: 2027-01-09 closed",
         "members: 2027-01-10 closed"]


@pytest.mark.parametrize("moment, verdict, reason", [
    (local(2026, 11, 23, 7, 0), Verdict.ADMIT, "Welcome"),  # Monday opening minute
    (local(2026, 11, 23, 6, 59), Verdict.OUTSIDE_HOURS, "Members: from 07:00"),
    (local(2026, 11, 23, 23, 0), Verdict.OUTSIDE_HOURS, "Members: from Tue 07:00"),
    (local(2026, 11, 28, 2, 30), Verdict.ADMIT, "Welcome"),  # Saturday night, Friday's range past midnight
    (local(2026, 11, 28, 4, 0), Verdict.OUTSIDE_HOURS, "Members: from 22:00"),
    (local(2026, 11, 29, 3, 59), Verdict.ADMIT, "Welcome"),  # Sunday morning, Saturday's range
    (local(2026, 11, 29, 12, 0), Verdict.OUTSIDE_HOURS, "Members: from Mon 07:00"),
    (local(2026, 12, 24, 15, 0), Verdict.OUTSIDE_HOURS, "Members: from Fri 07:00"),  # special day: 10-14 only
    (local(2026, 12, 24, 11, 0), Verdict.ADMIT, "Welcome"),
    (local(2026, 12, 31, 12, 0), Verdict.OUTSIDE_HOURS, "Members: from Sat 22:00"),  # closed override (1 Jan too)
    (local(2027, 1, 3, 12, 0), Verdict.OUTSIDE_HOURS, "Members: from 11 Jan 07:00"),  # a week closed
])
def test_opening_hours(store, moment, verdict, reason):
    d = check("I-1", store, policy(hours=parse_hours(HOURS)), moment.astimezone(timezone.utc))
    assert (d.verdict, d.reason) == (verdict, reason)
    if verdict is Verdict.OUTSIDE_HOURS:
        assert d.next_at is not None and d.next_at > moment


def test_closed_dates_and_most_generous_group(store):
    rules = dict(hours=parse_hours(["members: daily 00:00-24:00", "patrons: 2026-12-25 12:00-13:00"]),
                 closed=frozenset({datetime(2026, 12, 25).date()}))
    at = local(2026, 12, 25, 12, 30)
    assert check("I-1", store, policy(**rules), at).verdict is Verdict.OUTSIDE_HOURS  # members only: closed
    assert check("I-2", store, policy(**rules), at).verdict is Verdict.ADMIT  # patrons' special day opens
    assert check("I-3", store, policy(**rules), at).verdict is Verdict.ADMIT  # staff have no hours: always open
    assert check("I-1", store, policy(**rules), local(2026, 12, 26, 0, 0)).verdict is Verdict.ADMIT


def test_hours_across_the_dst_change(store):
    """On the night the clocks go back the wall clock is what counts."""
    pol = policy(hours=parse_hours(["members: sat 22:00-03:00"]))
    assert check("I-1", store, pol, datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)).verdict is Verdict.ADMIT
    assert check("I-1", store, pol, datetime(2026, 10, 25, 2, 30, tzinfo=timezone.utc)).verdict is \
        Verdict.OUTSIDE_HOURS  # 03:30 CET


# -- entry limits ----------------------------------------------------------------------------------

def test_daily_limit_with_a_04_00_day_boundary(store):
    pol = policy(limits=parse_limits(["members: 2/day"]), day_starts=time(4, 0))
    counts = counted(pol.access, (local(2026, 11, 27, 23, 0), "I-1"), (local(2026, 11, 28, 2, 0), "I-1"))
    d = check("I-1", store, pol, local(2026, 11, 28, 3, 30), counts)
    assert d.verdict is Verdict.LIMIT_REACHED
    assert d.reason == "Members: 2 entries per day, 2 used; again from 04:00"
    assert (d.count, d.limit, d.next_at) == (2, 2, local(2026, 11, 28, 4, 0))
    assert check("I-1", store, pol, local(2026, 11, 28, 4, 0), counts).verdict is Verdict.ADMIT


def test_weekly_monthly_and_total_limits(store):
    pol = policy(limits=parse_limits(["members: 3/week", "members: 5/month", "members: 7/total"]))
    # Mon..Wed of ISO week 48 (23-25 Nov)
    week = [(local(2026, 11, d, 12), "I-1") for d in (23, 24, 25)]
    d = check("I-1", store, pol, local(2026, 11, 29, 23, 59), counted(pol.access, *week))
    assert d.verdict is Verdict.LIMIT_REACHED and d.reason.endswith("3 entries per week, 3 used; again from Mon 00:00")
    assert check("I-1", store, pol, local(2026, 11, 30, 0, 0), counted(pol.access, *week)).verdict is Verdict.ADMIT
    month = [(local(2026, 11, d, 12), "I-1") for d in (2, 9, 16, 23, 30)]
    d = check("I-1", store, pol, local(2026, 11, 30, 20), counted(pol.access, *month))
    assert d.verdict is Verdict.LIMIT_REACHED and "5 entries per month, 5 used; again from Tue 00:00" in d.reason
    assert d.next_at == local(2026, 12, 1)
    total = [(local(2026, m, 1, 12), "I-1") for m in (5, 6, 7, 8, 9, 10, 11)]
    d = check("I-1", store, pol, local(2026, 12, 2, 12), counted(pol.access, *total))
    assert d.verdict is Verdict.LIMIT_REACHED and d.reason == "Members: 7 entries in total, 7 used"
    assert d.next_at is None


def test_a_limit_counts_only_this_customer_and_the_most_generous_group_wins(store):
    pol = policy(limits=parse_limits(["members: 1/day"]))
    counts = counted(pol.access, (local(2026, 11, 23, 9), "I-1"), (local(2026, 11, 23, 9), "I-2"))
    at = local(2026, 11, 23, 18)
    assert check("I-1", store, pol, at, counts).verdict is Verdict.LIMIT_REACHED
    assert check("I-2", store, pol, at, counts).verdict is Verdict.ADMIT  # patrons have no limit
    assert check("I-3", store, pol, at, counts).verdict is Verdict.ADMIT  # no entries of her own


def test_minimum_time_between_entries(store):
    pol = policy(min_interval_s=2 * 3600)
    counts = counted(pol.access, (local(2026, 11, 23, 10, 0), "I-1"))
    d = check("I-1", store, pol, local(2026, 11, 23, 11, 59), counts)
    assert d.verdict is Verdict.LIMIT_REACHED and d.reason == "One entry per 2 h; again from 12:00"
    assert check("I-1", store, pol, local(2026, 11, 23, 12, 0), counts).verdict is Verdict.ADMIT


# -- punch cards -----------------------------------------------------------------------------------

def test_punch_card_balance_counts_uses_after_the_upstreams_count(store):
    pol = policy()
    card = store.card(PUNCH)
    assert (card.entries, card.entries_at) == (2, datetime(2026, 11, 20, 12, tzinfo=timezone.utc))
    before = (datetime(2026, 11, 19, tzinfo=timezone.utc), "I-4", "punch")  # already in the upstream's 2
    d = check(PUNCH, store, pol, local(2026, 11, 23, 12), counted(pol.access, before))
    assert d.verdict is Verdict.ADMIT and d.reason == "Welcome (1 entry left on the card)" and d.count == 1
    used = [(local(2026, 11, 21, 12), "I-4", "punch"), (local(2026, 11, 22, 12), "I-4", "punch")]
    d = check(PUNCH, store, pol, local(2026, 11, 23, 12), counted(pol.access, before, *used))
    assert d.verdict is Verdict.LIMIT_REACHED and d.reason == "Punch card used up"
    # the same customer by id is a member like any other
    assert check("I-4", store, pol, local(2026, 11, 23, 12), counted(pol.access, *used)).verdict is Verdict.ADMIT


def test_punch_balance_from_csv_and_protocol_is_checked(tmp_path):
    from kiosk.records import RecordError, check_card

    assert check_card({"code": "X", "card_type": "PUNCH", "entries": 10})[6:] == (10, None)
    assert check_card({"code": "X", "entries": "3", "entries_at": "2026-11-20T12:00:00Z"})[6:] == (
        3, "2026-11-20T12:00:00+00:00")
    for bad in ({"entries": -1}, {"entries": "ten"}, {"entries": True}, {"entries": 1, "entries_at": "yesterday"}):
        with pytest.raises(RecordError):
            check_card({"code": "X", **bad})
    csv = tmp_path / "cards.csv"
    csv.write_text("code,customer_id,card_type,entries,entries_at\nP-9,I-1,PUNCH,10,2026-11-20T12:00:00Z\n")
    from kiosk.importer import import_files

    load_records(tmp_path / "s.sqlite", RECORDS, {"cursor": "c", "synced_at": SYNCED.isoformat()})
    import_files(tmp_path / "s.sqlite", [csv], replace=False, now=SYNCED)
    s = SnapshotStore(tmp_path / "s.sqlite")
    try:
        assert s.card("P-9").entries == 10
    finally:
        s.close()


def test_a_snapshot_written_before_punch_balances_still_reads_and_upgrades(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    load_records(path, RECORDS[:4], {"cursor": "c", "synced_at": SYNCED.isoformat()})
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE c2 AS SELECT key, code, customer_key, card_type, revoked, batch FROM cards;"
                     "DROP TABLE cards; ALTER TABLE c2 RENAME TO cards;"
                     "INSERT INTO cards VALUES ('OLD', 'OLD', 'I-1', 'ID', 0, '');")
    db.close()
    s = SnapshotStore(path)
    try:
        assert s.card("OLD").entries is None
        load_records(path, [{"type": "card", "code": "NEW", "customer_id": "I-1", "card_type": "PUNCH",
                             "entries": 4}], {"cursor": "c2"}, mode="delta")
        s.reload()
        assert s.card("NEW").entries == 4 and s.card("OLD").customer_id == "I-1"
    finally:
        s.close()


# -- capacity --------------------------------------------------------------------------------------

def test_capacity_exits_corrections_and_daily_reset(store):
    pol = policy(capacity=2, occupancy_reset=time(4, 0))
    a = local(2026, 11, 23, 20)
    counts = counted(pol.access, (a, "I-2"), (a, "I-3"))
    d = check("I-1", store, pol, a + timedelta(minutes=1), counts)
    assert (d.verdict, d.count, d.limit) == (Verdict.FULL, 2, 2)
    assert d.reason == "Full: 2 of 2 inside; please wait"
    counts.record(at=a + timedelta(minutes=2), verdict="admit", source="exit_button", customer_id=None)
    assert check("I-1", store, pol, a + timedelta(minutes=3), counts).verdict is Verdict.ADMIT
    counts.record(at=a + timedelta(minutes=4), verdict="occupancy_set", source="staff", customer_id=None, raw="5")
    assert check("I-1", store, pol, a + timedelta(minutes=5), counts).count == 5
    assert check("I-1", store, pol, local(2026, 11, 24, 3, 59), counts).verdict is Verdict.FULL
    assert check("I-1", store, pol, local(2026, 11, 24, 4, 0), counts).verdict is Verdict.ADMIT  # reset
    counts.record(at=a + timedelta(minutes=6), verdict="admit", source="staff", customer_id=None)
    assert counts.occupancy(a + timedelta(minutes=6)) == 6  # a staff admit counts one in


# -- anti-passback ---------------------------------------------------------------------------------

def test_anti_passback_until_exit_and_timed(store):
    pol = policy(passback=True)
    a = local(2026, 11, 23, 20)
    counts = counted(pol.access, (a, "I-1"))
    d = check("I-1", store, pol, a + timedelta(hours=3), counts)
    assert d.verdict is Verdict.ALREADY_INSIDE and d.reason == "Already inside since 20:00; please exit first"
    counts.record(at=a + timedelta(hours=3), verdict="admit", source="exit_button", customer_id="I-1")
    assert check("I-1", store, pol, a + timedelta(hours=3, minutes=1), counts).verdict is Verdict.ADMIT
    timed = policy(passback=True, passback_min=30)
    counts = counted(timed.access, (a, "I-1"))
    assert check("I-1", store, timed, a + timedelta(minutes=29), counts).verdict is Verdict.ALREADY_INSIDE
    assert check("I-1", store, timed, a + timedelta(minutes=30), counts).verdict is Verdict.ADMIT
    counts.record(at=a + timedelta(minutes=30), verdict="admit", source="camera", customer_id="I-1")
    assert counts.occupancy(a + timedelta(minutes=31)) == 1  # a re-entry is not a second person


def test_out_gate_admits_known_customers_and_says_when_they_were_not_inside(store):
    pol = policy(direction="out", passback=True, hours=parse_hours(["members: mon 07:00-08:00"]), capacity=1)
    at = local(2026, 11, 24, 23)  # outside hours, "full": an exit is never refused
    counts = Counts(pol.access, AMS)
    d = check("I-1", store, pol, at, counts)
    assert d.verdict is Verdict.ADMIT and d.reason == "Goodbye (was not recorded as inside)"
    counts.record(at=at, verdict="admit", source="camera", customer_id="I-1")
    assert counts.occupancy(at) == 0 and counts.entries("I-1", at - timedelta(days=1)) == 0
    assert check("I-9", store, pol, at).verdict is Verdict.NOT_RECOGNISED


# -- config ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, words", [
    ("hours", ["members 07:00-23:00"], "must look like"),
    ("hours", ["members: weekdays 07:00-23:00"], "days are daily"),
    ("hours", ["members: mon 7-23"], "is not a range"),
    ("hours", ["members: mon 25:00-26:00"], "not a time of day"),
    ("hours", ["members: mon 10:00-10:00"], "is empty"),
    ("limits", ["members: 0/day"], "at least 1"),
    ("limits", ["members: 2/year"], "day, week, month, total"),
    ("closed", ["25-12-2026"], "not a date"),
    ("day_starts", "4am", "not a time of day"),
    ("direction", "both", "must be one of"),
    ("capacity", -1, "at least 0"),
])
def test_bad_rules_config_names_file_and_key(key, value, words):
    with pytest.raises(ConfigError) as err:
        validate({"rules": {key: value}}, "/etc/kiosk/kiosk.toml")
    text = str(err.value)
    assert "/etc/kiosk/kiosk.toml" in text and f"rules.{key}" in text and words in text


def test_rules_from_config():
    from kiosk.config import Config

    values = validate({"rules": {"hours": ["members: mon-fri 07:00-23:00"], "limits": ["members: 1/day"],
                                 "day_starts": "04:00", "capacity": 40, "passback": True,
                                 "min_interval_min": 90}}, "x.toml")
    rules = AccessRules.from_config(Config(values, "x.toml").rules)
    assert rules.active and rules.capacity == 40 and rules.min_interval_s == 5400
    assert rules.day_starts == time(4) and rules.occupancy_reset == time(4)  # reset defaults to the day start
    assert rules.hours["members"].weekly[0] == ((420, 1380),) and rules.hours["members"].weekly[5] == ()
    assert not AccessRules.from_config(Config(validate({}, "x.toml"), "x.toml").rules).active


# -- the screen's words (EN + NL) ------------------------------------------------------------------

def test_rule_verdicts_in_the_screens_languages(store):
    from kiosk.display import LATER, WARN, describe
    from kiosk.i18n import Messages

    en, nl = Messages("en"), Messages("nl")
    hours = policy(hours=parse_hours(["members: mon-fri 07:00-23:00"]))
    d = check("I-1", store, hours, local(2026, 11, 28, 12))  # Saturday: next Monday
    assert describe(d, en, tz=AMS).reason == "Members: from Mon 07:00"
    assert describe(d, nl, tz=AMS).reason == "Members: vanaf ma 07:00"
    assert describe(d, nl, tz=AMS).title == "Nu gesloten"
    d = check("I-1", store, hours, local(2026, 11, 23, 6))
    assert describe(d, nl, tz=AMS).reason == "Members: vanaf 07:00"
    limit = policy(limits=parse_limits(["members: 2/month"]))
    d = check("I-1", store, limit, local(2026, 11, 20, 12),
              counted(limit.access, (local(2026, 11, 2), "I-1"), (local(2026, 11, 3), "I-1")))
    text = describe(d, en, tz=AMS)
    assert (text.tone, text.title, text.reason) == \
        (LATER, "Limit reached", "2 of 2 entries used; again from 1 Dec 00:00")
    assert text.instruction == "At 1 Dec 00:00"  # the member comes back then (issue 16)
    assert describe(d, nl, tz=AMS).reason == "2 van 2 keer gebruikt; weer vanaf 1 dec 00:00"
    gap = policy(min_interval_s=3600)
    d = check("I-1", store, gap, local(2026, 11, 23, 10, 30), counted(gap.access, (local(2026, 11, 23, 10), "I-1")))
    assert describe(d, en, tz=AMS).reason == "Next entry from 11:00"
    full = policy(capacity=1)
    d = check("I-1", store, full, local(2026, 11, 23, 10, 30), counted(full.access, (local(2026, 11, 23, 10), "I-2")))
    assert (describe(d, nl, tz=AMS).tone, describe(d, nl, tz=AMS).reason) == (WARN, "1 mensen binnen: even wachten")
    d = check(PUNCH, store, policy(), local(2026, 11, 23, 12))
    assert describe(d, en, tz=AMS).reason == "1 entries left on your card"
    assert describe(d, nl, tz=AMS).reason == "Nog 1 keer op je kaart"


# -- guests ----------------------------------------------------------------------------------------

def test_a_member_brings_guests_counted_for_capacity_and_journalled(store, tmp_path):
    from kiosk.gate import Gate
    from kiosk.journal import Journal
    from kiosk.ports import Scan

    pol = policy(guests={"members": 2}, guest_key="+GUEST", capacity=4)
    now = [local(2026, 11, 23, 20)]
    journal = Journal(tmp_path / "j.sqlite")
    gate = Gate(gate_id="g", snapshot=store, journal=journal, policy=pol, clock=lambda: now[0])
    try:
        lonely = gate.handle(Scan(raw="+GUEST", source="serial"))
        assert (lonely.verdict, lonely.reason) == (Verdict.NOT_RECOGNISED, "+1 guest: scan the member's card first")
        member = gate.handle(Scan(raw="I-1", source="camera"))
        assert (member.verdict, member.guests, member.reason) == (Verdict.ADMIT, 2, "Welcome (may bring 2 guests)")
        first = gate.handle(Scan(raw=" +GUEST\r", source="serial"))
        second = gate.admit_guest()
        third = gate.admit_guest()
        assert [d.verdict for d in (first, second, third)] == [Verdict.ADMIT, Verdict.ADMIT, Verdict.LIMIT_REACHED]
        assert first.name == "Guest of Mia Member" and first.reason == "Guest 1 of 2 of Mia Member"
        assert third.reason == "Mia Member may bring 2 guests; all came in"
        assert gate.counts.occupancy(now[0]) == 3
        gate.handle(Scan(raw="I-2", source="camera"))  # a second member (2 guests too): the lounge holds 4
        assert gate.admit_guest().verdict is Verdict.FULL
        now[0] += timedelta(minutes=3)
        assert gate.admit_guest().verdict is Verdict.NOT_RECOGNISED  # too long after the member
        events = list(journal.events())
        guests = [e for e in events if e["source"] == "guest" and e["verdict"] == "admit"]
        assert [(e["raw"], e["customer_id"]) for e in guests] == [("guest:I-1", None), ("guest:I-1", None)]
    finally:
        journal.close()
    rebuilt = Counts.rebuild(tmp_path / "j.sqlite", pol.access, AMS)
    assert rebuilt.occupancy(now[0]) == 4  # Mia, two guests, Pat


def test_no_guests_for_groups_without_them_and_bad_guest_config(store):
    d = check("I-1", store, policy(guests={"patrons": 1}), local(2026, 11, 23, 20))
    assert (d.verdict, d.guests, d.reason) == (Verdict.ADMIT, 0, "Welcome")
    assert check("I-2", store, policy(guests={"patrons": 1}), local(2026, 11, 23, 20)).guests == 1
    for bad in (["members: 0"], ["members: lots"], ["members 2"], ["members: 99"]):
        with pytest.raises(ConfigError):
            validate({"rules": {"guests": bad}}, "k.toml")


def test_guest_limit_on_the_screen(store, tmp_path):
    from kiosk.display import describe
    from kiosk.gate import Gate
    from kiosk.i18n import Messages
    from kiosk.journal import Journal
    from kiosk.ports import Scan

    journal = Journal(tmp_path / "j.sqlite")
    gate = Gate(gate_id="g", snapshot=store, journal=journal, policy=policy(guests={"members": 1}),
                clock=lambda: local(2026, 11, 23, 20))
    try:
        gate.handle(Scan(raw="I-1", source="camera"))
        guest, extra = gate.admit_guest(), gate.admit_guest()
    finally:
        journal.close()
    assert describe(guest, Messages("en"), tz=AMS).name == "Guest of Mia Member"
    assert describe(extra, Messages("en"), tz=AMS).reason == "All 1 guests are in"
    assert describe(extra, Messages("nl"), tz=AMS).reason == "Alle 1 gasten zijn binnen"
