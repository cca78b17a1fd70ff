#!/usr/bin/env python3
"""Scan p99 while the uploader drains a backlog (issue 15: moves by <= 0.5 ms).

The reference upstream runs in its own process on 127.0.0.1. Per run: a kiosk with a fresh
journal holding `--events` pending events decides a scan every 100 ms through `Gate.handle`
(journal append + decide + outputs), with nothing draining (the floor, side by side in the same
run: `--scans` before the drain and as many after it), and while the backlog is reported, as `kiosk run`
reports it (`Upstream.start`): by its reporter process (`--drain process`, upstream.reporter's default) or
its reporter thread (`--drain thread`); or by `kiosk sync` run beside it (`--drain sync`). Each
acknowledges into the journal's acknowledgements file.
Prints both p99s, the difference and the ratio, per run and min/median/max over `--runs`.

    ./scripts/bench drain [--events N] [--runs N] [--scans N] [--drain thread|process]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_sync import KIOSK, TOKEN, Server, write_config  # noqa: E402

from kiosk import compose, demo  # noqa: E402
from kiosk.app import App  # noqa: E402
from kiosk.config import Config, validate  # noqa: E402
from kiosk.journal import JournalKeeper  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.upstream.reference import RefStore  # noqa: E402

SPINNER_NICE = 0  # --upstream-nice: the reference's spinners as nice as the upstream stand-in
PIN = False  # --pin: the scanning thread alone on CPU 0, every other thread and process on CPU 1
TEXTS = ["I-1001", "I-1002", "I-1003", "O-2001", "HELLO-WORLD", demo.PIET_VIP]


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98]


def scan_every_100ms(app: App, stop: threading.Event, samples: list[tuple[float, float]], n: int | None = None) -> None:
    """Scan every 100 ms; samples of (whole Gate.handle, its journal append) in ms."""
    i = 0
    if PIN:
        os.sched_setaffinity(0, {0})  # this thread only: the gate's
    while not stop.is_set() and (n is None or i < n):
        t = time.perf_counter()
        decision = app.gate.handle(Scan(TEXTS[i % len(TEXTS)], "stdin"))
        samples.append(((time.perf_counter() - t) * 1000, decision.timings["journal_ms"]))
        i += 1
        time.sleep(max(0.0, 0.1 - (time.perf_counter() - t)))


def backlog(app: App, events: int) -> None:
    now = datetime.now(timezone.utc)
    rows = [(str(uuid.uuid4()), (now + timedelta(milliseconds=i)).isoformat(timespec="milliseconds")[:23] + "Z",
             "lounge-1", "camera", f"I-{i:07d}", f"I-{i:07d}", "admit", f"I-{i:07d}", '["members"]', "c")
            for i in range(events)]
    with app.journal._lock:  # setup only: bulk-load the backlog in one transaction
        app.journal.db.execute("BEGIN")
        app.journal.db.executemany("INSERT INTO events (id, at, gate, source, raw, credential, verdict,"
                                   " customer_id, groups, cursor) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        app.journal.db.execute("COMMIT")
        # The load's WAL is folded now, so no scan below pays for checkpointing it.
        app.journal.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def one_run(work: Path, server: Server, token_file: Path, events: int, scans: int,
            drain: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float,
                                 list[tuple[float, float]]]:
    """(idle samples, samples while draining, drain seconds, samples while every CPU was busy)."""
    state = work / "drain-state"
    shutil.rmtree(state, ignore_errors=True)
    values = {"state_dir": str(state), "device_id": "bench", "upstream": {
        "url": server.url, "token_file": str(token_file), "sync_interval_s": 3600, "heartbeat_s": 10,
        "timeout_s": 10, "reporter": "thread" if drain == "sync" else drain}}
    app = App(Config(validate(values, "bench"), "bench"))
    up = compose.upstream(app)
    keeper = JournalKeeper(app.journal)  # as `kiosk run` has (compose.run): the journal's checkpoints off the scans
    compose.quick_thread_switches()  # and its GIL switch interval
    try:
        up.sync_once()
        backlog(app, events)
        keeper.start()
        scan_every_100ms(app, threading.Event(), [], 10)  # warm-up: first reads of pages and code
        idle: list[tuple[float, float]] = []
        scan_every_100ms(app, threading.Event(), idle, scans)
        stop = threading.Event()
        during: list[tuple[float, float]] = []
        scanner = threading.Thread(target=scan_every_100ms, args=(app, stop, during))
        started = time.monotonic()
        if drain != "sync":
            up.start()
            scanner.start()
            while app.journal.counts()["pending"] > 0:
                time.sleep(0.05)
        else:
            config = write_config(work / "drain.toml", state, server.url, token_file, sync_interval_s=3600)
            scanner.start()
            proc = subprocess.run([*KIOSK, "sync", "--json", "--config", str(config)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"kiosk sync failed ({proc.returncode}): {proc.stdout} {proc.stderr[-2000:]}")
        drained = time.monotonic() - started
        stop.set()
        scanner.join()
        # The floor again after the drain: a floor measured only before it would leave out whatever the
        # gate's own writes cost once they have piled up (as SQLite's own checkpoints did, BENCHMARKS.md).
        after: list[tuple[float, float]] = []
        scan_every_100ms(app, threading.Event(), after, scans)
        print(f"  idle p99 before the drain {p99([s[0] for s in idle]):.2f} ms, after it "
              f"{p99([s[0] for s in after]):.2f} ms", flush=True)
        idle += after
        # The reference for the drain: the same gate while every CPU is simply busy for as long as the drain
        # took (one `while 1: pass` process per CPU, nothing draining): what CPU contention alone costs a scan.
        busy: list[tuple[float, float]] = []
        spin = f"import os; os.nice({SPINNER_NICE}); exec('while 1: pass')"
        spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)]
        try:
            stop = threading.Event()
            timer = threading.Timer(max(drained, 5.0), stop.set)
            timer.start()
            scan_every_100ms(app, stop, busy)
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
    finally:
        up.stop()
        keeper.stop()
        app.close()
    return idle, during, drained, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scans", type=int, default=150,
                        help="idle scans before the drain and again after it (the floor)")
    parser.add_argument("--drain", choices=["process", "thread", "sync"], default="process",
                        help="who reports the backlog: the kiosk's reporter process or thread (upstream.reporter), "
                             "or `kiosk sync` beside it")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kiosk-bench-drain")
    parser.add_argument("--upstream-dir", type=Path, default=None,
                        help="where the reference upstream keeps its SQLite (default: the workdir); a tmpfs such as "
                             "/dev/shm keeps its writes off the gate's disk, as a real upstream's are")
    parser.add_argument("--upstream-nice", type=int, default=0,
                        help="the upstream stand-in's niceness (10: it yields the CPU to the gate, as an upstream on "
                             "another machine takes none of it); the CPU-busy reference's spinners get the same")
    parser.add_argument("--pin", action="store_true",
                        help="the scanning thread alone on CPU 0; the upstream stand-in, the reporter and every other "
                             "thread on CPU 1 (as a gate with cores to spare, its upstream elsewhere)")
    args = parser.parse_args()
    global PIN, SPINNER_NICE
    PIN, SPINNER_NICE = args.pin, args.upstream_nice
    if PIN:
        os.sched_setaffinity(0, {1})  # this (main) thread, and so every thread and process started from it
    args.workdir.mkdir(parents=True, exist_ok=True)
    token_file = args.workdir / "token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    upstream_dir = args.upstream_dir or args.workdir
    upstream_dir.mkdir(parents=True, exist_ok=True)
    db = upstream_dir / "upstream.sqlite"
    print(f"bench_drain on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}: {args.events:,} events, "
          f"{args.runs} runs, drained by a {args.drain}", flush=True)
    deltas, ratios, idles, durings, journal_idle, journal_during, busies = [], [], [], [], [], [], []
    for run in range(args.runs):
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        RefStore(db).replace(demo.records(date.today()))
        server = Server(db, token_file, args.workdir / "upstream.log")
        if args.upstream_nice:
            os.setpriority(os.PRIO_PROCESS, server.proc.pid, args.upstream_nice)
        try:
            idle_samples, during_samples, drained, busy_samples = one_run(
                args.workdir, server, token_file, args.events, args.scans, args.drain)
        finally:
            server.stop()
        stored = RefStore(db).scan_count()
        idle, during = p99([s[0] for s in idle_samples]), p99([s[0] for s in during_samples])
        busies.append(p99([s[0] for s in busy_samples]) - idle)
        # The journal append alone: where the old acknowledgements made a scan wait for their lock.
        journal_idle.append(p99([s[1] for s in idle_samples]))
        journal_during.append(p99([s[1] for s in during_samples]))
        idles.append(idle)
        durings.append(during)
        deltas.append(during - idle)
        ratios.append(during / idle)
        print(f"run {run + 1}: scan p99 idle {idle:.2f} ms, draining {during:.2f} ms ({len(during_samples)} scans): "
              f"{during - idle:+.2f} ms, ratio {during / idle:.2f}; journal append p99 {journal_idle[-1]:.2f} -> "
              f"{journal_during[-1]:.2f} ms; drained in {drained:.1f} s, upstream holds {stored:,} scans; every CPU "
              f"busy instead: {busies[-1]:+.2f} ms", flush=True)

    def mmm(xs: list[float], fmt: str) -> str:
        return "/".join(format(x, fmt) for x in (min(xs), statistics.median(xs), max(xs)))

    print(f"scan p99 min/median/max: idle {mmm(idles, '.2f')} ms, draining {mmm(durings, '.2f')} ms, "
          f"difference {mmm(deltas, '+.2f')} ms (goal <= +0.5 ms), ratio {mmm(ratios, '.2f')}; journal append p99 "
          f"idle {mmm(journal_idle, '.2f')} ms, draining {mmm(journal_during, '.2f')} ms; the reference, every CPU "
          f"busy with a spinner for as long and nothing draining: {mmm(busies, '+.2f')} ms")


if __name__ == "__main__":
    main()
