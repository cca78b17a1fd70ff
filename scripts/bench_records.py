"""Decision latency for hostile records against a plain one: scan -> decide -> journal -> log, events, screen frame.

Run through ./scripts/bench records [--scans N] [--size WxH]. Each scan is timed from `Gate.handle` to the end
of every output, one of which draws the frame the screen would show (pygame, SDL dummy driver), so a name
that is slow to fit shows here. Cases:

  plain         Jane Smith, two groups (the reference)
  at the caps   a 200-character name, 100 groups of 128 characters: the largest record the checks accept
  old snapshot  a 60,000-character name full of NUL and escape sequences and 10,000 groups, written into
                the snapshot file directly, as a snapshot from before the record checks could hold it

Prints p50 / p99 / max in ms and each case's p50 and p99 as a multiple of the plain case's.

`--find SNAPSHOT` times `SnapshotStore.find` instead, on a snapshot already built (e.g. the 1M-customer
one `./scripts/bench core --only import` leaves in its workdir: customers Last<i>, First<i % 997>).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pygame  # noqa: E402

from hardware import screen_render  # noqa: E402
from kiosk import demo  # noqa: E402
from kiosk.display import Display  # noqa: E402
from kiosk.gate import Gate  # noqa: E402
from kiosk.i18n import Messages  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.outputs import DecisionLog, EventPrinter  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.records import MAX_ID, MAX_ITEMS, MAX_NAME  # noqa: E402
from kiosk.rules import Policy  # noqa: E402
from kiosk.snapshot import SnapshotStore, load_records  # noqa: E402

NOW = datetime.now(timezone.utc)


class Frames:
    """Draws each decision's frame, as the screen does on its next tick."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.display = Display(result_s=3, long_press_s=2, pin_hash="")

    def act(self, decision) -> None:
        t = time.monotonic()
        self.display.show(decision, t)
        scene = screen_render.Scene(display=self.display, msg=Messages("en"), gate_name="Members' Lounge", now=t,
                                    wall=NOW, tz=timezone.utc, selected_groups=("Members",))
        screen_render.render(scene, self.size)

    def close(self) -> None:
        pass


def snapshot(path: Path) -> None:
    groups = [f"g{i:03}-" + "W" * (MAX_ID - 5) for i in range(MAX_ITEMS)]
    records = demo.records(NOW.date()) + [{"type": "group", "id": g, "name": g} for g in groups] + [
        {"type": "customer", "id": "I-7001", "first_name": "W" * (MAX_NAME // 2), "last_name": "Wm " * (MAX_NAME // 3),
         "groups": ["members", *groups[:MAX_ITEMS - 1]]},
        {"type": "customer", "id": "I-7002", "first_name": "Old", "last_name": "Record", "groups": ["members"]},
    ]
    load_records(path, records, {"cursor": "bench", "synced_at": NOW.isoformat(), "source": "demo"})
    hostile = ("Jane\x00Smith\x1b]0;owned\x07 \u202e" * 3000)[:60_000]
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE customers SET first_name = ?, last_name = ?, groups = ? WHERE key = 'I-7002'",
                   (hostile, hostile, json.dumps(["members"] + [f"x\x1b{i}" for i in range(10_000)])))
    db.close()


def measure(gate: Gate, raw: str, scans: int) -> list[float]:
    for _ in range(10):
        gate.handle(Scan(raw=raw, source="bench"))
    times = []
    for _ in range(scans):
        started = time.perf_counter()
        gate.handle(Scan(raw=raw, source="bench"))
        times.append((time.perf_counter() - started) * 1000)
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


FIND_QUERIES = ("Last123456, First825", "First825 Last123456", "Last123456 First825", "Last12345", "last99999",
                "m123456@example.org", "I-0123456", "1234 AB", "Nobody Here")


def bench_find(path: Path, runs: int) -> None:
    store = SnapshotStore(path)
    print(f"\n`SnapshotStore.find` on {path} ({store.counts()['customers']:,} customers), {runs} calls per query")
    print("\n| query | found | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for query in FIND_QUERIES:
        found = len(store.find(query))
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            store.find(query)
            times.append((time.perf_counter() - started) * 1000)
        print(f"| `{query}` | {found} | {pct(times, 50):.3f} | {pct(times, 99):.3f} | {max(times):.3f} |")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=300, help="timed scans per case")
    parser.add_argument("--size", default="800x480", help="screen size the frames are drawn at")
    parser.add_argument("--find", metavar="SNAPSHOT", help="time `find` on this snapshot instead")
    args = parser.parse_args()
    if args.find:
        bench_find(Path(args.find), max(args.scans, 1))
        return 0
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"# {platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"pygame {pygame.version.ver}; {args.scans} scans per case, frames {size[0]}x{size[1]}")
    pygame.font.init()
    # the decision log at INFO goes through a real handler (formatting included), to /dev/null
    devnull = open(os.devnull, "w")
    handler = logging.StreamHandler(devnull)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-records-") as tmp:
        path = Path(tmp) / "snapshot.sqlite"
        snapshot(path)
        store = SnapshotStore(path)
        journal = Journal(Path(tmp) / "journal.sqlite")
        gate = Gate(gate_id="bench", snapshot=store, journal=journal, policy=Policy(repeat_window_s=0),
                    outputs=[DecisionLog(), EventPrinter("bench", devnull), Frames(size)])
        results = {}
        for label, raw in (("plain", "I-1001"), ("at the caps", "I-7001"), ("old snapshot", "I-7002")):
            results[label] = measure(gate, raw, args.scans)
        journal.close()
        store.close()
    plain50, plain99 = pct(results["plain"], 50), pct(results["plain"], 99)
    print("\n| record | p50 ms | p99 ms | max ms | p50 / plain | p99 / plain |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, times in results.items():
        p50, p99 = pct(times, 50), pct(times, 99)
        print(f"| {label} | {p50:.2f} | {p99:.2f} | {max(times):.2f} | {p50 / plain50:.2f} | {p99 / plain99:.2f} |")
    print(f"\nmean plain {statistics.mean(results['plain']):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
