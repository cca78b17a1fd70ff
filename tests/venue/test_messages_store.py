"""Peer messages as hostile input, the peers' store as a set union, and the [venue] settings."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import Config, validate
from kiosk.errors import ConfigError
from kiosk.venue import messages
from kiosk.venue.settings import VenueSettings
from kiosk.venue.store import PeerStore

from .conftest import ROOT

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def body(seq: int = 1, **change) -> dict:
    return {"v": 1, "id": f"e{seq}", "seq": seq, "prev": seq - 1, "gate": "front", "zone": "lounge", "dir": "in",
            "at": "2026-11-28T10:00:00.000Z", "verdict": "admit", "source": "camera", "customer": "I-1001",
            "card": "I-1001", "passed": None, **change}


def encode(b: dict) -> bytes:
    return json.dumps(b).encode()


def test_an_event_round_trips_through_the_payload():
    row = {"seq": 7, "id": "abc", "at": "2026-11-28T10:00:00.000Z", "gate": "front", "source": "camera",
           "verdict": "admit", "customer_id": "I-1001", "credential": "I-1001", "passed": True, "value": None}
    event = messages.parse_event(messages.event_payload(row, prev=5, zone="lounge", direction="in"), "front")
    assert (event["id"], event["seq"], event["prev"], event["zone"], event["dir"], event["passed"]) == \
        ("abc", 7, 5, "lounge", "in", True)


@pytest.mark.parametrize("change, kind", [
    ({"v": 2}, "version"),
    ({"id": ""}, "malformed"),
    ({"id": "x" * 65}, "malformed"),
    ({"seq": -1}, "malformed"),
    ({"seq": True}, "malformed"),
    ({"prev": 1}, "malformed"),  # prev must be below seq
    ({"gate": "lounge"}, "malformed"),  # not the topic's gate
    ({"dir": "sideways"}, "malformed"),
    ({"at": "2026-11-28 10:00"}, "malformed"),  # no UTC offset
    ({"at": "tomorrow"}, "malformed"),
    ({"verdict": "Admit"}, "malformed"),
    ({"verdict": "admit\u202e"}, "malformed"),
    ({"customer": "I-1\n001"}, "malformed"),
    ({"passed": "yes"}, "malformed"),
    ({"card": "x" * 4000}, "oversized"),
])
def test_a_bad_event_is_refused_with_its_kind(change, kind):
    with pytest.raises(messages.BadMessage) as err:
        messages.parse_event(encode(body(**change)), "front")
    assert err.value.kind == kind


@pytest.mark.parametrize("payload, kind", [(b"\xff", "not_json"), (b"[]", "malformed"), (b"null", "malformed"),
                                           (b"{" * 5000, "oversized"), (b"1e999999", "malformed"),
                                           (b"[" * 4000, "not_json")])
def test_garbage_is_refused(payload, kind):
    with pytest.raises(messages.BadMessage) as err:
        messages.parse_event(payload, "front")
    assert err.value.kind == kind


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.dictionaries(st.sampled_from(list(body())),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=30), st.booleans()), max_size=14)
                 .map(lambda d: encode({**body(), **d}))))
def test_any_payload_is_an_event_or_a_bad_message(payload):
    for parse in (lambda p: messages.parse_event(p, "front"), lambda p: messages.parse_heartbeat(p, "front"),
                  messages.parse_status, messages.parse_want):
        try:
            parse(payload)
        except messages.BadMessage:
            pass


def events(n: int, gate: str = "front") -> list[dict]:
    return [messages.parse_event(encode(body(seq, gate=gate, id=f"{gate}-{seq}")), gate) for seq in range(1, n + 1)]


def test_the_store_is_a_set_union_whatever_the_order_and_repeats(tmp_path: Path):
    batch = events(30) + events(10, "exit")
    stores = []
    for i in range(3):
        order = batch + random.Random(i).sample(batch, 15)
        random.Random(100 + i).shuffle(order)
        store = PeerStore(tmp_path / f"s{i}.sqlite")
        for start in range(0, len(order), 7):
            store.add(order[start:start + 7], NOW)
        stores.append(store)
    expected = {e["id"] for e in batch}
    for store in stores:
        assert store.ids() == expected and store.count() == 40
        assert store.cursors() == {"front": 30, "exit": 10}
        assert len(store.count_rows()) == 40


def test_add_returns_only_new_events(tmp_path: Path):
    store = PeerStore(tmp_path / "s.sqlite")
    assert [e["id"] for e in store.add(events(3), NOW)] == ["front-1", "front-2", "front-3"]
    assert [e["id"] for e in store.add(events(4), NOW)] == ["front-4"]


def test_the_cursor_stops_at_a_gap_and_moves_once_it_is_filled(tmp_path: Path):
    store = PeerStore(tmp_path / "s.sqlite")
    all_ = events(6)
    store.add(all_[:2] + all_[3:], NOW)
    assert store.cursors() == {"front": 2}  # row 3 missing: the link asks for what comes after row 2
    store.add([all_[2]], NOW)
    assert store.cursors() == {"front": 6}


def test_a_gap_held_across_a_restart_is_filled_from_the_file(tmp_path: Path):
    """The cursors are kept in memory too: a store opened again still knows the rows held above a gap."""
    all_ = events(6)
    first = PeerStore(tmp_path / "s.sqlite")
    first.add(all_[:2] + all_[3:], NOW)
    first.close()
    again = PeerStore(tmp_path / "s.sqlite")
    assert again.cursors() == {"front": 2}
    again.add([all_[2]], NOW)
    assert again.cursors() == {"front": 6}
    assert PeerStore(tmp_path / "s.sqlite", readonly=True).cursors() == {"front": 6}


def test_an_event_and_its_passage_in_one_batch_are_one_event_that_passed(tmp_path: Path):
    store = PeerStore(tmp_path / "s.sqlite")
    admit = messages.parse_event(encode(body(1)), "front")
    passed = messages.parse_event(encode(body(1, passed=True)), "front")
    assert [e["passed"] for e in store.add([admit, passed], NOW)] == [True]
    assert store.count() == 1 and store.cursors() == {"front": 1}
    store.add([messages.parse_event(encode(body(1, passed=False)), "front")], NOW)  # a passage is set once
    assert store.db.execute("SELECT passed FROM peer_events").fetchone() == (1,)


def test_old_rows_sent_again_after_a_purge_are_not_new_again(tmp_path: Path):
    """Another gate's `want` makes a peer publish its old rows to every gate: one we held and purged (past
    max_events) must not be counted a second time, nor move the cursor back."""
    store = PeerStore(tmp_path / "s.sqlite")
    all_ = events(6)
    store.add(all_, NOW)
    store.db.execute("DELETE FROM peer_events WHERE seq <= 3")  # purged
    assert store.add(all_[:3], NOW) == []  # a want's answer to someone else
    assert store.count() == 3 and store.cursors() == {"front": 6}
    store.add([messages.parse_event(encode(body(7, id="front-7")), "front")], NOW)
    assert store.cursors() == {"front": 7}


def test_rows_a_peer_purged_leave_no_gap(tmp_path: Path):
    """prev names the publisher's previous row: rows it no longer has are not waited for."""
    store = PeerStore(tmp_path / "s.sqlite")
    store.add([messages.parse_event(encode(body(9, prev=2, id="late")), "front")], NOW)
    store.add(events(2), NOW)
    assert store.cursors() == {"front": 9}


