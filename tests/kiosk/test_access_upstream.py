"""Access rules against a real reference upstream on 127.0.0.1: new verdict codes are stored, punch balances sync."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk import compose, demo
from kiosk.app import App
from kiosk.config import Config, validate
from kiosk.ports import Scan
from kiosk.upstream.reference import RefStore, RefUpstream

TOKEN = "t0ken-for-access-tests"
PUNCH = "PUNCH-0042"


@pytest.fixture
def kiosk(tmp_path: Path):
    store = RefStore(tmp_path / "upstream.sqlite")
    counted_at = datetime.now(timezone.utc) - timedelta(hours=1)
    store.replace(demo.records(date.today()) + [
        {"type": "card", "code": PUNCH, "customer_id": "I-1002", "card_type": "PUNCH", "entries": 1,
         "entries_at": counted_at.isoformat()}])
    server = RefUpstream(store, TOKEN).start()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    config = Config(validate({"state_dir": str(tmp_path / "state"), "device_id": "k",
                              "upstream": {"url": server.url, "token_file": str(token), "timeout_s": 2},
                              "gate": {"repeat_window_s": 30},  # back-to-back scans on a loaded machine
                              "rules": {"capacity": 2}}, "test.toml"), "test.toml")
    app = App(config)
    up = compose.upstream(app)
    try:
        yield app, up, server
    finally:
        up.stop()
        app.close()
        server.stop()


def test_new_verdicts_and_occupancy_corrections_reach_the_upstream(kiosk):
    app, up, server = kiosk
    up.sync_once()
    assert app.snapshot.card(PUNCH).entries == 1
    verdicts = [app.gate.handle(Scan(text, "stdin")).verdict.value for text in (PUNCH, PUNCH + " ", "I-1001",
                                                                                  "O-2001")]
    # the card's one entry is used, then the second scan is a repeat of Pieter; the lounge then fills
    assert verdicts == ["admit", "repeat", "admit", "full"]
    app.gate.set_occupancy(0)
    assert up.upload_once().accepted == 5
    stored = {e["verdict"] for e in server.store.scans()}
    assert {"full", "occupancy_set", "admit"} <= stored
    correction = next(e for e in server.store.scans() if e["verdict"] == "occupancy_set")
    assert (correction["raw"], correction["source"], correction["customer_id"]) == ("0", "staff", None)


def test_a_newer_balance_from_the_upstream_wins(kiosk):
    app, up, server = kiosk
    up.sync_once()
    assert app.gate.handle(Scan(PUNCH, "stdin")).verdict.value == "admit"
    app.gate.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=1)  # past the repeat window
    assert app.gate.handle(Scan(PUNCH, "stdin")).verdict.value == "limit_reached"
    # the venue sells a top-up: the upstream counts 10 entries left, after the use it was told about
    server.store.replace(demo.records(date.today()) + [
        {"type": "card", "code": PUNCH, "customer_id": "I-1002", "card_type": "PUNCH", "entries": 10,
         "entries_at": (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()}])
    up.sync_once()
    app.snapshot.reload()
    decision = app.gate.handle(Scan(PUNCH, "stdin"))
    assert (decision.verdict.value, decision.reason) == ("admit", "Welcome (9 entries left on the card)")
