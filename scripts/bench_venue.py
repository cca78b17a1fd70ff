"""Benchmark of the venue link: from gate A's journal commit to gate B's counts including the event.

Run through ./scripts/bench venue [--events N] [--interval-ms MS] [--runs N].
A real Mosquitto on 127.0.0.1 (a free port), two VenueLinks in this process (so one clock times
both ends) with real journals, peers' stores and union counts. Per event: A journals it (the
time after the commit is t0) and wakes its link; B's link stores it and adds it to B's counts
(the time after that is t1). Side by side, the reference: a bare paho QoS 1 publish from one
client to another through the same broker (what MQTT itself costs on this machine).
Events are paced `--interval-ms` apart (a busy gate, not a flood). BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import paho.mqtt.client as mqtt  # noqa: E402
from bench_core import machine, percentile  # noqa: E402

from kiosk.access import AccessRules  # noqa: E402
from kiosk.journal import Journal  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--catch-up", type=int, default=0, metavar="N",
                        help="instead: a gate that starts after a peer journalled N events catches up (time, memory)")
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto is None:
        print("bench_venue needs mosquitto: sudo apt-get install mosquitto")
        return 1
    print(machine())
    if not args.catch_up:
        print(f"{args.events} events {args.interval_ms:g} ms apart, {args.runs} runs; ms")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)  # a benchmark, not a test: the broker has long been listening by then
            for run in range(1, args.runs + 1):
                folder = Path(tmp) / f"run{run}"
                folder.mkdir()
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
