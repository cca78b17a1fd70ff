"""Real kiosk processes exchanging their journalled events through a real Mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys

import paho.mqtt.client as mqtt

from kiosk.venue import messages

from .conftest import ROOT, Proxy, wait_for

MEMBERS = ["I-1001", "I-1002", "O-2001"]  # admitted by the demo snapshot
DENIED = ["I-1003", "I-1004", "nobody"]  # not_in_group, inactive, not_recognised


def converged(a, b) -> bool:
    """Each kiosk holds every event the other journalled, exactly once, and nothing else from it."""
    a_from_b, b_from_a = a.peer_ids(b.gate), b.peer_ids(a.gate)
    return (sorted(a_from_b) == sorted(b.journal_ids()) and sorted(b_from_a) == sorted(a.journal_ids())
            and len(a_from_b) == len(set(a_from_b)) and len(b_from_a) == len(set(b_from_a)))


def test_each_gate_takes_in_what_the_other_journalled(broker, kiosks):
    a, b = kiosks("front", broker.url), kiosks("lounge", broker.url)
    a.scan(*MEMBERS, *DENIED)
    b.scan("I-1001")
    wait_for(lambda: len(a.journal()) == 6 and len(b.journal()) == 1, "both journals")
    wait_for(lambda: converged(a, b), "the two gates to hold each other's events")
    assert {r[1] for r in a.journal()} >= {"admit", "not_in_group", "inactive", "not_recognised"}
    # a denial is shared too (it is a fact of the venue), each with the journal's own event id
    assert set(b.peer_ids("front")) == a.journal_ids()


def test_a_gate_that_starts_late_catches_up_from_its_cursor(broker, kiosks):
    a = kiosks("front", broker.url)
    a.scan(*MEMBERS)
    wait_for(lambda: len(a.journal()) == 3, "front's journal")
    b = kiosks("lounge", broker.url)  # never connected while front scanned: no session held anything for it
    wait_for(lambda: sorted(b.peer_ids("front")) == sorted(a.journal_ids()), "lounge to catch up")


def test_a_kiosk_that_was_down_publishes_what_it_journalled_meanwhile(broker, kiosks, tmp_path):
    b = kiosks("lounge", broker.url)
    a = kiosks("front", broker.url)
    a.scan("I-1001")
    wait_for(lambda: len(b.peer_ids("front")) == 1, "the first event")
    assert a.stop() == 0
    # front journals while it has no link at all: the same state folder, no broker
    offline = subprocess.run([sys.executable, "-m", "kiosk.cli", "--state-dir", str(a.state), "run", "--simulate",
                              "--headless", "--source", "stdin"], input=b"I-1002\nO-2001\n", cwd=ROOT,
                             capture_output=True, timeout=120)
    assert offline.returncode == 0, offline.stderr.decode()
    assert len(a.journal()) == 3
    kiosks("front", broker.url)  # back on the venue link
    wait_for(lambda: sorted(b.peer_ids("front")) == sorted(a.journal_ids()), "lounge to get what front did offline")


def test_broker_killed_mid_run_and_restarted_then_convergence(broker, kiosks):
    a, b = kiosks("front", broker.url), kiosks("lounge", broker.url)
    a.scan("I-1001")
    b.scan("I-1002")
    wait_for(lambda: len(a.journal()) == 1 and len(b.journal()) == 1, "both decisions")  # else converged is vacuous
    wait_for(lambda: converged(a, b), "first exchange")
    broker.kill()
    a.scan("O-2001", "I-1003")
    b.scan("I-1001", "nobody")
    wait_for(lambda: len(a.journal()) == 3 and len(b.journal()) == 3, "scans decided while the broker is down")
    assert len(b.peer_ids("front")) == 1 and len(a.peer_ids("lounge")) == 1
    broker.start()
    wait_for(lambda: converged(a, b), "convergence after the broker came back")


def test_partition_with_scans_on_both_sides_converges_with_nothing_lost_or_doubled(broker, kiosks):
    proxy = Proxy(broker.port)
    try:
        rules = {"zone": "lounge", "direction": "in"}
        a = kiosks("front", broker.url, rules)
        b = kiosks("lounge", proxy.url, rules)
        c = kiosks("exit", broker.url, {**rules, "direction": "out"})
        a.scan("I-1001")
        wait_for(lambda: len(a.journal()) == 1, "front's decision")
        wait_for(lambda: converged(a, b) and converged(b, c) and converged(a, c), "the three gates in step")
        proxy.cut()  # lounge alone
        a.scan("I-1002", "O-2001")
        b.scan("I-1001", "I-1002", "nobody")
        wait_for(lambda: len(a.journal()) == 3 and len(b.journal()) == 3, "scans on both sides")
        c.scan("O-2001")  # out again, after front let them in
        wait_for(lambda: len(c.journal()) == 1, "the exit")
        wait_for(lambda: len(c.peer_ids("front")) == 3, "front and exit still in touch")
        assert len(b.peer_ids("front")) == 1 and not b.peer_ids("exit")  # the partition held
        proxy.heal()
        wait_for(lambda: converged(a, b) and converged(b, c) and converged(a, c), "convergence after the partition")
        for k in (a, b, c):
            ids = k.peer_ids()
            assert len(ids) == len(set(ids)) == sum(len(o.journal()) for o in (a, b, c) if o is not k)
        # the same events, so the same counts: I-1002 came in at both doors but is inside once; O-2001 left
        zones = [k.occupancy() for k in (a, b, c)]
        assert zones[0]["inside"] == ["I-1001", "I-1002"] and zones[0]["occupancy"] == 2
        assert zones[1] == zones[0] and zones[2]["inside"] == zones[0]["inside"]
    finally:
        proxy.close()


def _publish(broker, items: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hostile-peer")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for topic, payload in items:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=30)
    client.disconnect()
    client.loop_stop()


def _event(peer: str, seq: int, **change) -> bytes:
    body = {"v": 1, "id": f"{peer}-event-{seq}", "seq": seq, "prev": seq - 1, "gate": peer, "zone": "main",
            "dir": "in", "at": "2026-11-28T10:00:00.000Z", "verdict": "admit", "source": "camera",
            "customer": "I-9999", "card": None, "passed": None, **change}
    return json.dumps(body).encode()


def test_malformed_and_oversized_peer_messages_are_ignored_and_logged_once(broker, kiosks):
    b = kiosks("lounge", broker.url)
    wait_for(lambda: "connected" in b.log_text(), "lounge on the broker")
    topic = messages.topic("venue", "evil", "event")
    _publish(broker, [
        (topic, b"\xff\xfe not json"),
        (topic, b"{not json either"),
        (topic, _event("evil", 1, card="x" * 5000)),  # oversized
        (topic, _event("evil", 2, gate="front")),  # speaks for another gate
        (topic, _event("evil", 3, at="yesterday")),
        (topic, _event("evil", 4, verdict="ADMIT\u202e")),
        (topic, _event("evil", 5, v=99)),
        (messages.topic("venue", "evil", "heartbeat"), b"[1, 2, 3]"),
        (topic, _event("evil", 6)),  # the one good message, last: once it is stored the rest were seen
    ])
    wait_for(lambda: b.peer_ids("evil") == ["evil-event-6"], "the good message")
    log = b.log_text()
    assert log.count("ignored a bad event message from gate evil: not_json") == 1
    assert log.count("oversized") == 1
    assert log.count("ignored a bad event message from gate evil: malformed") == 1  # the other three: counted only
    assert log.count("gate evil: version") == 1
    assert "ignored a bad heartbeat message from gate evil" not in log  # one log line per peer and kind of fault
    assert "\u202e" not in log
    assert b.proc.poll() is None


def test_a_peer_event_never_admits_anyone(broker, kiosks):
    b = kiosks("lounge", broker.url)
    wait_for(lambda: "connected" in b.log_text(), "lounge on the broker")
    _publish(broker, [(messages.topic("venue", "evil", "event"), _event("evil", 1, customer="nobody"))])
    wait_for(lambda: b.peer_ids("evil"), "the peer's admit")
    b.scan("nobody")
    wait_for(lambda: b.journal(), "lounge's decision")
    assert b.journal()[0][1] == "not_recognised"


def fleet(k, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(k.config), "fleet", *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_fleet_lists_every_gate_with_its_state_and_the_zone_occupancy(broker, kiosks):
    rules = {"zone": "lounge", "direction": "in"}
    a, b = kiosks("front", broker.url, rules), kiosks("side", broker.url, rules)
    a.scan("I-1001", "I-1002")
    b.scan("O-2001")

    def view() -> dict:
        done = fleet(a, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    wait_for(lambda: view()["occupancy"] == {"lounge": 3} and all(g["last_scan_at"] for g in view()["gates"]),
             "heartbeats after the scans")
    gates = {g["gate"]: g for g in view()["gates"]}
    assert set(gates) == {"front", "side"}
    assert all(g["online"] and g["zone"] == "lounge" and g["dir"] == "in" for g in gates.values())
    assert gates["front"]["unreported"] == 2 and gates["side"]["unreported"] == 1
    assert b.stop() == 0
    wait_for(lambda: {g["gate"]: g["online"] for g in view()["gates"]} == {"front": True, "side": False},
             "side shown offline")
    text = fleet(a).stdout
    assert "side" in text and "offline" in text and "zone lounge: 3 inside" in text


def test_fleet_without_a_broker_is_a_config_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--state-dir", str(tmp_path), "fleet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "venue.broker" in done.stderr


def test_fleet_names_an_unreachable_broker(tmp_path):
    from .conftest import free_port

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[venue]\nbroker = "mqtt://127.0.0.1:{free_port()}"\n')
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "--state-dir", str(tmp_path),
                           "fleet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "cannot reach the venue broker" in done.stderr


def test_the_venue_demo_shows_full_at_the_second_gate(broker, tmp_path):
    done = subprocess.run([sys.executable, "-m", "kiosk.venue.demo", str(tmp_path / "demo")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("->")[1].split()[0] for line in lines if "->" in line] == ["admit", "admit", "full", "full"]
    assert "zone lounge: 2 inside" in done.stdout


def test_doctor_checks_the_broker_link(broker, kiosks, tmp_path):
    k = kiosks("front", broker.url)
    wait_for(lambda: "connected" in k.log_text(), "front on the broker")
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(k.config), "doctor"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    line = next(x for x in done.stdout.splitlines() if "broker" in x.split()[1:2])
    assert line.startswith("ok") and "online: front" in line
    broker.kill()
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(k.config), "doctor"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    line = next(x for x in done.stdout.splitlines() if "broker" in x.split()[1:2])
    assert line.startswith("FAIL") and "cannot reach the venue broker" in line and done.returncode == 1


def status_faults(k) -> dict:
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(k.config), "status", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(done.stdout).get("faults", {})
    except ValueError:
        return {}


def test_a_link_that_stays_down_is_a_fault_until_the_broker_is_back(broker, kiosks):
    broker.kill()  # the gate starts while its broker is away
    k = kiosks("front", broker.url)
    wait_for(lambda: "venue" in status_faults(k), "the venue fault")
    assert "down" in status_faults(k)["venue"]
    k.scan("I-1001")  # the gate still decides alone
    wait_for(lambda: k.journal(), "a decision without the broker")
    broker.start()
    wait_for(lambda: "venue" not in status_faults(k), "the fault to clear once the broker is back")
