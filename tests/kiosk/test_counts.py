"""The counts (kiosk.counts, kiosk.venue.union) over a long run: what they keep of customers who do not come back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from kiosk.access import AccessRules, parse_limits
from kiosk.counts import Counts
from kiosk.venue.union import VenueCounts

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


def admit_new_faces(counts: Counts, n: int, every_s: float) -> datetime:
    """`n` admits, each of a customer never seen before, `every_s` apart; returns the time of the last."""
    for i in range(n):
        at = START + timedelta(seconds=every_s * i)
        counts.record(at=at, verdict="admit", source="camera", customer_id=f"C-{i}")
    return at


def test_customers_not_seen_within_the_longest_rule_are_forgotten_as_the_gate_runs():
    counts = Counts(AccessRules(), AMS)  # no rule: entry times are kept an hour (the repeat window after a restart)
    last = admit_new_faces(counts, 20_000, every_s=2.0)  # 11 hours, 1,800 new faces an hour
    held = counts.recent_admits(START - timedelta(days=1))  # every customer it still holds entry times of
    # the last hour's 1,801, and at most as many again until the next pass: not all 20,000 ever admitted
    assert 1801 <= len(held) <= 2 * 1801
    assert counts.entries("C-19999", last - timedelta(hours=1)) == 1 and counts.last_entry("C-19999") == last
    assert counts.entries("C-0", START) == 0 and counts.last_entry("C-0") is None
    # a forgotten customer who comes back is counted afresh
    counts.record(at=last + timedelta(seconds=1), verdict="admit", source="camera", customer_id="C-0")
    assert counts.last_entry("C-0") == last + timedelta(seconds=1)
    assert counts.events == 20_001


def test_entry_times_a_rule_still_reads_are_kept():
    # a daily limit looks back up to two days: after 11 hours of new faces, the first one's entry still counts
    counts = Counts(AccessRules(limits=parse_limits(["members: 1/day"])), AMS)
    last = admit_new_faces(counts, 20_000, every_s=2.0)
    assert counts.entries("C-0", START) == 1 and counts.last_entry("C-0") == START
    assert len(counts.recent_admits(START - timedelta(days=1))) == 20_000
    assert counts.entries("C-19999", last) == 1


def test_a_venue_gate_forgets_them_too_by_its_own_clock():
    counts = VenueCounts(AccessRules(zone="lounge", direction="in"), AMS)
    last = START
    for i in range(20_000):
        last = START + timedelta(seconds=2.0 * i)
        counts.record(at=last, verdict="admit", source="camera", customer_id=f"C-{i}")
    assert 1801 <= len(counts.recent_admits(START - timedelta(days=1))) <= 2 * 1801
    assert counts.last_entry("C-19999") == last and counts.last_entry("C-0") is None


def test_a_peer_event_dated_in_the_future_forgets_no_one():
    counts = VenueCounts(AccessRules(zone="lounge", direction="in", limits=parse_limits(["members: 1/day"])), AMS)
    peers = [{"id": f"side-{i}", "gate": "side", "zone": "lounge", "dir": "in", "verdict": "admit",
              "source": "camera", "customer": f"C-{i}", "card": f"C-{i}", "value": None,
              "at": (START + timedelta(seconds=i)).isoformat()} for i in range(1000)]
    # one more customer than the first pass waits for, from a peer whose clock is decades ahead
    peers.append({**peers[0], "id": "side-x", "customer": "C-x", "card": "C-x", "at": "2099-01-01T00:00:00+00:00"})
    counts.add_peer_events(peers)
    counts.record(at=START + timedelta(hours=1), verdict="admit", source="camera", customer_id="C-own")
    assert counts.entries("C-0", START) == 1 and counts.entries("C-999", START) == 1
