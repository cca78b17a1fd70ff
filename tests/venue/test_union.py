"""The union counts: the same events give the same counts, whatever order and however often they come."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.access import AccessRules
from kiosk.counts import Counts, keep_seconds
from kiosk.journal import Journal
from kiosk.venue.store import PeerStore
from kiosk.venue.union import VenueCounts

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
RULES = AccessRules(zone="lounge", capacity=100, direction="in")
GATES = {"front": ("lounge", "in"), "side": ("lounge", "in"), "exit": ("lounge", "out"), "spa": ("spa", "in")}


def event(i: int, gate: str, customer: str, minute: int) -> dict:
    zone, direction = GATES[gate]
    at = (T0 + timedelta(minutes=minute, milliseconds=i)).isoformat()
    return {"id": f"{gate}-{i}", "seq": i + 1, "prev": i, "gate": gate, "zone": zone, "dir": direction, "at": at,
            "verdict": "admit", "source": "camera", "customer": customer, "card": customer, "passed": None,
            "value": None}


scans = st.lists(st.tuples(st.sampled_from(sorted(GATES)), st.sampled_from(["A", "B", "C", "D"]),
                           st.integers(0, 90)), min_size=1, max_size=40)


def view(c: VenueCounts, now: datetime) -> tuple:
    """What the rules can see: entries only as far back as any rule looks (older ones are let go)."""
    since = now - timedelta(seconds=keep_seconds(RULES))
    return (c.occupancy(now), tuple(c.inside(now)), tuple(c.entries(x, since) for x in "ABCD"),
            tuple(c.total_entries(x) for x in "ABCD"), tuple(c.last_entry(x) for x in "ABCD"))


@settings(max_examples=150, deadline=None)
@given(scans, st.randoms(use_true_random=False))
def test_any_order_and_any_repeats_give_the_same_counts(plan, rnd):
    events = [event(i, gate, customer, minute) for i, (gate, customer, minute) in enumerate(plan)]
    now = T0 + timedelta(minutes=100)
    in_order = VenueCounts(RULES, timezone.utc)
    in_order.add_peer_events(sorted(events, key=lambda e: e["at"]))
    shuffled = VenueCounts(RULES, timezone.utc)
    batches = events + rnd.sample(events, len(events) // 2)  # the store de-duplicates: here, each batch once
    rnd.shuffle(batches)
    seen = set()
    for e in batches:
        if e["id"] not in seen:
            seen.add(e["id"])
            shuffled.add_peer_events([e])
    assert view(shuffled, now) == view(in_order, now)
    # and it is what one gate would count had it seen them all itself, in time order
    reference = Counts(RULES, timezone.utc)
    for e in sorted(events, key=lambda e: e["at"]):
        reference.rules = AccessRules(zone="lounge", capacity=100, direction=e["dir"])
        if e["zone"] == "lounge":
            reference.record(at=datetime.fromisoformat(e["at"]), verdict="admit", source="camera",
                             customer_id=e["customer"])
    assert in_order.occupancy(now) == reference.occupancy(now)
    assert in_order.inside(now) == reference.inside(now)


def test_another_zone_counts_entries_but_no_one_inside():
    c = VenueCounts(RULES, timezone.utc)
    c.add_peer_events([event(0, "spa", "A", 0), event(1, "exit", "B", 1)])
    now = T0 + timedelta(hours=1)
    assert c.entries("A", T0 - timedelta(minutes=1)) == 1 and c.occupancy(now) == 0 and c.inside(now) == []
    assert c.entries("B", T0) == 0  # an exit is not an entry


def test_rebuild_from_journal_and_store_equals_the_live_counts(tmp_path: Path):
    journal = Journal(tmp_path / "journal.sqlite")
    store = PeerStore(tmp_path / "venue.sqlite")
    live = VenueCounts(RULES, timezone.utc)
    rnd = random.Random(7)
    peer_events = []
    for i in range(60):
        at = T0 + timedelta(minutes=i)
        customer = rnd.choice("ABCDEF")
        if rnd.random() < 0.5:
            journal.append(at=at, gate="front", source="camera", raw=customer, credential=customer, verdict="admit",
                           customer_id=customer, groups=(), cursor="")
            live.record(at=at, verdict="admit", source="camera", customer_id=customer)
        else:
            peer_events.append(event(i, rnd.choice(sorted(GATES)), customer, i))
    rnd.shuffle(peer_events)
    live.add_peer_events(peer_events)
    store.add(peer_events, T0)
    rebuilt = VenueCounts.rebuild(journal.path, store, RULES, timezone.utc)
    now = T0 + timedelta(hours=2)
    assert view(rebuilt, now) == view(live, now)
    assert live.occupancy(now) > 0


# Every kind of zone event: (gate, verdict, source, customer, raw)
KINDS = [("front", "admit", "camera", "A", ""), ("front", "admit", "camera", "B", ""),
         ("side", "admit", "camera", "C", ""), ("exit", "admit", "camera", "A", ""),
         ("exit", "admit", "camera", "C", ""), ("front", "admit", "exit_button", None, ""),
         ("front", "admit", "staff", None, ""), ("side", "admit", "guest", None, "guest:B"),
         ("front", "occupancy_set", "cli", None, "2"), ("front", "occupancy_set", "cli", None, "many"),
         ("spa", "admit", "camera", "D", "")]
# minutes from T0 (09:00 UTC): the zone's daily reset (midnight) falls at 900, in the middle
moves = st.lists(st.tuples(st.sampled_from(range(len(KINDS))), st.integers(870, 930), st.booleans()),
                 min_size=1, max_size=60)


def zone_event(i: int, kind: int, minute: int) -> dict:
    gate, verdict, source, customer, raw = KINDS[kind]
    e = event(i, gate, customer or "", minute)
    e.update(verdict=verdict, source=source, customer=customer, value=raw or None)
    return e


def replayed_in_full(events: list[dict], now: datetime) -> tuple:
    """One gate that saw every event itself, in time order (kiosk.counts.Counts): the zone's reference."""
    reference = Counts(RULES, timezone.utc)
    for e in sorted(events, key=lambda e: (datetime.fromisoformat(e["at"]).timestamp(), e["id"])):
        if e["zone"] == "lounge":
            reference.rules = AccessRules(zone="lounge", capacity=100, direction=e["dir"])
            reference.record(at=datetime.fromisoformat(e["at"]), verdict=e["verdict"], source=e["source"],
                             customer_id=e["customer"], raw=e["value"] or "")
    return (reference.occupancy(now), tuple(reference.inside(now)),
            tuple(reference.inside_since(x, now) for x in "ABCD"))


