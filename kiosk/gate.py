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
from typing import Callable, Iterable

from . import credential as credentials
from .access import GUEST_SOURCE, guest_decision
from .counts import OCCUPANCY_SET, Counts
from .journal import Journal
from .model import Decision, Verdict
from .ports import Faults, Output, Scan
from .rules import Policy, SnapshotView, decide, repeat_key

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Scans from these sources are not codes but a person's say-so: a staff admit, a request-to-exit press.
MANUAL_SOURCES = frozenset({"staff", "exit_button", "remote"})  # remote: the venue link's "open once"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Gate:
    def __init__(self, *, gate_id: str, snapshot: SnapshotView, journal: Journal, policy: Policy,
                 outputs: Iterable[Output] = (), clock: Clock = utc_now, faults: Faults | None = None,
                 counts: Counts | None = None):
        self.gate_id = gate_id
        self.snapshot = snapshot
        self.journal = journal
        self.policy = policy
        self.outputs: list[Output] = list(outputs)
        self.clock = clock
        self.faults = faults or Faults()
        self.scans: "queue.Queue[Scan]" = queue.Queue(maxsize=1000)
        self._recent_admits: dict[str, datetime] = {}
        self.decided = 0
        self._guest_host: Decision | None = None  # the member admitted last who may bring guests
        self._guests_used = 0
        # the access rules' counts, rebuilt from the journal by the caller; they also restore the repeat memory
        self.counts = counts if counts is not None else Counts(policy.access, policy.tz)
        self._recent_admits.update(self.counts.recent_admits(clock() - timedelta(seconds=policy.repeat_window_s)))

    # -- intake ------------------------------------------------------------------------
    def submit(self, scan: Scan) -> None:
        """Called from any source thread. A full queue drops the scan rather than block a reader."""
        try:
            self.scans.put_nowait(scan)
        except queue.Full:
            log.warning("scan queue full; dropped a scan from %s", scan.source)

    def add_output(self, output: Output) -> None:
        self.outputs.append(output)

    # -- deciding ----------------------------------------------------------------------
    def handle(self, scan: Scan) -> Decision:
        """Decide one scan, journal it, then let every output act on it. Never raises for bad input."""
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
        # the parser's raw: already trimmed of the scanner's CR/LF and made printable, and what --events shows
        event_id = self.journal.append(
            at=decision.at, gate=self.gate_id, source=scan.source, raw=decision.raw, credential=decision.credential,
            verdict=decision.verdict.value, customer_id=decision.customer_id,
            groups=decision.groups, cursor=decision.cursor, reason=decision.reason)
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
            except Exception:
                log.exception("output %s failed on a %s decision", type(output).__name__, decision.verdict.value)
        return decision

    def _remember_admit(self, decision: Decision) -> None:
        self._recent_admits[repeat_key(decision)] = decision.at
        if decision.code_key:  # a rotating pass's code admits once while it is acceptable
            self._recent_admits[decision.code_key] = decision.at
        if len(self._recent_admits) > 1000:
            keep_s = max(self.policy.repeat_window_s, self.policy.passes.code_lifetime_s)
            horizon = decision.at - timedelta(seconds=keep_s)
            self._recent_admits = {k: t for k, t in self._recent_admits.items() if t >= horizon}

    # -- after the decision ------------------------------------------------------------
    def record_passage(self, event_id: str, passed: bool) -> None:
        self.journal.set_passed(event_id, passed)

    def record_alarm(self, kind: str, reason: str, source: str = "door") -> str:
        """Door forced, door held open...: journalled as an event with the alarm's code as verdict."""
        return self.journal.append(at=self.clock(), gate=self.gate_id, source=source, raw="", credential="",
                                   verdict=kind, customer_id=None, groups=(), cursor=self.snapshot.meta().get("cursor", ""),
                                   reason=reason)

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

    # -- the loop ----------------------------------------------------------------------
    def run_loop(self, stop: threading.Event, *, tick: Callable[[], None] | None = None, tick_s: float = 0.05,
                 until_idle: threading.Event | None = None) -> None:
        """Take scans in order until `stop` is set. `tick` runs at least every `tick_s` (screen, watchdog).

        `until_idle`: when set and the queue is empty, the loop ends (end of stdin / images).
        """
        while not stop.is_set():
            try:
                scan = self.scans.get(timeout=tick_s)
            except queue.Empty:
                scan = None
            if scan is not None:
                self.handle(scan)
            elif until_idle is not None and until_idle.is_set() and self.scans.empty():
                break
            if tick is not None:
                tick()