def test_purge_drops_old_events_then_the_oldest_past_the_bound(tmp_path: Path):
    store = PeerStore(tmp_path / "s.sqlite", keep_days=1, max_events=3)
    old = [messages.parse_event(encode(body(s, id=f"old{s}", at=(NOW - timedelta(days=2)).isoformat())), "front")
           for s in (1, 2)]
    recent = [messages.parse_event(encode(body(s, id=f"new{s}", at=(NOW - timedelta(minutes=60 - s)).isoformat())),
                                   "front") for s in range(3, 8)]
    store.add(old + recent, NOW)
    assert store.purge(NOW) == 4
    assert store.ids() == {"new5", "new6", "new7"}
    assert store.cursors() == {"front": 7}  # what we held stays held: purging does not make us ask again


def config(tmp_path: Path, rules: dict | None = None, **venue) -> Config:
    return Config(validate({"state_dir": str(tmp_path), "venue": venue, "rules": rules or {}}, "kiosk.toml"),
                  "kiosk.toml")


def test_no_broker_no_link(tmp_path: Path):
    assert VenueSettings.from_config(config(tmp_path)) is None


def test_settings_from_config(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)
    s = VenueSettings.from_config(config(tmp_path, {"zone": "lounge", "direction": "out"}, broker="mqtts://broker.lan",
                                         username="front", password_file=str(secret)))
    assert (s.host, s.port, s.tls, s.password, s.zone, s.direction) == \
        ("broker.lan", 8883, True, "s3cret", "lounge", "out")


@pytest.mark.parametrize("venue, key", [
    ({"broker": "http://broker.lan"}, "venue.broker"),
    ({"broker": "mqtt://user:pw@broker.lan"}, "venue.broker"),
    ({"broker": "mqtt://broker.lan:port"}, "venue.broker"),
    ({"broker": "mqtt://broker.lan", "id": "a/b"}, "venue.id"),
])
def test_bad_venue_config_names_the_key(tmp_path: Path, venue, key):
    with pytest.raises(ConfigError) as err:
        VenueSettings.from_config(config(tmp_path, **venue))
    assert key in str(err.value)


def test_a_zone_that_cannot_name_a_topic_level_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        VenueSettings.from_config(config(tmp_path, {"zone": "lounge/2"}, broker="mqtt://b"))
    assert "rules.zone" in str(err.value)


def test_password_file_follows_the_token_rules(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError) as err:
        VenueSettings.from_config(config(tmp_path, broker="mqtt://b", username="u", password_file=str(secret)))
    assert "venue.password_file" in str(err.value) and "chmod 600" in str(err.value)
    with pytest.raises(ConfigError) as err:
        VenueSettings.from_config(config(tmp_path, broker="mqtt://b", username="u"))
    assert "venue.password_file" in str(err.value)
    with pytest.raises(ConfigError) as err:
        VenueSettings.from_config(config(tmp_path, broker="mqtt://b", ca_file=str(secret)))
    assert "venue.ca_file" in str(err.value)


def test_a_bad_venue_section_stops_run_with_one_line_and_exit_2(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'state_dir = "{tmp_path}/state"\n[venue]\nbroker = "mqtt://b"\nusername = "u"\n')
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "run", "--simulate", "--headless",
                           "--source", "stdin"], input=b"", cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines()[-1].startswith("kiosk: config error:")
    assert "venue.password_file" in done.stderr.decode()


def test_without_a_broker_the_kiosk_runs_as_before(tmp_path: Path):
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--state-dir", str(state), "run", "--simulate",
                           "--headless", "--source", "stdin"], input=b"I-1001\n", cwd=ROOT, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert (state / "journal.sqlite").exists()
    assert not (state / "venue.sqlite").exists() and b"venue" not in done.stderr