@settings(max_examples=200, deadline=None)
@given(moves)
def test_late_events_at_any_place_give_the_counts_of_a_full_replay(plan):
    """Events arrive in the plan's order (late ones land anywhere among those held, across the daily reset),
    and the zone is read after some of them: every read equals replaying all events so far from the start."""
    c = VenueCounts(RULES, timezone.utc)
    seen: list[dict] = []
    for i, (kind, minute, read) in enumerate(plan):
        e = zone_event(i, kind, minute)
        seen.append(e)
        c.add_peer_events([e])
        if read or i == len(plan) - 1:
            now = max(datetime.fromisoformat(x["at"]) for x in seen) + timedelta(seconds=1)
            assert (c.occupancy(now), tuple(c.inside(now)),
                    tuple(c.inside_since(x, now) for x in "ABCD")) == replayed_in_full(seen, now)


def test_a_late_event_replays_only_the_events_after_it():
    c = VenueCounts(RULES, timezone.utc)
    for i in range(5000):
        c.record(at=T0 + timedelta(seconds=i), verdict="admit", source="camera", customer_id=f"C-{i}")
    now = T0 + timedelta(hours=3)
    assert c.occupancy(now) == 5000
    late = event(0, "exit", "C-4990", 0)
    late["at"] = (T0 + timedelta(seconds=4996.5)).isoformat()  # C-4990 leaves: before the last 3 of this gate's own
    c.add_peer_events([late])
    assert c.occupancy(now) == 4999 and "C-4990" not in c.inside(now)
    assert c.replayed == 3  # the events after it, not the 5,000 of the day
