"""scripts/provision --broker under a temporary root, and its ACL enforced by a real Mosquitto."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from .conftest import MOSQUITTO, ROOT, free_port, wait_for

PROVISION = ROOT / "scripts" / "provision"


def provision(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(PROVISION), *args], capture_output=True, text=True, timeout=120)


def test_broker_config_and_acl_are_installed_once(tmp_path: Path):
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed (provision enables units with systemctl --root)")
    root = tmp_path / "root"
    root.mkdir()
    first = provision("--root", str(root), "--skip-venv", "--no-start", "--broker", "front,exit", "--venue", "club")
    assert first.returncode == 0, first.stdout + first.stderr
    conf = (root / "etc/mosquitto/conf.d/kiosk-venue.conf").read_text()
    assert "persistence true" in conf and "allow_anonymous false" in conf
    acl = (root / "etc/mosquitto/kiosk.acl").read_text()
    assert "pattern write kiosk/club/gate/%u/event" in acl and "user operator" in acl
    assert "mosquitto" in first.stdout.split("apt-get install", 1)[1].splitlines()[0]
    again = provision("--root", str(root), "--skip-venv", "--no-start", "--broker", "front,exit", "--venue", "club")
    assert "# nothing to change" in again.stdout
    bad = provision("--root", str(root), "--skip-venv", "--broker", "front;rm -rf /")
    assert bad.returncode == 1 and "--broker and --venue take ids" in bad.stderr


def test_the_acl_lets_a_gate_write_only_its_own_topics(tmp_path: Path):
    if MOSQUITTO is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed")
    root = tmp_path / "root"
    root.mkdir()
    assert provision("--root", str(root), "--skip-venv", "--no-start", "--broker", "front,lounge",
                     "--venue", "club").returncode == 0
    etc = root / "etc/mosquitto"
    port = free_port()
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    for user in ("front", "lounge", "operator"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, f"pw-{user}"], check=True)
    conf = (etc / "conf.d/kiosk-venue.conf").read_text().replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/etc/mosquitto/kiosk.passwd", str(passwd)).replace("/etc/mosquitto/kiosk.acl",
                                                                              str(etc / "kiosk.acl"))
    (tmp_path / "m.conf").write_text(conf + f"persistence_location {tmp_path}/\nuser root\n")
    broker = subprocess.Popen([MOSQUITTO, "-c", str(tmp_path / "m.conf")], stderr=subprocess.DEVNULL)
    try:
        def client(user: str) -> mqtt.Client:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"acl-{user}")
            c.username_pw_set(user, f"pw-{user}")
            wait_for(lambda: c.connect("127.0.0.1", port) == 0 if _listening(port) else False, "the broker")
            c.loop_start()
            return c

        got: list[str] = []
        subscribed = threading.Event()
        watcher = client("lounge")
        watcher.on_message = lambda _c, _u, m: got.append(m.topic)
        watcher.on_subscribe = lambda *_: subscribed.set()
        watcher.subscribe("kiosk/club/gate/#", 1)
        assert subscribed.wait(60)
        front, operator = client("front"), client("operator")
        for topic in ("kiosk/club/gate/lounge/event", "kiosk/club/gate/lounge/open", "kiosk/club/gate/front/event",
                      "kiosk/club/gate/lounge/want"):
            front.publish(topic, b"{}", qos=1).wait_for_publish(60)
        operator.publish("kiosk/club/gate/lounge/open", b"{}", qos=1).wait_for_publish(60)
        operator.publish("kiosk/club/gate/lounge/event", b"{}", qos=1).wait_for_publish(60)  # not a gate: dropped
        wait_for(lambda: len(got) >= 3, "the allowed messages")
        front.publish("kiosk/club/gate/front/status", b"{}", qos=1).wait_for_publish(60)
        wait_for(lambda: "kiosk/club/gate/front/status" in got, "a marker after them")
        assert sorted(got) == ["kiosk/club/gate/front/event", "kiosk/club/gate/front/status",
                               "kiosk/club/gate/lounge/open", "kiosk/club/gate/lounge/want"]
        for c in (watcher, front, operator):
            c.disconnect()
            c.loop_stop()
    finally:
        broker.kill()
        broker.wait()


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
