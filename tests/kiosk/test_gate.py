"""The pipeline: scan -> credential -> rules -> journal -> outputs, through kiosk.gate.Gate."""

from __future__ import annotations

import threading
from datetime import timezone

import pytest

from kiosk import demo
from kiosk.gate import MANUAL_SOURCES, Gate
from kiosk.journal import Journal
from kiosk.model import Decision, Verdict
from kiosk.ports import Scan
from kiosk.rules import Policy

POLICY = Policy(groups=("members",), repeat_window_s=5, tz=timezone.utc)


class Recorder:
    """An Output that keeps what it was given and, like a relay would, looks at the journal when acting."""

    def __init__(self, journal_path):
        self.journal_path = journal_path
        self.seen: list[tuple[Decision, list[str]]] = []
        self.closed = False

    def act(self, decision: Decision) -> None:
        reader = Journal(self.journal_path, readonly=True)  # another connection: only committed rows
        try:
            self.seen.append((decision, [e["id"] for e in reader.events()]))
        finally:
            reader.close()

    def close(self) -> None:
        self.closed = True


class Broken:
    def act(self, decision: Decision) -> None:
        raise RuntimeError("relay on fire")

    def close(self) -> None:
        pass


@pytest.fixture
def recorder(tmp_path):
    return Recorder(tmp_path / "journal.sqlite")


@pytest.fixture
def gate(snapshot, journal, clock, recorder):
    return Gate(gate_id="lounge-1", snapshot=snapshot, journal=journal, policy=POLICY, outputs=[recorder], clock=clock)


def scan(raw, source="camera") -> Scan:
    return Scan(raw=raw, source=source)


def test_every_decision_is_journalled_before_any_output_acts(gate, recorder):
    for raw in demo.SCANS:
        decision = gate.handle(scan(raw))
        seen, journalled = recorder.seen[-1]
        assert seen is decision
        assert decision.event_id in journalled
    assert len(recorder.seen) == len(demo.SCANS)


def test_decision_carries_event_id_source_and_timings(gate, journal, clock):
    decision = gate.handle(scan("i-1001\r\n", "serial"))
    assert decision.verdict is Verdict.ADMIT
    assert decision.source == "serial"
    assert decision.timings["latency_ms"] >= decision.timings["decide_ms"] >= 0
    assert decision.timings["journal_ms"] >= 0
    [event] = journal.pending()
    assert event["id"] == decision.event_id
    assert event["source"] == "serial"
    assert event["raw"] == "i-1001"
    assert event["credential"] == "I-1001"
    assert event["verdict"] == "admit"
    assert event["customer_id"] == "I-1001"
    assert event["groups"] == ["Members"]
    assert event["cursor"] == "demo-1"
    assert event["gate"] == "lounge-1"


def test_the_demo_scans_give_one_of_each_verdict(gate):
    verdicts = [gate.handle(scan(raw)).verdict.value for raw in demo.SCANS]
    # the card URL is Jane again straight after her id: a repeat, not a second admit
    assert verdicts == ["admit", "repeat", "not_in_group", "inactive", "expired", "admit", "card_revoked",
                        "card_unassigned", "admit", "not_recognised"]


def test_a_failing_output_does_not_stop_the_others(snapshot, journal, clock, recorder, caplog):
    gate = Gate(gate_id="g", snapshot=snapshot, journal=journal, policy=POLICY, outputs=[Broken(), recorder],
                clock=clock)
    decision = gate.handle(scan("I-1002"))
    assert decision.verdict is Verdict.ADMIT
    assert recorder.seen[0][0] is decision
    assert "relay on fire" in caplog.text


class Flaky:
    """An output (a screen, a relay board) that fails until it is fixed."""

    def __init__(self) -> None:
        self.broken = True
        self.acted = 0

    def act(self, decision: Decision) -> None:
        if self.broken:
            raise RuntimeError("display lost\x1b[31m")
        self.acted += 1

    def close(self) -> None:
        pass


def test_a_failing_output_is_logged_once_shown_as_a_fault_and_cleared_when_it_works(snapshot, journal, clock,
                                                                                   recorder, caplog):
    flaky = Flaky()
    gate = Gate(gate_id="g", snapshot=snapshot, journal=journal, policy=POLICY, outputs=[flaky, recorder], clock=clock)
    for raw in ("I-1002", "I-9999", "I-1003"):
        gate.handle(scan(raw))
    assert len(recorder.seen) == 3  # the others still acted on every decision
    failures = [r for r in caplog.records if "Flaky failed" in r.getMessage()]
    assert len(failures) == 1  # once, not once per scan
    fault = gate.faults.active()["output_Flaky"]
    assert "display lost" in fault and "\x1b" not in fault
    flaky.broken = False
    gate.handle(scan("I-9999"))
    assert flaky.acted == 1 and "output_Flaky" not in gate.faults.active()
    flaky.broken = True
    gate.handle(scan("I-9999"))  # broken again: a new log line and the fault again
    assert len([r for r in caplog.records if "Flaky failed" in r.getMessage()]) == 2
    assert "output_Flaky" in gate.faults.active()


