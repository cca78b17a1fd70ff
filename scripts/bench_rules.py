"""Benchmark of the access rules: decision p99 with rules on vs off, and the start-up cost of the counts.

Run through ./scripts/bench rules [--customers N] [--events N] [--samples N] [--runs N] [--workdir DIR].
A snapshot of N customers (each with a card) and a journal of N events over the last 30 days;
then, per run:
  - the time to rebuild the counts from the journal (Counts.rebuild, what `kiosk run` does on start),
    with rules off (only the last hour is read) and on (the whole journal), and the memory they hold;
  - `decide()` for random customers with rules off (no [rules]) and rules on (hours, two limits, a
    minimum interval, capacity, anti-passback, all passing so the whole chain runs), the two
    interleaved call by call so both see the same machine;
  - Counts.record, the per-decision update the gate does after journalling;
  - the whole scan, Gate.handle (parse, decide, journal, count), rules off and on, interleaved.
BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, time as clock_time, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_core import build_lookup_snapshot, customer_id, machine, percentile  # noqa: E402

from kiosk.access import AccessRules, parse_hours, parse_limits  # noqa: E402
from kiosk.counts import Counts, history_since, punch_cards  # noqa: E402
from kiosk.credential import parse  # noqa: E402
from kiosk.gate import Gate  # noqa: E402
from kiosk.journal import Journal, iso, new_event_id  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.rules import Policy, decide  # noqa: E402
from kiosk.snapshot import SnapshotStore  # noqa: E402

NOW = datetime.now(timezone.utc).replace(microsecond=0)
RULES = AccessRules(hours=parse_hours(["members: daily 00:00-24:00"]), day_starts=clock_time(4),
                    limits=parse_limits(["members: 1000/day", "members: 5000/month"]), min_interval_s=1,
                    capacity=10_000_000, passback=True, passback_min=1, occupancy_reset=clock_time(4))


def build_journal(path: Path, customers: int, events: int) -> None:
    """`events` journal rows over the last 30 days: 80 % admits, the rest denials and exit presses."""
    if path.exists():
        return
    started = time.perf_counter()
    journal = Journal(path)
    rng = random.Random(11)
    span = 30 * 86400
    rows = []
    for n in range(events):
        at = NOW - timedelta(seconds=span * (events - n) / events)
        who = customer_id(rng.randrange(customers))
        kind = rng.random()
        verdict, source, raw = ("admit", "camera", who) if kind < 0.8 else (
            ("not_in_group", "camera", who) if kind < 0.95 else ("admit", "exit_button", ""))
        rows.append((new_event_id(), iso(at), "bench", source, raw, raw, verdict, who if raw else None, "[]", "bench",
                     None, "", "sent"))
    journal.db.execute("BEGIN")
    journal.db.executemany("INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups,"
                           " cursor, passed, reason, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    journal.db.execute("COMMIT")
    journal.close()
    print(f"(wrote a {events:,}-event journal in {time.perf_counter() - started:.1f} s, "
          f"{path.stat().st_size / 1e6:.0f} MB)")


def rss_mb() -> float:
    """Resident memory now (not the peak: building the journal above peaks higher than the counts)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def run_once(run: int, snapshot: SnapshotStore, snapshot_path: Path, journal_path: Path, customers: int,
             samples: int) -> dict[str, float]:
    # what `kiosk run` reads at start (kiosk.counts.history_since): rules off, the last hour; a daily
    # limit only, the last two days; RULES (a monthly limit), the last 33 days, here all of it
    started = time.perf_counter()
    Counts.rebuild(journal_path, AccessRules(), timezone.utc, since=history_since(AccessRules(), set(), NOW))
    rebuild_off_s = time.perf_counter() - started
    daily = AccessRules(limits=parse_limits(["members: 1/day"]))
    started = time.perf_counter()
    Counts.rebuild(journal_path, daily, timezone.utc, since=history_since(daily, set(), NOW))
    rebuild_day_s = time.perf_counter() - started
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    punch = punch_cards(snapshot_path)
    counts = Counts.rebuild(journal_path, RULES, timezone.utc, punch, since=history_since(RULES, punch, NOW))
    rebuild_s = time.perf_counter() - started
    grown = rss_mb() - before
    rebuilt_events = counts.events
    off, on = Policy(tz=timezone.utc), Policy(tz=timezone.utc, access=RULES)
    rng = random.Random(run)
    picks = [parse(customer_id(rng.randrange(customers))) for _ in range(samples)]
    later = NOW + timedelta(days=1)  # nobody is "inside" or within the minimum interval any more
    times = {"off": [], "on": []}
    verdicts = {"off": set(), "on": set()}
    for cred in picks[:500]:  # warm-up
        decide(cred, snapshot, off, later)
        decide(cred, snapshot, on, later, None, counts)
    for cred in picks:
        t = time.perf_counter_ns()
        d = decide(cred, snapshot, off, later)
        times["off"].append((time.perf_counter_ns() - t) / 1e3)
        verdicts["off"].add(d.verdict.value)
        t = time.perf_counter_ns()
        d = decide(cred, snapshot, on, later, None, counts)
        times["on"].append((time.perf_counter_ns() - t) / 1e3)
        verdicts["on"].add(d.verdict.value)
    if verdicts != {"off": {"admit"}, "on": {"admit"}}:
        raise SystemExit(f"expected admits only, got {verdicts}")
    record = []
    for cred in picks:
        t = time.perf_counter_ns()
        counts.record(at=later, verdict="admit", source="camera", customer_id=cred.value, credential=cred.value)
        record.append((time.perf_counter_ns() - t) / 1e3)
    scan = whole_scan(snapshot, counts, customers, samples // 4, run)
    out = {"rebuild_s": rebuild_s, "rebuild_off_s": rebuild_off_s, "rebuild_day_s": rebuild_day_s, **scan,
           "rss_growth_mb": grown, "events": rebuilt_events, "record_p99": percentile(record, 99)}
    for side in ("off", "on"):
        out[f"{side}_p50"] = statistics.median(times[side])
        out[f"{side}_p99"] = percentile(times[side], 99)
    return out


def whole_scan(snapshot: SnapshotStore, counts: Counts, customers: int, samples: int, run: int) -> dict[str, float]:
    """Gate.handle (parse, decide, journal to a WAL file, count) with rules off and on, interleaved."""
    later = [NOW + timedelta(days=1)]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rules-scan-") as tmp:
        gates = {}
        for side, policy, side_counts in (("off", Policy(tz=timezone.utc), None),
                                          ("on", Policy(tz=timezone.utc, access=RULES), counts)):
            gates[side] = Gate(gate_id="bench", snapshot=snapshot, journal=Journal(Path(tmp) / f"{side}.sqlite"),
                               policy=policy, clock=lambda: later[0], counts=side_counts)
        rng = random.Random(100 + run)
        times: dict[str, list[float]] = {"off": [], "on": []}
        try:
            for n in range(samples + 200):
                text = customer_id(rng.randrange(customers))
                later[0] += timedelta(seconds=2)
                for side, gate in gates.items():
                    t = time.perf_counter_ns()
                    gate.handle(Scan(raw=text, source="bench"))
                    if n >= 200:  # after a warm-up
                        times[side].append((time.perf_counter_ns() - t) / 1e3)
        finally:
            for gate in gates.values():
                gate.journal.close()
    for side in ("off", "on"):
        out[f"scan_{side}_p50"] = statistics.median(times[side])
        out[f"scan_{side}_p99"] = percentile(times[side], 99)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the snapshot and journal here between runs")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        work = args.workdir or Path(tmp)
        snapshot_path = work / f"rules-{args.customers}" / "snapshot.sqlite"
        journal_path = work / f"rules-{args.customers}" / f"journal-{args.events}.sqlite"
        snapshot_path.parent.mkdir(parents=True, exist_ok=True)
        build_lookup_snapshot(snapshot_path, args.customers)
        build_journal(journal_path, args.customers, args.events)
        snapshot = SnapshotStore(snapshot_path)
        try:
            print(f"\n## Rules at {args.customers:,} customers, {args.events:,} journal events, "
                  f"{args.samples:,} decisions per side per run (µs per decide())")
            print(f"{'run':>3} {'start off':>9} {'start 1/day':>11} {'start on':>9} {'RSS+':>7} {'off p50':>8} "
                  f"{'off p99':>8} {'on p50':>8} {'on p99':>8} {'on/off p99':>10} {'record p99':>10}")
            results = []
            for run in range(1, args.runs + 1):
                r = run_once(run, snapshot, snapshot_path, journal_path, args.customers, args.samples)
                results.append(r)
                print(f"{run:>3} {r['rebuild_off_s']:>8.3f}s {r['rebuild_day_s']:>10.3f}s {r['rebuild_s']:>8.2f}s "
                      f"{r['rss_growth_mb']:>6.0f}M {r['off_p50']:>8.1f} {r['off_p99']:>8.1f} {r['on_p50']:>8.1f} "
                      f"{r['on_p99']:>8.1f} {r['on_p99'] / r['off_p99']:>10.2f} {r['record_p99']:>10.1f}")
            print(f"(counts rebuilt from {results[-1]['events']:,} admits and corrections)")
            print(f"\n## Whole scan (Gate.handle: parse, decide, journal, count), µs, {args.samples // 4:,} "
                  "scans a side")
            print(f"{'run':>3} {'off p50':>8} {'off p99':>8} {'on p50':>8} {'on p99':>8} {'on/off p99':>10}")
            for run, r in enumerate(results, 1):
                print(f"{run:>3} {r['scan_off_p50']:>8.1f} {r['scan_off_p99']:>8.1f} {r['scan_on_p50']:>8.1f} "
                      f"{r['scan_on_p99']:>8.1f} {r['scan_on_p99'] / r['scan_off_p99']:>10.2f}")
        finally:
            snapshot.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
