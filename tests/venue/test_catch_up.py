"""In-process links on a real Mosquitto: a catch-up larger than one answer, and a flood of hostile wants and names."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from kiosk.journal import Journal, iso, new_event_id
from kiosk.venue import link as venue_link
from kiosk.venue import messages
from kiosk.venue.link import VenueLink
from kiosk.venue.settings import VenueSettings
from kiosk.venue.store import PeerStore

from .conftest import wait_for
from .test_link import _publish


def now() -> datetime:
    return datetime.now(timezone.utc)


def make_link(broker, folder: Path, gate: str, state: dict | None = None) -> VenueLink:
    settings = VenueSettings(host="127.0.0.1", port=broker.port, tls=False, ca_file="", username="", password="",
                             venue="venue", gate=gate, zone="main", direction="in", heartbeat_s=1,
                             home_assistant=False, remote_open=False)
    Journal(folder / f"{gate}-journal.sqlite").close()
    link = VenueLink(settings, journal_path=folder / f"{gate}-journal.sqlite",
                     store=PeerStore(folder / f"{gate}-venue.sqlite"), state=state if state is not None else {},
                     status=lambda: {"unreported": 0, "faults": {}, "occupancy": {}}, clock=now)
    link.start()
    return link


def fill(path: Path, n: int) -> set[str]:
    ids = [new_event_id() for _ in range(n)]
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO events (id, at, gate, source, raw, credential, verdict, customer_id, groups, cursor)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?)",
                   ((i, iso(now()), "a", "camera", "x", "x", "admit", f"C-{k}", "[]", "") for k, i in enumerate(ids)))
    db.commit()
    db.close()
    return set(ids)


def test_a_catch_up_longer_than_one_answer_arrives_whole(broker, tmp_path: Path):
    Journal(tmp_path / "a-journal.sqlite").close()
    ids = fill(tmp_path / "a-journal.sqlite", 2600)  # nearly three answers of 1000
    a = make_link(broker, tmp_path, "a", {"venue_published_seq": 2600})  # published before b existed
    b = make_link(broker, tmp_path, "b")
    try:
        wait_for(lambda: b.store.cursors().get("a") == 2600, "b's cursor for a at a's last row", timeout=300)
        assert b.store.ids() == ids and b.store.count() == 2600
    finally:
        a.stop()
        b.stop()


def test_hostile_wants_and_gate_names_cost_bounded_work(broker, tmp_path: Path, caplog, monkeypatch):
    monkeypatch.setattr(venue_link, "MAX_GATES", 5)
    a = make_link(broker, tmp_path, "a")
    try:
        wait_for(a.connected.is_set, "a on the broker")
        with caplog.at_level(logging.DEBUG, logger="kiosk.venue.link"):
            want = messages.topic("venue", "a", "want")
            _publish(broker, [(want, messages.want_payload("evil", 0)) for _ in range(200)]
                     + [(messages.topic("venue", f"g{i}", "status"), messages.status_payload(True, iso(now())))
                        for i in range(20)])
            wait_for(lambda: a.rejected["too_many_gates"] >= 15, "the names past the cap")
        assert len(a.store.gates()) == 5
        assert sum("too_many_gates" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records) == 1
        assert len(a._wants) <= 1  # 200 wants from one name: one entry
    finally:
        a.stop()