def test_repeat_memory(gate, clock, journal):
    assert gate.handle(scan("I-1001")).verdict is Verdict.ADMIT
    clock.advance(2)
    again = gate.handle(scan(demo.JANE_CARD))
    assert again.verdict is Verdict.REPEAT
    assert again.repeat_of_s == pytest.approx(2)
    clock.advance(2.9)
    assert gate.handle(scan("I-1001")).verdict is Verdict.REPEAT  # still within 5 s of the admit
    clock.advance(0.2)
    assert gate.handle(scan("I-1001")).verdict is Verdict.ADMIT  # 5.1 s after the admit
    assert gate.handle(scan("I-1002")).verdict is Verdict.ADMIT  # someone else meanwhile
    assert [e["verdict"] for e in journal.events()] == ["admit", "repeat", "repeat", "admit", "admit"]


def test_denials_are_not_remembered(gate):
    assert gate.handle(scan("I-1003")).verdict is Verdict.NOT_IN_GROUP
    assert gate.handle(scan("I-1003")).verdict is Verdict.NOT_IN_GROUP


def test_repeat_memory_stays_bounded(gate, clock):
    for i in range(1100):
        gate._remember_admit(Decision(Verdict.ADMIT, at=clock(), customer_id=f"I-{i}"))
        clock.advance(1)
    assert len(gate._recent_admits) <= 1000
    assert "I-1099" in gate._recent_admits


def test_a_rush_of_admits_within_the_window_is_not_walked_on_every_admit(gate, clock, monkeypatch):
    # 5,000 admits inside the repeat window (a rush, or a journal full of them read at start): each is still
    # remembered, and the memory is walked for old admits a few times, not once per admit after the 1,000th
    passes = []
    forget = gate._forget_old_admits
    monkeypatch.setattr(gate, "_forget_old_admits", lambda now: (passes.append(now), forget(now)))
    for i in range(5000):
        gate._remember_admit(Decision(Verdict.ADMIT, at=clock(), customer_id=f"I-{i}"))
    assert len(gate._recent_admits) == 5000 and len(passes) <= 4
    clock.advance(3600)  # all of them now older than any window: the next pass drops them
    for i in range(5000, 10_000):
        gate._remember_admit(Decision(Verdict.ADMIT, at=clock(), customer_id=f"I-{i}"))
    assert set(gate._recent_admits) == {f"I-{i}" for i in range(5000, 10_000)}


@pytest.mark.parametrize("source", sorted(MANUAL_SOURCES))
def test_manual_admits(gate, journal, recorder, source):
    decision = gate.handle(Scan(raw="ignored", source=source, note="Visitor with staff"))
    assert decision.verdict is Verdict.ADMIT
    assert decision.reason == "Visitor with staff"
    assert decision.source == source
    [event] = journal.pending()
    assert event["id"] == decision.event_id
    assert event["source"] == source
    assert event["raw"] == ""
    assert event["customer_id"] is None
    assert recorder.seen[0][0] is decision


def test_admit_manually_does_not_feed_the_repeat_memory(gate):
    gate.admit_manually("staff", "Forgot pass")
    assert gate._recent_admits == {}
    assert gate.handle(scan("I-1001")).verdict is Verdict.ADMIT


def test_bad_bytes_are_a_verdict_and_journalled_readably(gate, journal):
    decision = gate.handle(scan(b"I-10\xff\x0001", "serial"))
    assert decision.verdict is Verdict.NOT_RECOGNISED
    [event] = journal.pending()
    assert event["verdict"] == "not_recognised"
    assert "\x00" not in event["raw"]
    event["raw"].encode("utf-8")


def test_passage_and_alarms_are_journalled(gate, journal):
    decision = gate.handle(scan("I-1001"))
    journal.mark_sent([decision.event_id], gate.clock())
    gate.record_passage(decision.event_id, True)
    alarm = gate.record_alarm("door_forced", "Door opened without an admit")
    pending = {e["id"]: e for e in journal.pending()}
    assert pending[decision.event_id]["passed"] is True  # reported again, now with the sensor's word
    assert pending[alarm]["verdict"] == "door_forced"
    assert pending[alarm]["source"] == "door"


def test_run_loop_takes_scans_from_threads_in_order(gate, recorder):
    stop, idle = threading.Event(), threading.Event()
    ticks = []

    def feed() -> None:
        for raw in ["I-1002", "I-1003", "O-2001"]:
            gate.submit(scan(raw, "serial"))
        idle.set()

    threading.Thread(target=feed).start()
    gate.run_loop(stop, tick=lambda: ticks.append(1), tick_s=0.01, until_idle=idle)
    assert [d.credential for d, _ in recorder.seen] == ["I-1002", "I-1003", "O-2001"]
    assert gate.decided == 3
    assert ticks


def test_run_loop_stops_when_told(gate):
    stop = threading.Event()
    stop.set()
    gate.submit(scan("I-1001"))
    gate.run_loop(stop, tick_s=0.01)
    assert gate.decided == 0
    assert gate.scans.qsize() == 1


def test_a_full_queue_drops_rather_than_blocks(gate, caplog):
    for _ in range(gate.scans.maxsize + 5):
        gate.submit(scan("I-1001"))
    assert gate.scans.qsize() == gate.scans.maxsize
    assert "queue full" in caplog.text
