"""Remote "open once" (only when allowed, only on the gate's own topic) and Home Assistant discovery."""

from __future__ import annotations

import json
import sqlite3
import threading

import paho.mqtt.client as mqtt

from kiosk.model import Verdict
from kiosk.venue import messages

from .conftest import wait_for
from .test_link import _publish

OPEN = b'{"v":1,"by":"operator"}'


def sources(k) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{k.state / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT verdict, source FROM events ORDER BY seq").fetchall()
    finally:
        db.close()


def test_remote_open_when_allowed_is_journalled_as_remote(broker, kiosks):
    k = kiosks("front", broker.url, remote_open=True)
    wait_for(lambda: "connected" in k.log_text(), "front on the broker")
    _publish(broker, [(messages.topic("venue", "other", "open"), OPEN),  # another gate's button: not ours
                      (messages.topic("venue", "front", "open"), b'{"v":1}'),  # no `by`: refused
                      (messages.topic("venue", "front", "open"), OPEN)])
    wait_for(lambda: k.journal(), "the remote open")
    k.scan("nobody")  # a marker after it: nothing else was journalled in between
    wait_for(lambda: len(k.journal()) == 2, "the marker")
    assert sources(k) == [("admit", "remote"), ("not_recognised", "stdin")]
    assert "ignored a bad open message from gate front" in k.log_text()


def test_without_remote_open_an_open_message_does_nothing(broker, kiosks):
    k = kiosks("front", broker.url)
    wait_for(lambda: "connected" in k.log_text(), "front on the broker")
    _publish(broker, [(messages.topic("venue", "front", "open"), OPEN)])
    k.scan("nobody")
    wait_for(lambda: k.journal(), "the marker")
    k.stop()
    assert sources(k) == [("not_recognised", "stdin")]


def retained(broker, pattern: str, count: int) -> dict[str, dict]:
    got: dict[str, dict] = {}
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-test")

    def on_message(_c, _u, message):
        got[message.topic] = json.loads(message.payload)
        if len(got) >= count:
            done.set()
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(pattern, 1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    done.wait(60)
    client.disconnect()
    client.loop_stop()
    return got


def test_home_assistant_discovery_describes_the_gate(broker, kiosks):
    kiosks("front", broker.url, {"zone": "lounge"}, home_assistant=True, remote_open=True)
    configs = retained(broker, "homeassistant/#", 7)
    assert len(configs) == 7
    by_key = {t.split("/")[3]: c for t, c in configs.items()}
    assert set(by_key) == {"last_verdict", "occupancy", "snapshot_age", "unreported", "online", "scan", "open_once"}
    assert len({c["unique_id"] for c in configs.values()}) == 7
    assert by_key["occupancy"]["state_topic"] == "kiosk/venue/gate/front/heartbeat"
    assert '"lounge"' in by_key["occupancy"]["value_template"]
    assert by_key["open_once"]["command_topic"] == "kiosk/venue/gate/front/open"
    assert messages.parse_open(by_key["open_once"]["payload_press"].encode()) == "home-assistant"
    # every verdict a gate journals can reach Home Assistant's event entity (it drops unlisted types)
    assert {v.value for v in Verdict} | {"occupancy_set", "door_forced"} <= set(by_key["scan"]["event_types"])


def test_no_discovery_unless_asked(broker, kiosks):
    k = kiosks("front", broker.url)
    wait_for(lambda: "connected" in k.log_text(), "front on the broker")
    kiosks("side", broker.url, home_assistant=True)
    configs = retained(broker, "homeassistant/#", 6)
    assert {t.split("/")[2] for t in configs} == {"kiosk_venue_side"}
