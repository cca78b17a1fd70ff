"""The pipeline: scan -> credential -> rules -> journal -> outputs.

One Gate per kiosk. Sources hand it scans from their threads (`submit`); the main loop
(`run_loop`) takes them in order, so decisions, the repeat memory and outputs are
single-threaded. Every decision is journalled before any output acts on it.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Protocol

from . import credential as credentials
from .access import GUEST_SOURCE, CountsView, guest_decision
from .counts import OCCUPANCY_SET, Counts
from .journal import Journal
from .model import Decision, Verdict
from .ports import Faults, Output, Scan
from .rules import Policy, SnapshotView, decide, repeat_key, used_pass_codes
from .text import safe_text

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Scans from these sources are not codes but a person's say-so: a staff admit, a request-to-exit press.
MANUAL_SOURCES = frozenset({"staff", "exit_button", "remote"})  # remote: the venue link's "open once"
# the staff panel's count correction, queued like a scan so it lands between decisions: raw "+1", "-1" or "0"
OCCUPANCY_SOURCE = "staff_occupancy"
FORGET_AT = 1000  # the repeat memory's size before its first pass over old admits


class GateCounts(CountsView, Protocol):
    """The counts the gate reads and keeps up to date: kiosk.counts.Counts over this gate's journal, or
    kiosk.venue.union.VenueCounts over the peers' events too."""

    def recent_admits(self, since: datetime) -> dict[str, datetime]: ...

    def record(self, *, at: datetime, verdict: str, source: str, customer_id: str | None, credential: str = "",
               punch: bool = False, raw: str = "") -> None: ...


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Gate:
    def __init__(self, *, gate_id: str, snapshot: SnapshotView, journal: Journal, policy: Policy,
                 outputs: Iterable[Output] = (), clock: Clock = utc_now, faults: Faults | None = None,
                 counts: GateCounts | None = None):
        self.gate_id = gate_id
        self.snapshot = snapshot
        self.journal = journal
        self.policy = policy
        self.outputs: list[Output] = list(outputs)
        self.clock = clock
        self.faults = faults or Faults()
        self.scans: "queue.Queue[Scan]" = queue.Queue(maxsize=1000)
        self._recent_admits: dict[str, datetime] = {}
        self._forget_at = FORGET_AT  # the size of the repeat memory at which old admits are dropped
        self.decided = 0
        self.dropped = 0  # scans from live sources dropped because the queue was full
        self.stopped = threading.Event()  # the loop has ended: nobody takes scans any more
        self._guest_host: Decision | None = None  # the member admitted last who may bring guests
        self._guests_used = 0
        self._failing_outputs: set[int] = set()  # id() of the outputs whose last act raised
        # the access rules' counts, rebuilt from the journal by the caller; they also restore the repeat memory
        self.counts: GateCounts = counts if counts is not None else Counts(policy.access, policy.tz)
        started = clock()
        self._recent_admits.update(self.counts.recent_admits(started - timedelta(seconds=policy.repeat_window_s)))
        since = started - timedelta(seconds=policy.passes.code_lifetime_s)
        self._recent_admits.update(used_pass_codes(
            ((e["raw"], datetime.fromisoformat(e["at"])) for e in journal.events(since=since)
             if e["verdict"] == "admit"),
            policy))

    # -- intake ------------------------------------------------------------------------
    def submit(self, scan: Scan) -> None:
        """For live sources (camera, scanners), from any thread: a full queue drops the scan (counted in
        `dropped` and status) rather than block a reader whose device would overflow instead."""
        try:
            self.scans.put_nowait(scan)
        except queue.Full:
            self.dropped += 1
            log.warning("scan queue full; dropped a scan from %s (%d dropped so far)", scan.source, self.dropped)

    def submit_waiting(self, scan: Scan) -> None:
        """For sources that can wait (a file on stdin, a folder of images): blocks while the queue is full,
        so nothing is dropped. Gives up only when the loop has ended."""
        while not self.stopped.is_set():
            try:
                self.scans.put(scan, timeout=0.2)
                return
            except queue.Full:
                continue

    def add_output(self, output: Output) -> None:
        self.outputs.append(output)

    # -- deciding ----------------------------------------------------------------------
    def handle(self, scan: Scan) -> Decision | None:
        """Decide one scan, journal it, then let every output act on it. Never raises for bad input.
        An occupancy correction (OCCUPANCY_SOURCE) is journalled too but decides nothing: None."""
        if scan.source == OCCUPANCY_SOURCE:
            self.correct_occupancy(scan.raw)
            return None
        if scan.source in MANUAL_SOURCES:
            return self.admit_manually(scan.source, scan.note or "Manual admit")
        guest_key = self.policy.access.guest_key
        if scan.source == GUEST_SOURCE or (guest_key and scan.raw.strip() == guest_key):
            return self.admit_guest()
        started = time.perf_counter()
        now = self.clock()
        cred = credentials.parse(scan.raw, self.policy.id_patterns)
        decision = decide(cred, self.snapshot, self.policy, now, self._recent_admits, self.counts)
        decided = time.perf_counter()
        return self._record_and_act(decision, scan, started, decided)

    def admit_manually(self, source: str, reason: str) -> Decision:
        """A staff admit or a request-to-exit press: journalled and acted on like a scan."""
        started = time.perf_counter()
        now = self.clock()
        scan = Scan(raw="", source=source, note=reason)
        decision = Decision(Verdict.ADMIT, at=now, reason=reason, cursor=self.snapshot.meta().get("cursor", ""))
        return self._record_and_act(decision, scan, started, time.perf_counter())

    def _record_and_act(self, decision: Decision, scan: Scan, started: float, decided: float) -> Decision:
        # the parser's raw: already trimmed of the scanner's CR/LF and made printable, and what --events shows.
        # While the journal cannot be written the event is held in memory (Journal.append) and the gate
        # still acts: a stuck or full disk must not lock people out or in.
        event_id = self.journal.append(
            at=decision.at, gate=self.gate_id, source=scan.source, raw=decision.raw, credential=decision.credential,
            verdict=decision.verdict.value, customer_id=decision.customer_id,
            groups=decision.groups, cursor=decision.cursor, reason=decision.reason)
        self.watch_journal()
        journalled = time.perf_counter()
        self.counts.record(at=decision.at, verdict=decision.verdict.value, source=scan.source,
                           customer_id=decision.customer_id, credential=decision.credential,
                           punch=decision.card_type == "PUNCH")
        if decision.verdict is Verdict.ADMIT and scan.source not in MANUAL_SOURCES and decision.customer_id:
            self._remember_admit(decision)
        if decision.guests:
            self._guest_host, self._guests_used = decision, 0
        decision = dataclasses.replace(decision, event_id=event_id, source=scan.source, timings={
            "decide_ms": (decided - started) * 1000,
            "journal_ms": (journalled - decided) * 1000,
            # Scan.received is time.monotonic(), stamped by the source as the text arrived
            "latency_ms": (time.monotonic() - scan.received) * 1000 if scan.received else None,
        })
        self.decided += 1
        for output in self.outputs:
            try:
                output.act(decision)
            except Exception as exc:
                self._output_failed(output, decision, exc)
            else:
                if id(output) in self._failing_outputs:
                    self._output_works(output)
        return decision

    def _output_failed(self, output: Output, decision: Decision, exc: Exception) -> None:
        """Logged once (not on every scan while it stays broken) and shown as a fault until it works again."""
        name = type(output).__name__
        if id(output) not in self._failing_outputs:
            self._failing_outputs.add(id(output))
            log.exception("output %s failed on a %s decision; the gate keeps deciding (not logged again until it "
                          "works)", name, decision.verdict.value)
        self.faults.set(f"output_{name}", f"{name} not working: {safe_text(f'{type(exc).__name__}: {exc}', 200)}")

    def _output_works(self, output: Output) -> None:
        self._failing_outputs.discard(id(output))
        log.info("output %s works again", type(output).__name__)
        self.faults.clear(f"output_{type(output).__name__}")

    def _remember_admit(self, decision: Decision) -> None:
        self._recent_admits[repeat_key(decision)] = decision.at
        if decision.code_key:  # a rotating pass's code admits once while it is acceptable
            self._recent_admits[decision.code_key] = decision.at
        if len(self._recent_admits) > self._forget_at:
            self._forget_old_admits(decision.at)

    def _forget_old_admits(self, now: datetime) -> None:
        """Drop the admits older than any window that reads them. The next pass waits until the memory has
        doubled, so a window that holds many admits (a rush, or a journal of them read at start) costs O(1)
        per admit, not a pass over all of them each time."""
        keep_s = max(self.policy.repeat_window_s, self.policy.passes.code_lifetime_s)
        horizon = now - timedelta(seconds=keep_s)
        self._recent_admits = {k: t for k, t in self._recent_admits.items() if t >= horizon}
        self._forget_at = max(FORGET_AT, 2 * len(self._recent_admits))

    def watch_journal(self) -> None:
        """Raise or clear the journal fault from what the journal says about itself."""
        journal = self.journal
        problems = []
        if journal.problem:
            problems.append(f"Journal not writable, {journal.held} decisions kept in memory ({journal.problem})")
        if journal.lost:
            problems.append(f"{journal.lost} decisions lost: more were waiting than the journal could hold")
        if journal.moved_aside is not None:
            problems.append(f"Journal was damaged: moved aside to {journal.moved_aside.name}, a new one started")
        if problems:
            self.faults.set("journal", "; ".join(problems))
        else:
            self.faults.clear("journal")

    # -- after the decision ------------------------------------------------------------
    def record_passage(self, event_id: str, passed: bool) -> None:
        self.journal.set_passed(event_id, passed)
        self.watch_journal()

    def record_alarm(self, kind: str, reason: str, source: str = "door") -> str:
        """Door forced, door held open...: journalled as an event with the alarm's code as verdict."""
        return self.journal.append(at=self.clock(), gate=self.gate_id, source=source, raw="", credential="",
                                   verdict=kind, customer_id=None, groups=(),
                                   cursor=self.snapshot.meta().get("cursor", ""), reason=reason)

    def admit_guest(self) -> Decision:
        """"+1 guest" (a screen button or the scanner's guest key) for the member admitted last."""
        started = time.perf_counter()
        decision = guest_decision(self._guest_host, self._guests_used, self.policy.access, self.counts, self.clock(),
                                  self.snapshot.meta().get("cursor", ""))
        if decision.admitted:
            self._guests_used += 1
        # journalled as a guest whichever button or scanner asked: the counts count guests by that source
        return self._record_and_act(decision, Scan(raw=decision.raw, source=GUEST_SOURCE), started,
                                    time.perf_counter())

    def set_occupancy(self, inside: int, source: str = "staff") -> str:
        """Staff correct the number inside the zone: journalled, then counted."""
        now = self.clock()
        event_id = self.journal.append(at=now, gate=self.gate_id, source=source, raw=str(inside), credential="",
                                       verdict=OCCUPANCY_SET, customer_id=None, groups=(),
                                       cursor=self.snapshot.meta().get("cursor", ""),
                                       reason=f"Occupancy set to {inside} by staff")
        self.counts.record(at=now, verdict=OCCUPANCY_SET, source=source, customer_id=None, raw=str(inside))
        return event_id

    def correct_occupancy(self, change: str | bytes) -> str | None:
        """The staff panel's "+1", "-1" (relative to the count now, so taps in a row add up) or "0".

        The panel sends text; bytes (a reader's raw payload routed here) are no correction."""
        inside = self.counts.occupancy(self.clock())
        targets = {"+1": inside + 1, "-1": max(0, inside - 1), "0": 0}
        target = targets.get(change.strip()) if isinstance(change, str) else None
        if target is None:
            log.warning("ignored an occupancy correction %r: expected +1, -1 or 0", safe_text(change, 20))
            return None
        return self.set_occupancy(target, source="staff")

    # -- the loop ----------------------------------------------------------------------
    def run_loop(self, stop: threading.Event, *, tick: Callable[[], None] | None = None, tick_s: float = 0.05,
                 until_idle: threading.Event | None = None) -> None:
        """Take scans in order until `stop` is set. `tick` runs at least every `tick_s` (screen, watchdog).

        `until_idle`: when set and the queue is empty, the loop ends (end of stdin / images).
        """
        try:
            while not stop.is_set():
                try:
                    scan = self.scans.get(timeout=tick_s)
                except queue.Empty:
                    scan = None
                if scan is not None:
                    self.handle(scan)
                elif until_idle is not None and until_idle.is_set() and self.scans.empty():
                    break
                if self.journal.problem:
                    self.journal.flush()
                    self.watch_journal()
                if tick is not None:
                    tick()
        finally:
            self.stopped.set()

