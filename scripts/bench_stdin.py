#!/usr/bin/env python3
"""What back-pressure and the journal's write boundary cost: `kiosk run --source stdin` on N lines,
and Journal.append one scan at a time.

    .venv/bin/python scripts/bench_stdin.py [--lines 20000] [--appends 5000] [--tree DIR]

`--tree DIR` runs the same measurement against another checkout (e.g. `git archive main`), for a
side-by-side ratio. Prints one JSON object: lines decided, wall seconds, appends per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_APPENDS = """
import sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
from kiosk.journal import Journal
n = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    journal = Journal(Path(tmp) / "journal.sqlite")
    at = datetime.now(timezone.utc)
    started = time.perf_counter()
    for i in range(n):
        journal.append(at=at, gate="g", source="stdin", raw=f"I-{i}", credential=f"I-{i}", verdict="admit",
                       customer_id=f"I-{i}", groups=["members"], cursor="c")
    print(n / (time.perf_counter() - started))
    journal.close()
"""


def run_stdin(tree: Path, lines: int) -> tuple[int, float]:
    from kiosk import demo  # the demo data of this tree; the run uses the tree under test

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        from datetime import datetime, timezone

        demo.seed(state / "snapshot.sqlite", datetime.now(timezone.utc))
        text = "".join(f"{demo.SCANS[i % len(demo.SCANS)]}\n" for i in range(lines))
        env = {**os.environ, "PYTHONPATH": str(tree)}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--source", "stdin", "--headless", "--events",
                               "--state-dir", str(state)], input=text, capture_output=True, text=True, env=env,
                              cwd=tree)
        seconds = time.perf_counter() - started
    return len(done.stdout.splitlines()), seconds


def appends_per_s(tree: Path, n: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", _APPENDS, str(n)], capture_output=True, text=True, env=env, cwd=tree,
                         check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--appends", type=int, default=5000)
    parser.add_argument("--tree", type=Path, default=ROOT)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    decided, seconds = run_stdin(args.tree, args.lines)
    rates = [appends_per_s(args.tree, args.appends) for _ in range(3)]
    print(json.dumps({"tree": str(args.tree), "lines": args.lines, "decided": decided, "run_s": round(seconds, 2),
                      "appends_per_s": round(statistics.median(rates))}))


if __name__ == "__main__":
    main()
