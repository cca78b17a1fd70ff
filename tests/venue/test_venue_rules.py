"""The access rules over the venue: a capacity shared by the gates of a zone, anti-passback across gates."""

from __future__ import annotations

from .conftest import wait_for

ZONE = {"zone": "lounge"}


def verdicts(k) -> list[str]:
    return [r[1] for r in k.journal()]


def test_a_capacity_is_shared_by_the_gates_of_a_zone(broker, kiosks):
    rules = {**ZONE, "capacity": 2, "direction": "in"}
    a, b = kiosks("front", broker.url, rules), kiosks("side", broker.url, rules)
    a.scan("I-1001")
    wait_for(lambda: len(b.peer_ids("front")) == 1, "side to hear of front's admit")
    b.scan("I-1002")
    wait_for(lambda: len(a.peer_ids("side")) == 1, "front to hear of side's admit")
    a.scan("O-2001")  # alone, front has let in one of two; with side's admit the lounge is full
    b.scan("O-2001")
    wait_for(lambda: len(a.journal()) == 2 and len(b.journal()) == 2, "both decisions")
    assert verdicts(a) == ["admit", "full"] and verdicts(b) == ["admit", "full"]


def test_another_zones_admits_count_no_one_inside_here(broker, kiosks):
    a = kiosks("front", broker.url, {**ZONE, "capacity": 1})
    b = kiosks("spa", broker.url, {"zone": "spa", "capacity": 1})
    b.scan("I-1001")
    wait_for(lambda: len(a.peer_ids("spa")) == 1, "front to hear of the spa's admit")
    a.scan("I-1002")
    wait_for(lambda: a.journal(), "front's decision")
    assert verdicts(a) == ["admit"]


def test_anti_passback_across_an_in_and_an_out_gate(broker, kiosks):
    entry = {**ZONE, "direction": "in", "passback": True}
    a = kiosks("front", broker.url, entry)
    b = kiosks("side", broker.url, entry)
    c = kiosks("exit", broker.url, {**ZONE, "direction": "out"})
    a.scan("I-1001")
    wait_for(lambda: len(b.peer_ids("front")) == 1, "side to hear of the entry")
    b.scan("I-1001")  # inside already, through another door
    wait_for(lambda: verdicts(b) == ["already_inside"], "side's refusal")
    c.scan("I-1001")
    wait_for(lambda: len(b.peer_ids("exit")) == 1 and verdicts(c) == ["admit"], "side to hear of the exit")
    b.scan("I-1001")
    wait_for(lambda: len(verdicts(b)) == 2, "side's second decision")
    assert verdicts(b) == ["already_inside", "admit"]
