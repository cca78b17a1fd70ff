"""`kiosk replay`: a day of scans through the rules, to try a new rule on last Saturday's scans.

The input is a `kiosk journal --csv` export or lines of `ISO-TIME<TAB>scanned text`. Scans go in
time order through a real Gate whose journal lives in memory and whose counts start empty, so the
decisions are the ones a live gate would make; nothing is journalled on disk and nothing moves.
At a gate of a venue (docs/venue.md) the other gates' events in the venue's store, from the daily
reset before the first scan to the last scan, are counted in their places among the scans, as the
running gate counted them (union counts): a peer's admit can make a replayed scan `full`,
`already_inside` or `limit_reached`.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TextIO, cast

from .counts import OCCUPANCY_SET, Counts
from .gate import MANUAL_SOURCES, OCCUPANCY_SOURCE, Gate
from .journal import Journal
from .outputs import EventPrinter
from .ports import Scan
from .rules import Policy, SnapshotView
from .text import safe_text

if TYPE_CHECKING:
    from .venue.store import PeerStore

log = logging.getLogger(__name__)

_NEUTRALISED = ("'=", "'+", "'-", "'@", "'\t", "'\r")  # what csv_cell did to a formula-like cell


@dataclass(frozen=True)
class ReplayScan:
    at: datetime
    raw: str
    source: str = "replay"
    verdict: str = ""  # for journal rows that are not scans: occupancy_set
    line: int = 0


@dataclass
class ReplayInput:
    scans: list[ReplayScan]
    problems: list[str]  # one per line that could not be read, naming the line


def read_scans(text: str, name: str = "input") -> ReplayInput:
    """Scans from a journal CSV export or TSV lines, sorted by time (stable for equal times)."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    rows = _csv_rows(text) if first.startswith("id,at,") else _tsv_rows(text)
    scans: list[ReplayScan] = []
    problems: list[str] = []
    for line, fields in rows:
        try:
            scan = _scan(line, fields)
        except ValueError as exc:
            problems.append(f"{name}:{line}: {exc}")
            continue
        if scan is not None:
            scans.append(scan)
    scans.sort(key=lambda s: s.at)
    return ReplayInput(scans, problems)


def _csv_rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    for row in reader:
        yield reader.line_num, {k: (v or "") for k, v in row.items() if k}


def _tsv_rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        at, tab, raw = line.partition("\t")
        if not tab:
            yield n, {"at": at, "raw": None}  # type: ignore[dict-item]
            continue
        yield n, {"at": at, "raw": raw, "source": "replay", "verdict": ""}


def _scan(line: int, fields: dict[str, str]) -> ReplayScan | None:
    if fields.get("raw") is None:
        raise ValueError("expected ISO-TIME<TAB>scanned text")
    at = _time(fields.get("at", ""))
    raw, source, verdict = fields["raw"], fields.get("source") or "replay", fields.get("verdict", "")
    if raw.startswith(_NEUTRALISED):
        raw = raw[1:]
    if verdict == OCCUPANCY_SET:
        return ReplayScan(at, raw, source, verdict, line)
    if source == OCCUPANCY_SOURCE:
        return None  # the staff panel's corrections are the occupancy_set rows above; no other row is a scan
    if source in MANUAL_SOURCES:  # a staff admit or an exit press: its reason is what was journalled
        return ReplayScan(at, fields.get("reason", ""), source, "admit", line) if verdict in ("", "admit") else None
    if not raw and verdict:
        return None  # an alarm or another event that was not a scan
    return ReplayScan(at, raw, source, "", line)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{safe_text(text, 40)!r} is not an ISO time such as 2026-11-28T21:05:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _ReplayClock:
    def __init__(self) -> None:
        self.now = datetime.fromtimestamp(0, timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def replay(scans: list[ReplayScan], *, snapshot: SnapshotView, policy: Policy, gate_id: str,
           out: TextIO, peers: PeerStore | None = None, punch: frozenset[str] = frozenset()) -> Counter:
    """Decide each scan in order from empty counts, printing `--events` lines; returns verdict counts.
    `peers`: the venue's store of the other gates' events, each counted before the first scan at or after its
    time; `punch`: the snapshot's punch cards (a peer's admit with one is a punch)."""
    clock = _ReplayClock()
    journal = Journal(Path(":memory:"))  # the gate's real journal path, kept in memory: nothing lands on disk
    union = None
    waiting: list[dict[str, Any]] = []
    if peers is not None and scans:
        from .venue.union import VenueCounts

        union = VenueCounts(policy.access, policy.tz, punch)
        # popped from the end: the oldest first
        waiting = list(reversed(peers.events(union.period_start(scans[0].at), scans[-1].at)))
    gate = Gate(gate_id=gate_id, snapshot=snapshot, journal=journal, policy=policy, clock=clock,
                outputs=[EventPrinter(gate_id, out)], counts=cast(Counts, union))  # the running gate's union counts
    verdicts: Counter = Counter()
    try:
        for scan in scans:
            clock.now = scan.at
            due = []
            while waiting and datetime.fromisoformat(waiting[-1]["at"]) <= scan.at:
                due.append(waiting.pop())
            if due and union is not None:
                union.add_peer_events(due)
            if scan.verdict == OCCUPANCY_SET:
                try:
                    gate.set_occupancy(int(scan.raw), source=scan.source)
                except ValueError:
                    log.warning("line %d: occupancy_set with a bad count %r skipped", scan.line, scan.raw)
                continue
            decision = (gate.admit_manually(scan.source, scan.raw or "Manual admit") if scan.source in MANUAL_SOURCES
                        else gate.handle(Scan(raw=scan.raw, source=scan.source)))
            if decision is not None:  # None only for a staff occupancy correction, which read_scans never passes
                verdicts[decision.verdict.value] += 1
    finally:
        journal.close()
    return verdicts


def summary_table(verdicts: Counter) -> str:
    width = max([len("verdict"), *(len(v) for v in verdicts)])
    lines = [f"{'verdict':<{width}}  {'count':>6}"]
    lines += [f"{v:<{width}}  {n:>6}" for v, n in sorted(verdicts.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines.append(f"{'total':<{width}}  {sum(verdicts.values()):>6}")
    return "\n".join(lines)
