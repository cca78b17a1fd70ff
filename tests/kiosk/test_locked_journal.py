"""Item: a journal whose write lock another process holds while scans and uploads run loses nothing.

A real reference upstream on 127.0.0.1, the real Upstream threads, the gate's own loop and the
`--events` printer; another SQLite connection takes the journal's write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections import Counter

import pytest

from kiosk.app import App
from kiosk.config import Config, validate
from kiosk.outputs import EventPrinter
from kiosk.ports import Scan
from kiosk import compose
from refserver import TOKEN
from waits import wait_for





@pytest.fixture
def app(tmp_path, ref):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    config = Config(validate({"state_dir": str(tmp_path / "state"), "device_id": "test-kiosk", "upstream": {
        "url": ref.url, "token_file": str(token), "timeout_s": 2, "sync_interval_s": 60, "heartbeat_s": 0.3,
        "retry_max_s": 0.4}}, "test.toml"), "test.toml")
    app = App(config)
    yield app
    app.close()


def test_every_printed_decision_is_journalled_and_uploaded_once_across_a_held_write_lock(app, ref):
    printed = io.StringIO()
    app.gate.add_output(EventPrinter(app.config.gate.id, printed))
    stop = threading.Event()
    loop = threading.Thread(target=app.gate.run_loop, args=(stop,), kwargs={"tick_s": 0.01})
    loop.start()
    upstream = compose.upstream(app)
    other = sqlite3.connect(app.journal_path, isolation_level=None)
    try:
        scans = ["I-1001", "I-1003", "HELLO", "I-1002", "nope"]
        for i in range(20):
            app.gate.submit(Scan(scans[i % len(scans)], "stdin"))
        wait_for(lambda: app.gate.decided == 20, "the first 20 scans decided")

        other.execute("BEGIN IMMEDIATE")  # another process holds the journal's write lock from here on
        upstream.start()  # the reporter posts the 20 and acknowledges them in the acknowledgements file
        for i in range(30):
            app.gate.submit(Scan(scans[i % len(scans)], "stdin"))
        wait_for(lambda: app.gate.decided == 50, "the 30 scans made during the lock decided")
        wait_for(lambda: ref.store.scan_count() == 20, "the first 20 posted while the journal is locked")
        wait_for(lambda: app.journal.counts()["sent"] == 20, "the first 20 acknowledged while the journal is locked")
        assert upstream.report_failures == 0
        assert app.journal.held == 30
        assert "journal" in app.faults.active()
        assert not app.journal.db.in_transaction

        other.execute("ROLLBACK")  # released
        wait_for(lambda: app.journal.held == 0 and app.journal.counts()["total"] == 50, "held decisions written")
        wait_for(lambda: app.journal.counts()["sent"] == 50, "every event acknowledged")
        wait_for(lambda: "journal" not in app.faults.active(), "the journal fault cleared")
    finally:
        stop.set()
        loop.join()
        upstream.stop()
        other.close()

    printed_ids = [json.loads(line)["id"] for line in printed.getvalue().splitlines()]
    assert len(printed_ids) == 50 and len(set(printed_ids)) == 50
    journalled = [e["id"] for e in app.journal.events()]
    assert journalled == printed_ids  # every printed decision, in the order it was decided
    uploaded = Counter(s["id"] for s in ref.store.scans())
    assert set(uploaded) == set(printed_ids)
    assert set(uploaded.values()) == {1}
    assert app.journal.counts() == {"total": 50, "pending": 0, "sent": 50, "isolated": 0}
