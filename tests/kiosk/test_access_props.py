"""Invariants of the access rules over random scan sequences (Hypothesis), through a real Gate."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.access import AccessRules, parse_limits
from kiosk.counts import Counts, punch_cards
from kiosk.gate import Gate
from kiosk.journal import Journal
from kiosk.model import Verdict
from kiosk.ports import Scan
from kiosk.rules import Policy
from kiosk.snapshot import SnapshotStore, load_records

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 11, 27, 20, 0, tzinfo=AMS)
PEOPLE = [f"I-{n}" for n in range(1, 9)]
PUNCH = "PUNCH-1"
RECORDS = ([{"type": "group", "id": "members", "name": "Members"}]
           + [{"type": "customer", "id": p, "first_name": "P", "last_name": p, "groups": ["members"]} for p in PEOPLE]
           + [{"type": "card", "code": PUNCH, "customer_id": "I-1", "card_type": "PUNCH", "entries": 3}])

# one step: who scans (or the exit button, or staff correcting the count), and how many seconds later
step = st.tuples(st.sampled_from([*PEOPLE, PUNCH, "exit", "exit", "set"]),
                 st.sampled_from([1, 4, 30, 600, 3600, 4 * 3600]), st.integers(0, 6))
steps = st.lists(step, min_size=1, max_size=40)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("props") / "snapshot.sqlite"
    load_records(path, RECORDS, {"cursor": "c", "synced_at": START.isoformat()})
    store = SnapshotStore(path)
    yield store
    store.close()


def run(snapshot, rules: AccessRules, sequence, journal_path: Path | str = ":memory:"):
    now = [START]
    journal = Journal(Path(journal_path))
    policy = Policy(tz=AMS, max_snapshot_age_h=1e6, access=rules)
    gate = Gate(gate_id="g", snapshot=snapshot, journal=journal, policy=policy, clock=lambda: now[0])
    trail = []
    for who, gap, n in sequence:
        now[0] += timedelta(seconds=gap)
        if who == "exit":
            gate.admit_manually("exit_button", "Exit button")
        elif who == "set":
            gate.set_occupancy(n)
        else:
            decision = gate.handle(Scan(raw=who, source="camera"))
            trail.append((now[0], decision, gate.counts.inside(now[0]), gate.counts.occupancy(now[0])))
    return gate, journal, trail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps, capacity=st.integers(1, 4))
def test_admits_never_take_the_zone_over_capacity(snapshot, sequence, capacity):
    rules = AccessRules(capacity=capacity, occupancy_reset=time(4))
    gate, journal, trail = run(snapshot, rules, [s for s in sequence if s[0] != "set"])
    try:
        for _moment, decision, _inside, occupancy in trail:
            if decision.admitted:
                assert occupancy <= capacity
            if decision.verdict is Verdict.FULL:
                assert decision.count >= capacity
    finally:
        journal.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_with_anti_passback_nobody_is_inside_twice(snapshot, sequence):
    """At an in gate nobody exits by name, so with passback each person enters at most once a day."""
    rules = AccessRules(passback=True, occupancy_reset=time(4), day_starts=time(4))
    gate, journal, trail = run(snapshot, rules, sequence)
    try:
        per_day = Counter()
        for moment, decision, inside, _occupancy in trail:
            if decision.admitted:
                per_day[(decision.customer_id, (moment - timedelta(hours=4)).date())] += 1
                assert decision.customer_id in inside
            assert len(inside) == len(set(inside))
        assert all(n == 1 for n in per_day.values()), per_day
    finally:
        journal.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps, passback=st.booleans(), capacity=st.integers(0, 4))
def test_counts_rebuilt_after_a_restart_equal_the_counts_before(snapshot, sequence, passback, capacity):
    rules = AccessRules(passback=passback, passback_min=60 if passback else 0, capacity=capacity,
                        limits=parse_limits(["members: 3/day", "members: 5/week"]), min_interval_s=60,
                        day_starts=time(4), occupancy_reset=time(5))
    with tempfile.TemporaryDirectory() as tmp:
        gate, journal, trail = run(snapshot, rules, sequence, Path(tmp) / "journal.sqlite")
        journal.close()
        before = gate.counts
        after = Counts.rebuild(Path(tmp) / "journal.sqlite", rules, AMS, punch_cards(snapshot.path))
        end = START + timedelta(seconds=sum(gap for _who, gap, _n in sequence))
        for moment in (end, end + timedelta(hours=1), end + timedelta(days=1)):
            assert after.occupancy(moment) == before.occupancy(moment)
            assert after.inside(moment) == before.inside(moment)
        for person in PEOPLE:
            for since in (START, end - timedelta(hours=3), end - timedelta(days=1)):
                assert after.entries(person, since) == before.entries(person, since)
            assert after.total_entries(person) == before.total_entries(person)
            assert after.last_entry(person) == before.last_entry(person)
            assert after.inside_since(person, end) == before.inside_since(person, end)
        assert after.punch_uses(PUNCH, None) == before.punch_uses(PUNCH, None)
        if any(d.admitted for _m, d, _i, _o in trail):
            assert after.events > 0
