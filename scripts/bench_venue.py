"""Benchmark of the venue link: from gate A's journal commit to gate B's counts including the event.

Run through ./scripts/bench venue [--events N] [--interval-ms MS] [--runs N].
A real Mosquitto on 127.0.0.1 (a free port), two VenueLinks in this process (so one clock times
both ends) with real journals, peers' stores and union counts. Per event: A journals it (the
time after the commit is t0) and wakes its link; B's link stores it and adds it to B's counts
(the time after that is t1). Side by side, the reference: a bare paho QoS 1 publish from one
client to another through the same broker (what MQTT itself costs on this machine).
Events are paced `--interval-ms` apart (a busy gate, not a flood). BENCHMARKS.md records the figures.

`--gates N` (issue 12: 10 gates at 20 scans/s for a minute): N gate processes on one venue, each a real
App (its own state dir, snapshot, journal) with a started venue link to the broker, and alongside them,
at the same time and rate, one more gate process without [venue] (the single-gate reference: it shares
the machine's load, so the difference is what the link costs a gate, chiefly taking the other gates'
events into its store and counts). Each scan's time is Gate.handle's (parse, decide, journal commit,
counts, outputs). Prints per gate p50/p99, the reference and the difference, and the CPU the gate's link
threads used per peer event it took in (paho's loop and the pump: they compete with the scan for the GIL).
`--late-read N` (no broker): what one scan's zone read costs when a peer's event arrived out of time order
and the gate's union counts hold N zone events (VenueCounts replays the zone then).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import paho.mqtt.client as mqtt  # noqa: E402
from bench_core import machine, percentile  # noqa: E402

from kiosk import compose  # noqa: E402
from kiosk.access import AccessRules  # noqa: E402
from kiosk.app import App  # noqa: E402
from kiosk.config import load_file  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
from kiosk.ports import Scan  # noqa: E402
from kiosk.venue.link import VenueLink  # noqa: E402
from kiosk.venue.settings import VenueSettings  # noqa: E402
from kiosk.venue.store import PeerStore  # noqa: E402
from kiosk.venue.union import VenueCounts  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings(port: int, gate: str) -> VenueSettings:
    return VenueSettings(host="127.0.0.1", port=port, tls=False, ca_file="", username="", password="", venue="bench",
                         gate=gate, zone="lounge", direction="in", heartbeat_s=30, home_assistant=False,
                         remote_open=False)


def now() -> datetime:
    return datetime.now(timezone.utc)


def kiosk_run(port: int, folder: Path, events: int, interval_s: float) -> list[float]:
    rules = AccessRules(zone="lounge", capacity=10_000, direction="in")
    arrived: dict[str, float] = {}
    done = threading.Event()
    links, stores = [], []
    journal_a = Journal(folder / "a-journal.sqlite")
    journal_b = Journal(folder / "b-journal.sqlite")
    store_b = PeerStore(folder / "b-venue.sqlite")
    counts_b = VenueCounts(rules, timezone.utc)

    def take(new: list[dict]) -> None:
        counts_b.add_peer_events(new)
        t = time.perf_counter()
        for e in new:
            arrived[e["id"]] = t
        if len(arrived) >= events:
            done.set()

    for gate, journal, store, hook in (("a", journal_a, PeerStore(folder / "a-venue.sqlite"), None),
                                       ("b", journal_b, store_b, take)):
        link = VenueLink(settings(port, gate), journal_path=journal.path, store=store, state={},
                         status=lambda: {"unreported": 0, "faults": {}, "occupancy": {}}, clock=now,
                         on_peer_events=hook)
        link.start()
        links.append(link)
        stores.append(store)
    for link in links:
        if not link.connected.wait(30):
            raise SystemExit("the links did not connect")
    sent: dict[str, float] = {}
    for i in range(events):
        event_id = journal_a.append(at=now(), gate="a", source="bench", raw=f"C-{i}", credential=f"C-{i}",
                                    verdict="admit", customer_id=f"C-{i}", groups=(), cursor="")
        sent[event_id] = time.perf_counter()
        links[0].wake()
        time.sleep(interval_s)
    done.wait(120)
    assert counts_b.occupancy(now()) == events, "B's counts do not hold every event"
    for link in links:
        link.stop()
    for s in stores:
        s.close()
    journal_a.close()
    journal_b.close()
    return [(arrived[i] - sent[i]) * 1000 for i in sent]


def reference_run(port: int, events: int, interval_s: float) -> list[float]:
    """A bare paho QoS 1 message from one client to another through the same broker."""
    got: dict[int, float] = {}
    done = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-ref-sub")

    def on_message(_c, _u, m) -> None:
        got[int(m.payload)] = time.perf_counter()
        if len(got) >= events:
            done.set()
    ready = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: ready.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("bench/ref", 1)
    ready.wait(30)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-ref-pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    sent = {}
    for i in range(events):
        sent[i] = time.perf_counter()
        pub.publish("bench/ref", str(i).encode(), qos=1)
        time.sleep(interval_s)
    done.wait(120)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return [(got[i] - sent[i]) * 1000 for i in sent]


def catch_up_run(port: int, folder: Path, events: int) -> tuple[float, float]:
    """B starts after A journalled `events` (its broker session held none of them): seconds until B's store and
    counts hold them all, and the growth of this process's peak RSS meanwhile (MB)."""
    import resource
    import sqlite3

    from kiosk.journal import iso, new_event_id

    journal_a = Journal(folder / "a-journal.sqlite")
    journal_a.close()
    db = sqlite3.connect(folder / "a-journal.sqlite")
    at = iso(now())
    db.executemany("INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor,"
                   " reason) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   ((new_event_id(), at, "a", "bench", f"C-{i}", f"C-{i}", "admit", f"C-{i}", "[]", "", "")
                    for i in range(events)))
    db.commit()
    db.close()
    rules = AccessRules(zone="lounge", capacity=10 * events, direction="in")
    counts_b = VenueCounts(rules, timezone.utc)
    got = [0]
    done = threading.Event()

    def take(new: list[dict]) -> None:
        counts_b.add_peer_events(new)
        got[0] += len(new)
        if got[0] >= events:
            done.set()

    state_a: dict = {"venue_published_seq": events}  # A published them long ago; B was not there
    link_a = VenueLink(settings(port, "a"), journal_path=folder / "a-journal.sqlite",
                       store=PeerStore(folder / "a-venue.sqlite"), state=state_a,
                       status=lambda: {"unreported": 0, "faults": {}, "occupancy": {}}, clock=now)
    link_a.start()
    link_a.connected.wait(30)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    store_b = PeerStore(folder / "b-venue.sqlite")
    link_b = VenueLink(settings(port, "b"), journal_path=folder / "b-journal.sqlite", store=store_b, state={},
                       status=lambda: {"unreported": 0, "faults": {}, "occupancy": {}}, clock=now, on_peer_events=take)
    Journal(folder / "b-journal.sqlite").close()
    link_b.start()
    done.wait(1800)
    elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    assert store_b.count() == events and counts_b.occupancy(now()) == events, "B did not catch up"
    link_a.stop()
    link_b.stop()
    return elapsed, rss


