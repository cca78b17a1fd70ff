#!/usr/bin/env python3
"""Upstream benchmarks (issue 5), against the reference upstream on loopback in its own process.

1. Full sync of 1,000,000 customers + 200,000 cards, NDJSON against the snapshot file (docs/protocol.md),
   side by side: two upstream processes on the same data, one serving NDJSON only, one also serving the
   snapshot file (built once before the runs; its build time is printed apart); wall time and peak RSS of
   each `kiosk sync` process, alternated for --rounds rounds (goals: file <= 0.5x NDJSON, <= 100 MB).
2. A delta of 1,000 changes on top of it (goal: <= 1 s).
3. Draining 100,000 journal events (goal: <= 30 s) while a scan is decided every 100 ms, with
   the p99 decision latency unchanged within 2 ms of the same kiosk without an upstream.

    ./scripts/bench sync [--customers N] [--cards N] [--events N] [--rounds N] [--workdir DIR]
                         [--only full|delta|drain]

The upstream's database is built once in --workdir and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import os
import random
import shutil
import socket
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

from kiosk import compose, demo  # noqa: E402
from kiosk.app import App  # noqa: E402
from kiosk.config import Config, validate  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.upstream.reference import RefStore  # noqa: E402

KIOSK = [sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())"]
TOKEN = "bench-token"
FIRST = ["Jane", "Pieter", "Anna", "Mohammed", "Sofia", "Lucas", "Emma", "Noah", "Mila", "Daan", "Julia", "Sem"]
LAST = ["Smith", "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer", "Bos", "Peters"]
GROUPS = ["members", "patrons", "staff", "newsletter", "friends"]


def records(customers: int, cards: int):
    rng = random.Random(42)
    for g in GROUPS:
        yield {"type": "group", "id": g, "name": g.title(), "scannable": g != "newsletter"}
    today = date(2026, 1, 1)
    for i in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        yield {"type": "customer", "id": f"I-{i:07d}", "kind": "individual", "first_name": first, "last_name": last,
               "active": rng.random() > 0.05, "groups": rng.sample(GROUPS, rng.randint(0, 2)),
               "valid_until": (today + timedelta(days=rng.randint(-100, 700))).isoformat(),
               "email": f"{first.lower()}.{i}@example.org", "postcode": f"{1000 + i % 9000} AB"}
    for _ in range(cards):
        yield {"type": "card", "code": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
               "customer_id": f"I-{rng.randrange(customers):07d}",
               "card_type": rng.choice(["ID", "ID", "VIP", "GIFT"]),
               "revoked": rng.random() < 0.02, "batch": "2026"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The reference upstream as its own process, so its CPU and memory are not the kiosk's."""

    def __init__(self, db: Path, token_file: Path, log: Path, files: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/kiosk/v1"
        extra = ["--snapshot-files", str(files)] if files is not None else ["--no-snapshot-files"]
        self.proc = subprocess.Popen([*KIOSK, "upstream", "--db", str(db), "--token-file", str(token_file),
                                      "--port", str(self.port), *extra], stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"the reference upstream did not start; see {log}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def kiosk_sync(config: Path) -> tuple[dict, float, float]:
    """Run `kiosk sync --json`; (its report, wall seconds, peak RSS in MB)."""
    started = time.monotonic()
    proc = subprocess.Popen([*KIOSK, "sync", "--json", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"kiosk sync failed ({proc.returncode}): {out.decode()} {err.decode()[-2000:]}")
    return json.loads(out), wall, usage.ru_maxrss / 1024


def write_config(path: Path, state: Path, url: str, token_file: Path, **upstream) -> Path:
    lines = [f'state_dir = "{state}"', 'device_id = "bench"', "[upstream]", f'url = "{url}"',
             f'token_file = "{token_file}"', "timeout_s = 30"]
    lines += [f"{k} = {v}" for k, v in upstream.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for_file(server: Server, token: str, limit_s: float = 1800) -> float:
    """Ask /snapshot for a file until the upstream has built it (it answers NDJSON meanwhile); seconds waited."""
    import httpx

    from kiosk.snapshot_file import MANIFEST_TYPE

    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        with httpx.stream("GET", server.url + "/snapshot", timeout=30,
                          headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPE}) as response:
            if response.headers.get("content-type", "").startswith(MANIFEST_TYPE):
                return time.monotonic() - started
        time.sleep(1)
    raise SystemExit(f"the upstream built no snapshot file within {limit_s:.0f} s")


def bench_full_and_delta(work: Path, token_file: Path, customers: int, cards: int, only: str | None,
                         rounds: int) -> None:
    db = work / f"upstream-{customers}-{cards}.sqlite"
    if not db.exists():
        print(f"building the upstream's data ({customers:,} customers, {cards:,} cards) in {db} ...", flush=True)
        t = time.monotonic()
        RefStore(db.with_suffix(".tmp")).replace(records(customers, cards))
        os.replace(db.with_suffix(".tmp"), db)
        print(f"  built in {time.monotonic() - t:.0f} s (setup, not measured)")
    files = work / f"files-{customers}-{cards}"
    ndjson = Server(db, token_file, work / "upstream.log")
    filed = Server(db, token_file, work / "upstream-files.log", files)
    try:
        waited = wait_for_file(filed, TOKEN)
        packed = max(files.glob("*.sqlite.gz"), key=lambda p: p.stat().st_mtime)
        print(f"snapshot file ready after {waited:.0f} s (built once by the upstream, not measured below): "
              f"{packed.stat().st_size / 1e6:.0f} MB gzip'd")
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"full sync, {platform.platform()}, load {load} at the start; each run into an empty state directory")
        print(f"{'round':<6} {'NDJSON sync / process / RSS':>30} {'file sync / process / RSS':>30} "
              f"{'ratio (process)':>16}")
        ratios, worst_rss = [], 0.0
        config = {}
        expected: tuple[int, int] | None = None
        for k in range(1, rounds + 1):
            row = {}
            for name, server in (("ndjson", ndjson), ("file", filed)):
                state = work / f"kiosk-state-{name}"
                shutil.rmtree(state, ignore_errors=True)
                config[name] = write_config(work / f"kiosk-{name}.toml", state, server.url, token_file)
                report, wall, rss = kiosk_sync(config[name])
                sync = report["sync"]
                got = (sync["changed"]["customers"], sync["changed"]["cards"])  # deltas of earlier runs add a few
                expected = expected or got
                if sync["kind"] != "full" or got != expected or got[0] < customers * 0.99:
                    raise SystemExit(f"{name}: expected a full sync of {expected[0]:,} customers, got {sync}")
                row[name] = (sync["seconds"], wall, rss)
                worst_rss = max(worst_rss, rss)
            ratio = row["file"][1] / row["ndjson"][1]
            ratios.append(ratio)
            cells = ["{:.1f} s / {:.1f} s / {:.0f} MB".format(*row[n]) for n in ("ndjson", "file")]
            print(f"{k:<6} {cells[0]:>30} {cells[1]:>30} {ratio:>16.2f}", flush=True)
        ratios.sort()
        print(f"ratio file / NDJSON (whole `kiosk sync` process): min {ratios[0]:.2f}, median "
              f"{ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f} (goal <= 0.5); peak RSS {worst_rss:.0f} MB "
              f"(goal <= 100 MB); load {', '.join(f'{v:.2f}' for v in os.getloadavg())} at the end")
        if only == "full":
            return
        store = RefStore(db)
        rng = random.Random(int(time.time()))
        changes = []
        for i in rng.sample(range(customers), 600):
            changes.append({"type": "customer", "id": f"I-{i:07d}", "first_name": "Changed", "last_name": "Person",
                            "active": rng.random() > 0.5, "groups": ["members"]})
        for i in range(300):
            changes.append({"type": "customer", "id": f"I-N{time.time_ns()}{i}", "first_name": "New",
                            "last_name": "Member", "groups": ["members"]})
        for i in rng.sample(range(customers), 100):
            changes.append({"type": "delete", "entity": "customer", "id": f"I-{i:07d}"})
        store.put(changes)
        report, wall, rss = kiosk_sync(config["file"])  # a delta on top of the file: NDJSON, as the protocol has it
        sync = report["sync"]
        print(f"delta of {len(changes)} changes ({sync['kind']}): sync {sync['seconds']:.2f} s, "
              f"whole process {wall:.1f} s, peak RSS {rss:.0f} MB (goal <= 1 s)")
    finally:
        ndjson.stop()
        filed.stop()


def bench_drain(work: Path, token_file: Path, events: int) -> None:
    db = work / "upstream-demo.sqlite"
    db.unlink(missing_ok=True)
    Path(str(db) + "-wal").unlink(missing_ok=True)
    RefStore(db).replace(demo.records(date.today()))
    server = Server(db, token_file, work / "upstream-drain.log")
    state = work / "drain-state"
    shutil.rmtree(state, ignore_errors=True)
    try:
        values = {"state_dir": str(state), "device_id": "bench", "upstream": {
            "url": server.url, "token_file": str(token_file), "sync_interval_s": 3600, "heartbeat_s": 10,
            "timeout_s": 10}}
        app = App(Config(validate(values, "bench"), "bench"))
        up = compose.upstream(app)
        up.sync_once()
        texts = ["I-1001", "I-1002", "I-1003", "O-2001", "HELLO-WORLD", demo.PIET_VIP]

        def decide_every_100ms(stop: threading.Event, samples: list[float], n: int | None = None) -> None:
            i = 0
            while not stop.is_set() and (n is None or i < n):
                t = time.perf_counter()
                decision = app.gate.handle(Scan(texts[i % len(texts)], "stdin"))
                samples.append((time.perf_counter() - t) * 1000)
                if os.environ.get("BENCH_DEBUG") and samples[-1] > 5:
                    print(f"  slow scan {samples[-1]:.1f} ms: {decision.timings}")
                i += 1
                time.sleep(max(0.0, 0.1 - (time.perf_counter() - t)))

        now = datetime.now(timezone.utc)
        rows = [(str(uuid.uuid4()), (now + timedelta(milliseconds=i)).isoformat(timespec="milliseconds")[:23] + "Z",
                 "lounge-1", "camera", f"I-{i:07d}", f"I-{i:07d}", "admit", f"I-{i:07d}", '["members"]', "c")
                for i in range(events)]
        with app.journal._lock:  # setup only: bulk-load the backlog in one transaction
            app.journal.db.execute("BEGIN")
            app.journal.db.executemany("INSERT INTO events (id, at, gate, source, raw, credential, verdict,"
                                       " customer_id, groups, cursor) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            app.journal.db.execute("COMMIT")
        pending = app.journal.counts()["pending"]
        baseline: list[float] = []  # the same kiosk, the same backlog, nothing draining it
        decide_every_100ms(threading.Event(), baseline, 150)
        stop = threading.Event()
        during: list[float] = []
        scanner = threading.Thread(target=decide_every_100ms, args=(stop, during))
        started = time.monotonic()
        up.start()
        scanner.start()
        while app.journal.counts()["pending"] > 0:
            time.sleep(0.05)
        drained = time.monotonic() - started
        stop.set()
        scanner.join()
        up.stop()
        stored = RefStore(db).scan_count()
        app.close()

        def p99(xs: list[float]) -> float:
            return statistics.quantiles(xs, n=100)[98]

        print(f"drain: {pending:,} events reported in {drained:.1f} s (goal <= 30 s); upstream holds {stored:,} scans")
        print(f"decision latency every 100 ms: p50/p99 without upstream {statistics.median(baseline):.2f}/"
              f"{p99(baseline):.2f} ms ({len(baseline)} scans), while draining {statistics.median(during):.2f}/"
              f"{p99(during):.2f} ms ({len(during)} scans); p99 difference {p99(during) - p99(baseline):+.2f} ms "
              f"(goal within 2 ms)")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="full syncs of each kind, alternated")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kiosk-bench-sync")
    parser.add_argument("--only", choices=["full", "delta", "drain"])
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    token_file = args.workdir / "token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    print(f"bench_sync on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    if args.only in (None, "full", "delta"):
        bench_full_and_delta(args.workdir, token_file, args.customers, args.cards, args.only, args.rounds)
    if args.only in (None, "drain"):
        bench_drain(args.workdir, token_file, args.events)


if __name__ == "__main__":
    main()
