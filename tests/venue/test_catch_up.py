"""In-process links on a real Mosquitto: a catch-up larger than one answer, and a flood of hostile wants and names."""

from __future__ import annotations

import logging
import time
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


def test_a_passage_journalled_after_the_admit_reaches_the_peers(broker, tmp_path: Path):
    a = make_link(broker, tmp_path, "a")
    b = make_link(broker, tmp_path, "b")
    journal = Journal(tmp_path / "a-journal.sqlite")
    try:
        wait_for(lambda: a.connected.is_set() and b.connected.is_set(), "both links")
        walked = journal.append(at=now(), gate="a", source="camera", raw="I-1", credential="I-1", verdict="admit",
                                customer_id="I-1", groups=(), cursor="")
        stayed = journal.append(at=now(), gate="a", source="camera", raw="I-2", credential="I-2", verdict="admit",
                                customer_id="I-2", groups=(), cursor="")
        a.wake()
        wait_for(lambda: b.store.ids() == {walked, stayed}, "both admits at b")
        journal.set_passed(walked, True)
        journal.set_passed(stayed, False)

        def passed() -> dict:
            with sqlite3.connect(tmp_path / "b-venue.sqlite") as db:
                return dict(db.execute("SELECT id, passed FROM peer_events").fetchall())
        wait_for(lambda: passed() == {walked: 1, stayed: 0}, "the passages at b")
        assert b.store.count() == 2 and b.store.cursors() == {"a": 2}
    finally:
        journal.close()
        a.stop()
        b.stop()


class CountingState(dict):
    """The link's state, counting writes (each is a synced commit of the state file in a running kiosk)."""

    writes = 0

    def __setitem__(self, key, value) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_the_watermark_is_written_now_and_then_not_per_acknowledgement(broker, tmp_path: Path):
    state = CountingState()
    a = make_link(broker, tmp_path, "a", state)
    journal = Journal(tmp_path / "a-journal.sqlite")
    try:
        wait_for(a.connected.is_set, "a on the broker")
        started = time.monotonic()
        for k in range(60):  # one decision at a time, each acknowledged before the next: 60 acknowledgements
            journal.append(at=now(), gate="a", source="camera", raw="x", credential="x", verdict="admit",
                           customer_id=f"C-{k}", groups=(), cursor="")
            a.wake()
            wait_for(lambda k=k: a.watermark == k + 1, f"the broker's acknowledgement of row {k + 1}")
        seconds = time.monotonic() - started
        assert state.writes <= 2 + seconds / venue_link._SAVE_WATERMARK_S
        # no further acknowledgement comes: the last one is saved all the same, without a stop
        wait_for(lambda: state.get("venue_published_seq") == 60, "the last watermark saved while idle")
    finally:
        journal.close()
        a.stop()
    assert state["venue_published_seq"] == 60  # stop writes the last one
