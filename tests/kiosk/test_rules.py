"""The gate's rules: kiosk.rules.decide for every verdict, on real SQLite snapshots."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import demo
from kiosk.credential import parse
from kiosk.model import Decision, Verdict
from kiosk.rules import Policy, decide
from kiosk.snapshot import SnapshotStore, load_records

UTC = timezone.utc
POLICY = Policy(groups=("members",), tz=UTC)


def check(text, store, clock, policy=POLICY, recent=None) -> Decision:
    return decide(parse(text, policy.id_patterns), store, policy, clock(), recent)


def make_store(path: Path, records: list[dict], synced_at: datetime) -> SnapshotStore:
    load_records(path, records, {"cursor": "c-1", "synced_at": synced_at.isoformat()})
    return SnapshotStore(path)


GROUPS = [{"type": "group", "id": "members", "name": "Members", "scannable": True},
          {"type": "group", "id": "hidden", "name": "Hidden", "scannable": False}]


def member(ident: str, **fields) -> dict:
    return {"type": "customer", "id": ident, "first_name": "M", "last_name": ident, "groups": ["members"], **fields}


# -- one test per verdict ---------------------------------------------------------------------------

def test_admit_member(snapshot, clock):
    d = check("I-1001", snapshot, clock)
    assert d.verdict is Verdict.ADMIT
    assert d.admitted
    assert d.customer_id == "I-1001"
    assert d.name == "Jane Smith"
    assert d.groups == ("Members",)  # "Newsletter" is not scannable
    assert d.matched_groups == ("Members",)
    assert d.at == clock()
    assert d.cursor == "demo-1"
    assert d.stale is False
    assert d.valid_until == clock().date() + timedelta(days=365)


def test_admit_by_card_url_and_vip_card(snapshot, clock):
    d = check(f"https://members.example.org/card/{demo.JANE_CARD.upper()}", snapshot, clock)
    assert d.verdict is Verdict.ADMIT
    assert d.customer_id == "I-1001"
    assert d.card_code == demo.JANE_CARD
    assert d.card_type == "ID"
    vip = check(demo.PIET_VIP, snapshot, clock)
    assert vip.verdict is Verdict.ADMIT
    assert vip.card_type == "VIP"
    assert vip.name == "Pieter de Vries"
    assert set(vip.groups) == {"Members", "Patrons"}


def test_organisation_shows_its_name(snapshot, clock):
    d = check("o-2001", snapshot, clock)
    assert d.verdict is Verdict.ADMIT
    assert d.name == "Acme Ltd"


def test_not_in_group(snapshot, clock):
    d = check("I-1003", snapshot, clock)
    assert d.verdict is Verdict.NOT_IN_GROUP
    assert d.customer_id == "I-1003"
    assert d.name == "Bob Jones"
    assert d.groups == ()  # only in the unscannable "Newsletter"
    assert d.matched_groups == ()
    assert "Members" in d.reason


@pytest.mark.parametrize("text", ["I-9999", "HELLO-WORLD", "00000000-0000-0000-0000-000000000000",
                                  "A" * 300, "I-10\x0001"])
def test_not_recognised(snapshot, clock, text):
    d = check(text, snapshot, clock)
    assert d.verdict is Verdict.NOT_RECOGNISED
    assert d.customer_id is None
    assert d.name == ""
    assert d.reason.startswith("Barcode not recognised")


def test_not_recognised_reason_says_why_for_bad_text(snapshot, clock):
    assert "longer than 256" in check("A" * 300, snapshot, clock).reason
    assert "control" in check("a\x00b", snapshot, clock).reason


def test_inactive(snapshot, clock):
    d = check("i-1004", snapshot, clock)
    assert d.verdict is Verdict.INACTIVE
    assert d.customer_id == "I-1004"
    assert d.name == "Ann Lee"


def test_expired(snapshot, clock):
    d = check("I-1005", snapshot, clock)
    assert d.verdict is Verdict.EXPIRED
    assert "expired" in d.reason
    assert d.valid_until == clock().date() - timedelta(days=40)


def test_validity_bounds_are_inclusive(tmp_path, clock):
    today = clock().date()
    store = make_store(tmp_path / "s.sqlite", GROUPS + [
        member("I-1", valid_until=today.isoformat()),
        member("I-2", valid_until=(today - timedelta(days=1)).isoformat()),
        member("I-3", valid_from=today.isoformat()),
        member("I-4", valid_from=(today + timedelta(days=1)).isoformat()),
        member("I-5", valid_from=today.isoformat(), valid_until=today.isoformat()),
    ], clock())
    try:
        assert check("I-1", store, clock).verdict is Verdict.ADMIT
        assert check("I-2", store, clock).verdict is Verdict.EXPIRED
        assert check("I-3", store, clock).verdict is Verdict.ADMIT
        future = check("I-4", store, clock)
        assert future.verdict is Verdict.EXPIRED
        assert "starts" in future.reason
        assert check("I-5", store, clock).verdict is Verdict.ADMIT
    finally:
        store.close()


def test_validity_dates_are_read_in_the_gate_timezone(tmp_path):
    from zoneinfo import ZoneInfo

    # 23:30 UTC on 31 Jan is already 1 Feb in Amsterdam
    moment = datetime(2027, 1, 31, 23, 30, tzinfo=UTC)
    store = make_store(tmp_path / "s.sqlite", GROUPS + [member("I-1", valid_until="2027-01-31")], moment)
    try:
        assert decide(parse("I-1"), store, Policy(tz=UTC), moment).verdict is Verdict.ADMIT
        ams = Policy(tz=ZoneInfo("Europe/Amsterdam"))
        assert decide(parse("I-1"), store, ams, moment).verdict is Verdict.EXPIRED
    finally:
        store.close()


def test_inactive_wins_over_expired(tmp_path, clock):
    store = make_store(tmp_path / "s.sqlite", GROUPS + [member("I-1", active=False, valid_until="2000-01-01")], clock())
    try:
        assert check("I-1", store, clock).verdict is Verdict.INACTIVE
    finally:
        store.close()


def test_card_revoked_names_its_holder(snapshot, clock):
    d = check(demo.REVOKED_CARD.upper(), snapshot, clock)
    assert d.verdict is Verdict.CARD_REVOKED
    assert d.card_code == demo.REVOKED_CARD
    assert d.customer_id == "I-1001"
    assert d.name == "Jane Smith"
    assert d.groups == ("Members",)


def test_card_unassigned(snapshot, clock):
    d = check(demo.UNASSIGNED_CARD, snapshot, clock)
    assert d.verdict is Verdict.CARD_UNASSIGNED
    assert d.card_type == "GIFT"
    assert d.customer_id is None


def test_card_whose_customer_is_missing_is_unassigned(tmp_path, clock):
    store = make_store(tmp_path / "s.sqlite", GROUPS + [
        {"type": "card", "code": "GIFT-77", "customer_id": "I-404"}], clock())
    try:
        d = check("GIFT-77", store, clock)
        assert d.verdict is Verdict.CARD_UNASSIGNED
        assert d.card_code == "GIFT-77"
        assert check("gift-77", store, clock).verdict is Verdict.NOT_RECOGNISED  # other codes match exactly
    finally:
        store.close()


def test_repeat_within_window_not_after(snapshot, clock):
    now = clock()
    window = POLICY.repeat_window_s
    for ago, verdict in [(0, Verdict.REPEAT), (3, Verdict.REPEAT), (window, Verdict.REPEAT),
                         (window + 0.001, Verdict.ADMIT), (60, Verdict.ADMIT)]:
        recent = {"I-1001": now - timedelta(seconds=ago)}
        d = check("I-1001", snapshot, clock, recent=recent)
        assert d.verdict is verdict, ago
        if verdict is Verdict.REPEAT:
            assert d.repeat_of_s == pytest.approx(ago)
            assert d.name == "Jane Smith"


def test_repeat_is_per_customer_whichever_code_they_show(snapshot, clock):
    recent = {"I-1001": clock() - timedelta(seconds=1)}
    assert check(demo.JANE_CARD, snapshot, clock, recent=recent).verdict is Verdict.REPEAT
    assert check("I-1002", snapshot, clock, recent=recent).verdict is Verdict.ADMIT


def test_admit_in_the_future_of_the_clock_is_not_a_repeat(snapshot, clock):
    # a clock stepped backwards must not lock a member out
    recent = {"I-1001": clock() + timedelta(seconds=2)}
    assert check("I-1001", snapshot, clock, recent=recent).verdict is Verdict.ADMIT


def test_denials_are_never_turned_into_repeat(snapshot, clock):
    recent = {"I-1004": clock(), "I-1003": clock()}
    assert check("I-1004", snapshot, clock, recent=recent).verdict is Verdict.INACTIVE
    assert check("I-1003", snapshot, clock, recent=recent).verdict is Verdict.NOT_IN_GROUP


def test_snapshot_stale_with_deny_policy(snapshot, clock):
    deny = Policy(groups=("members",), stale_policy="deny", max_snapshot_age_h=72, tz=UTC)
    clock.advance(72 * 3600)
    assert check("I-1001", snapshot, clock, deny).verdict is Verdict.ADMIT  # exactly at the limit
    clock.advance(1)
    d = check("I-1001", snapshot, clock, deny)
    assert d.verdict is Verdict.SNAPSHOT_STALE
    assert d.stale is True
    assert d.name == "Jane Smith"
    assert "out of date" in d.reason
    # a denial stays what it is: stale data can only stop an admit
    assert check("I-1004", snapshot, clock, deny).verdict is Verdict.INACTIVE


def test_snapshot_stale_with_warn_policy_admits_with_a_flag(snapshot, clock):
    warn = Policy(groups=("members",), stale_policy="warn", max_snapshot_age_h=1, tz=UTC)
    fresh = check("I-1001", snapshot, clock, warn)
    assert fresh.verdict is Verdict.ADMIT and fresh.stale is False
    clock.advance(2 * 3600)
    d = check("I-1001", snapshot, clock, warn)
    assert d.verdict is Verdict.ADMIT
    assert d.stale is True
    assert "out of date" in d.reason


def test_snapshot_without_sync_time_is_stale(tmp_path, clock):
    path = tmp_path / "s.sqlite"
    load_records(path, GROUPS + [member("I-1")], {"cursor": "c-1"})
    store = SnapshotStore(path)
    try:
        deny = Policy(stale_policy="deny", tz=UTC)
        assert check("I-1", store, clock, deny).verdict is Verdict.SNAPSHOT_STALE
    finally:
        store.close()


def test_groups_all_verifies_every_scannable_group(snapshot, clock):
    every = Policy(groups="all", tz=UTC)
    piet = check("I-1002", snapshot, clock, every)
    assert piet.verdict is Verdict.ADMIT
    assert set(piet.matched_groups) == {"Members", "Patrons"}
    # Bob is only in "Newsletter", which is not scannable, so "all" does not include it
    bob = check("I-1003", snapshot, clock, every)
    assert bob.verdict is Verdict.NOT_IN_GROUP
    assert "Newsletter" not in bob.reason


def test_verifying_another_group(snapshot, clock):
    patrons = Policy(groups=("patrons",), tz=UTC)
    assert check("I-1002", snapshot, clock, patrons).matched_groups == ("Patrons",)
    jane = check("I-1001", snapshot, clock, patrons)
    assert jane.verdict is Verdict.NOT_IN_GROUP
    assert jane.groups == ("Members",)
    assert "Patrons" in jane.reason


def test_any_customer_mode_admits_without_groups(snapshot, clock):
    anyone = Policy(mode="any_customer", tz=UTC)
    bob = check("I-1003", snapshot, clock, anyone)
    assert bob.verdict is Verdict.ADMIT
    assert bob.matched_groups == ()
    # the other checks still apply
    assert check("I-1004", snapshot, clock, anyone).verdict is Verdict.INACTIVE
    assert check("I-1005", snapshot, clock, anyone).verdict is Verdict.EXPIRED
    assert check(demo.REVOKED_CARD, snapshot, clock, anyone).verdict is Verdict.CARD_REVOKED


def test_id_patterns_from_policy(snapshot, clock):
    import re

    venue = Policy(id_patterns=(re.compile(r"^LOUNGE/(.+)$"),), tz=UTC)
    assert check("LOUNGE/i-1001", snapshot, clock, venue).verdict is Verdict.ADMIT


# -- properties ------------------------------------------------------------------------------------

POLICIES = st.builds(Policy, mode=st.sampled_from(["verify_groups", "any_customer"]),
                     groups=st.one_of(st.just("all"), st.lists(st.sampled_from(["members", "patrons", "newsletter",
                                                                                 "nope"]), max_size=3).map(tuple)),
                     stale_policy=st.sampled_from(["warn", "deny"]), max_snapshot_age_h=st.sampled_from([0.5, 72]),
                     tz=st.just(UTC))
CODES = st.one_of(st.sampled_from(["I-1001", "I-1002", "I-1003", "I-1004", "I-1005", "O-2001", demo.JANE_CARD,
                                   demo.PIET_VIP, demo.REVOKED_CARD, demo.UNASSIGNED_CARD, "nope"]),
                  st.text(max_size=50))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=CODES, policy=POLICIES, hours=st.integers(0, 200), repeat=st.booleans())
def test_every_decision_is_well_formed_and_hides_unscannable_groups(snapshot, clock, code, policy, hours, repeat):
    now = clock() + timedelta(hours=hours)
    recent = {"I-1001": now} if repeat else None
    d = decide(parse(code), snapshot, policy, now, recent)
    assert isinstance(d.verdict, Verdict)
    assert d.reason
    assert d.at == now
    assert "Newsletter" not in d.groups
    assert set(d.matched_groups) <= set(d.groups) or policy.groups != "all"
    if d.verdict in (Verdict.ADMIT, Verdict.REPEAT, Verdict.SNAPSHOT_STALE):
        assert d.customer_id and d.name
    if d.verdict is Verdict.ADMIT and policy.mode == "verify_groups":
        assert d.matched_groups
    if d.verdict is Verdict.SNAPSHOT_STALE:
        assert policy.stale_policy == "deny"


def test_decide_is_pure(snapshot, clock):
    first = check("I-1001", snapshot, clock)
    second = check("I-1001", snapshot, clock)
    assert first == second
    assert clock() == first.at


def test_expired_today_at_any_time_of_day(tmp_path):
    """valid_until is a whole day: from 00:00 to 23:59 local time the member is still in."""
    day = date(2027, 3, 1)
    start = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)
    store = make_store(tmp_path / "s.sqlite", GROUPS + [member("I-1", valid_until=day.isoformat())], start)
    try:
        for minutes in (0, 12 * 60, 23 * 60 + 59):
            moment = start + timedelta(minutes=minutes)
            assert decide(parse("I-1"), store, POLICY, moment).verdict is Verdict.ADMIT
        assert decide(parse("I-1"), store, POLICY, start + timedelta(days=1)).verdict is Verdict.EXPIRED
    finally:
        store.close()
