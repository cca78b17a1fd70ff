"""Benchmark of signed passes: verify cost against a bare Ed25519 verify, the whole scan with and
without a pass, and the QR size of the typical pass.

Run through ./scripts/bench passes [--runs N]. Each figure is measured side by side with its
reference in the same process, interleaved, so machine noise hits both alike. BENCHMARKS.md
records the figures ("Signed passes").
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zxingcpp  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from kiosk import demo, pass_keys, passes  # noqa: E402
from kiosk.credential import parse  # noqa: E402
from kiosk.gate import Gate  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.rules import Policy, decide  # noqa: E402
from kiosk.snapshot import SnapshotStore  # noqa: E402

SECRET = b"benchmark rotation secret 32 b.."


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def side_by_side(runs: int, cases: dict[str, Callable[[], object]]) -> dict[str, tuple[float, float]]:
    """ms per call, (median, p99), every case timed in turn within each round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm caches (key objects, sqlite pages)
        for _ in range(50):
            fn()
    for _ in range(runs):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: quantiles(s) for name, s in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000, help="calls per case (default 5000)")
    args = parser.parse_args()

    now = datetime.now(timezone.utc)
    today = now.date()
    key = passes.private_from_seed(bytes(range(32)))
    public = passes.public_bytes(key)
    static = passes.issue(key, 1, "I-KS22-363P", ("members", "patrons"), today, today + timedelta(days=29), 4242)
    rotating_base = passes.issue(key, 1, "I-KS22-363P", ("members", "patrons"), today, today + timedelta(days=29),
                                 4243, rotating=True)
    rotating = rotating_base + passes.code_for(SECRET, "I-KS22-363P", 4243, passes.step_of(now))
    p = passes.parse(static)
    bare_key = Ed25519PublicKey.from_public_bytes(public)
    settings = pass_keys.PassSettings(keys={1: public}, rotation_secret=SECRET, accept_steps=1)
    policy = Policy(groups=("members",), tz=timezone.utc, passes=settings, repeat_window_s=0)

    print(f"# {platform.machine()}, Python {platform.python_version()}, {platform.processor() or platform.system()}")
    with tempfile.TemporaryDirectory() as tmp:
        demo.seed(Path(tmp) / "snapshot.sqlite", now)
        store = SnapshotStore(Path(tmp) / "snapshot.sqlite")
        verify = side_by_side(args.runs, {
            "bare Ed25519 verify": lambda: bare_key.verify(p.signature, p.signed),
            "passes.verify": lambda: passes.verify(p, public),
            "parse + verify (static)": lambda: passes.verify(passes.parse(static), public),
        })
        decisions = side_by_side(args.runs, {
            "decide: customer id": lambda: decide(parse("I-1001"), store, policy, now),
            "decide: static pass": lambda: decide(parse(static), store, policy, now),
            "decide: rotating pass": lambda: decide(parse(rotating), store, policy, now),
        })
        journal = Journal(Path(tmp) / "journal.sqlite", keep_days=90, max_events=10_000_000)
        gate = Gate(gate_id="bench", snapshot=store, journal=journal, policy=policy, clock=lambda: now)
        scans = side_by_side(args.runs // 5, {
            "whole scan: customer id": lambda: gate.handle(Scan(raw="I-1001", source="camera")),
            "whole scan: static pass": lambda: gate.handle(Scan(raw=static, source="camera")),
        })
        journal.close()
        store.close()

    print(f"\n{'case':<28} {'median ms':>10} {'p99 ms':>9}")
    for table in (verify, decisions, scans):
        for name, (med, p99) in table.items():
            print(f"{name:<28} {med:>10.4f} {p99:>9.4f}")
    bare, ours = verify["bare Ed25519 verify"], verify["parse + verify (static)"]
    print(f"\nparse + verify / bare verify: median {ours[0] / bare[0]:.2f}x, p99 {ours[1] / bare[1]:.2f}x")
    base, pass_ = scans["whole scan: customer id"], scans["whole scan: static pass"]
    print(f"whole scan, pass / customer id: median {pass_[0] / base[0]:.2f}x, p99 {pass_[1] / base[1]:.2f}x")

    for name, text in (("static", static), ("rotating", rotating)):
        symbol = passes.qr_symbol(text)
        size = passes.qr_modules(symbol, quiet_zone=False).shape[0]
        version = zxingcpp.read_barcode(passes.qr_modules(symbol, scale=4)).extra["Version"]
        print(f"typical {name} pass: {len(text)} characters, QR version {version}-M, {size}x{size} modules")
    goal_ms = 0.2
    verdict = "met" if ours[0] <= goal_ms else "NOT met"
    print(f"goal: parse + verify <= {goal_ms} ms median: {verdict} ({ours[0]:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