REFERENCE = "alone"  # the gate without [venue]


def link_cpu_s() -> float:
    """CPU seconds this process's venue link threads (paho's network loop, the pump) have used so far, from
    /proc (Linux): what taking in the other gates' events costs beside the scans."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for thread in threading.enumerate():
        if thread.name == "venue-link" or thread.name.startswith("paho-mqtt-client"):
            try:
                fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def gate_worker(gate: str, port: int, folder: Path, gates: int, seconds: float, rate: float) -> int:
    """One gate process: says `ready` once its link is up, scans at `rate` per second for `seconds` after the
    parent's `go`, then prints the handle times (ms) and how many peer events its store took, as one JSON line."""
    folder.mkdir(parents=True, exist_ok=True)
    # a capacity no run reaches and no repeat window: every scan is an admit, as at a busy entrance
    lines = [f'state_dir = "{folder / "state"}"', "[gate]", f'id = "{gate}"', "repeat_window_s = 0",
             "[rules]", 'zone = "lounge"', "capacity = 1000000", 'direction = "in"']
    if port:
        lines += ["[venue]", f'broker = "mqtt://127.0.0.1:{port}"', 'id = "bench"']
    (folder / "kiosk.toml").write_text("\n".join(lines) + "\n")
    app = App(load_file(folder / "kiosk.toml"), simulate=True)
    gate_ = app.gate
    link = compose.venue_link(app)  # None without a broker: the gate alone
    if link is not None and not link.connected.wait(60):
        raise SystemExit(f"gate {gate}: the link did not connect")
    print("ready", flush=True)
    sys.stdin.readline()
    times, cpu, parts, verdicts = [], [], {"decide_ms": [], "journal_ms": []}, {}
    started = time.perf_counter()
    for k in range(int(seconds * rate)):
        pause = started + k / rate - time.perf_counter()  # a fixed schedule: a slow scan does not slow the next
        if pause > 0:
            time.sleep(pause)
        t0, c0 = time.perf_counter(), time.thread_time()
        decision = gate_.handle(Scan(raw="I-1001", source="bench"))
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)  # wall time far above this: the scan waited (GIL, CPU)
        for part, values in parts.items():
            values.append(decision.timings[part])
        verdicts[decision.verdict.value] = verdicts.get(decision.verdict.value, 0) + 1
    peers, link_cpu = 0, 0.0
    if link is not None:  # let the other gates' last events arrive (up to 30 s), to report what the link carried
        expected = (gates - 1) * int(seconds * rate)
        deadline = time.monotonic() + 30
        while (peers := app.venue_store.count()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        link_cpu = link_cpu_s()
        link.stop()
    app.close()
    print(json.dumps({"times": times, "cpu_ms": cpu, **parts, "verdicts": verdicts, "peer_events": peers,
                      "link_cpu_s": link_cpu}), flush=True)
    return 0


def fleet_run(port: int, folder: Path, gates: int, seconds: float, rate: float) -> dict[str, dict]:
    """`gates` venue gates and the reference, each its own process, scanning at the same time."""
    names = [f"g{i:02d}" for i in range(1, gates + 1)] + [REFERENCE]
    procs = {}
    for name in names:
        procs[name] = subprocess.Popen(
            [sys.executable, __file__, "--worker", name, "--port", str(0 if name == REFERENCE else port),
             "--dir", str(folder / name), "--gates", str(gates), "--seconds", str(seconds), "--rate", str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for name, proc in procs.items():
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"gate {name} did not start (exit {proc.wait()})")
        for proc in procs.values():  # all of them start scanning together
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = {}
        for name, proc in procs.items():
            line = proc.stdout.readline()
            if proc.wait() != 0 or not line:
                raise SystemExit(f"gate {name} failed (exit {proc.returncode})")
            results[name] = json.loads(line)
        return results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def fleet_table(results: dict[str, dict], gates: int, seconds: float, rate: float) -> str:
    ref = results[REFERENCE]["times"]
    r50, r99 = percentile(ref, 50), percentile(ref, 99)
    rows = [f"{'gate':<6} {'scans':>6} {'p50':>7} {'p99':>7} {'p50-ref':>8} {'p99-ref':>8} {'cpu99':>6} "
            f"{'decide99':>8} {'journal99':>9} {'peer events':>12} {'link us/event':>13}  verdicts"]
    for name, res in results.items():
        t = res["times"]
        p50, p99 = percentile(t, 50), percentile(t, 99)
        rows.append(f"{name:<6} {len(t):>6} {p50:>7.2f} {p99:>7.2f} {p50 - r50:>+8.2f} {p99 - r99:>+8.2f} "
                    f"{percentile(res['cpu_ms'], 99):>6.2f} {percentile(res['decide_ms'], 99):>8.2f} "
                    f"{percentile(res['journal_ms'], 99):>9.2f} "
                    f"{res['peer_events']:>12} {res['link_cpu_s'] * 1e6 / max(1, res['peer_events']):>13.0f}  "
                    f"{res['verdicts']}")
    worst = max(percentile(res["times"], 99) - r99 for name, res in results.items() if name != REFERENCE)
    expected = (gates - 1) * int(seconds * rate)
    rows.append(f"worst gate p99 - single-gate p99: {worst:+.2f} ms (goal <= +2 ms); "
                f"each venue gate should hold {expected} peer events")
    return "\n".join(rows)


def late_read_run(events: int) -> tuple[float, float]:
    """A gate's union counts holding `events` zone events of today: ms for the rules' next read of the zone after
    one peer event arrived out of time order, and after none (what a --gates scan pays when a peer's event
    overtook its own)."""
    rules = AccessRules(zone="lounge", capacity=10 * events, direction="in")
    counts = VenueCounts(rules, timezone.utc)
    end = now()
    for i in range(events):
        counts.record(at=end - timedelta(milliseconds=5 * (events - i)), verdict="admit", source="bench",
                      customer_id=f"C-{i}")
    counts.occupancy(end)
    counts.add_peer_events([{"at": (end - timedelta(milliseconds=7)).isoformat(), "id": "late", "verdict": "admit",
                             "source": "bench", "customer": "P-1", "card": "", "value": "", "dir": "in",
                             "zone": "lounge"}])
    t0 = time.perf_counter()
    counts.occupancy(end)
    t1 = time.perf_counter()
    counts.occupancy(end)
    return (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


def start_broker(mosquitto: str, tmp: str, port: int) -> subprocess.Popen:
    conf = Path(tmp) / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # a benchmark, not a test: the broker has long been listening by then
    return broker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--catch-up", type=int, default=0, metavar="N",
                        help="instead: a gate that starts after a peer journalled N events catches up (time, memory)")
    parser.add_argument("--gates", type=int, default=0, metavar="N", choices=range(0, 101),
                        help="instead: N gate processes on one venue and a single gate alone, scanning together")
    parser.add_argument("--seconds", type=float, default=60.0, help="with --gates: how long each gate scans")
    parser.add_argument("--rate", type=float, default=20.0, help="with --gates: scans per second at each gate")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one gate process of --gates
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--late-read", type=int, default=0, metavar="N",
                        help="instead: the zone read after one late peer event, with N zone events (no broker)")
    args = parser.parse_args()
    if args.late_read:
        for run in range(1, args.runs + 1):
            late, settled = late_read_run(args.late_read)
            print(f"run {run}: {args.late_read} zone events: read after a late peer event {late:.2f} ms, "
                  f"after none {settled:.3f} ms")
        return 0
    if args.seconds <= 0 or args.rate <= 0:
        parser.error("--seconds and --rate must be above 0")
    if args.worker:
        return gate_worker(args.worker, args.port, Path(args.dir), args.gates, args.seconds, args.rate)
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto is None:
        print("bench_venue needs mosquitto: sudo apt-get install mosquitto")
        return 1
    print(machine())
    if args.gates:
        print(f"{args.gates} venue gates + 1 single gate alone, {args.rate:g} scans/s each for {args.seconds:g} s, "
              f"{args.runs} runs; Gate.handle ms")
    elif not args.catch_up:
        print(f"{args.events} events {args.interval_ms:g} ms apart, {args.runs} runs; ms")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        broker = start_broker(mosquitto, tmp, port)
        try:
            for run in range(1, args.runs + 1):
                folder = Path(tmp) / f"run{run}"
                folder.mkdir()
                if args.gates:
                    results = fleet_run(port, folder, args.gates, args.seconds, args.rate)
                    print(f"run {run} (load {', '.join(f'{v:.2f}' for v in os.getloadavg())}):")
                    print(fleet_table(results, args.gates, args.seconds, args.rate))
                    continue
                if args.catch_up:
                    seconds, mb = catch_up_run(port, folder, args.catch_up)
                    print(f"run {run}: catch-up of {args.catch_up} events {seconds:.1f} s "
                          f"({args.catch_up / seconds:.0f} events/s), peak RSS +{mb:.0f} MB")
                    continue
                ref = reference_run(port, args.events, args.interval_ms / 1000)
                kiosk = kiosk_run(port, folder, args.events, args.interval_ms / 1000)
                p = {name: (percentile(v, 50), percentile(v, 99)) for name, v in (("ref", ref), ("kiosk", kiosk))}
                print(f"run {run}: journal commit at A -> B's counts p50 {p['kiosk'][0]:.2f} p99 {p['kiosk'][1]:.2f} "
                      f"(mean {statistics.mean(kiosk):.2f}); bare paho QoS 1 p50 {p['ref'][0]:.2f} "
                      f"p99 {p['ref'][1]:.2f}; ratio p50 {p['kiosk'][0] / p['ref'][0]:.1f}x "
                      f"p99 {p['kiosk'][1] / p['ref'][1]:.1f}x")
        finally:
            broker.terminate()
            broker.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
