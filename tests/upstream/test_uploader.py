"""Scan reporting over real HTTP: every event reaches the upstream exactly once, whatever goes wrong."""

from __future__ import annotations

from collections import Counter

import pytest

from kiosk import compose
from kiosk.errors import SyncError
from kiosk.ports import Scan
from kiosk.upstream.reference import RefUpstream

from .conftest import TOKEN, verdict


@pytest.fixture
def upstream(app):
    up = compose.upstream(app)
    up.sync_once()
    yield up
    up.stop()


def scan_many(app, n: int) -> list[str]:
    texts = ["I-1001", "I-1003", "HELLO", "O-2001", "I-1004"]
    for i in range(n):
        verdict(app, texts[i % len(texts)] if i % 7 else f"I-{i}")
    return [e["id"] for e in app.journal.events()]


def stored_ids(ref) -> Counter:
    return Counter(e["id"] for e in ref.store.scans())


def test_pending_events_are_reported_once_and_marked_sent(app, upstream, ref):
    ids = scan_many(app, 12)
    result = upstream.upload_once()
    assert result.accepted == 12 and result.requests == 1
    assert stored_ids(ref) == Counter(ids)
    assert app.journal.counts()["pending"] == 0
    assert upstream.upload_once().requests == 0  # nothing left: no request at all
    sent = ref.store.scans()[0]
    assert {"id", "at", "gate", "source", "raw", "credential", "verdict", "customer_id", "groups", "cursor",
            "passed"} <= set(sent)
    assert sent["cursor"] == app.snapshot.cursor
    assert ref.last_headers["scans"]["Kiosk-Device"] == "test-kiosk"


def test_a_backlog_goes_in_batches_of_500_oldest_first(app, upstream, ref):
    from datetime import timedelta

    start = app.clock()
    for i in range(1203):  # straight into the journal: 1203 gate scans would be slow for no gain
        app.journal.append(at=start + timedelta(milliseconds=i), gate="g", source="stdin", raw=f"I-{i}",
                           credential=f"I-{i}", verdict="not_recognised", customer_id=None, groups=(), cursor="c")
    result = upstream.upload_once()
    assert result.requests == 3 and result.accepted == 1203
    received = [e["raw"] for e in ref.store.scans()]
    assert sorted(received) == sorted(f"I-{i}" for i in range(1203))
    assert app.journal.counts() == {"total": 1203, "pending": 0, "sent": 1203, "isolated": 0}


def test_a_lost_answer_is_retried_and_the_upstream_counts_each_scan_once(app, upstream, ref):
    ids = scan_many(app, 8)
    ref.inject("lose_answer", "scans")
    with pytest.raises(SyncError, match="closed the connection"):
        upstream.upload_once()
    assert app.journal.counts()["pending"] == 8  # stored upstream, but not acknowledged: kept
    assert "upstream" in app.faults.active()
    assert upstream.upload_once().accepted == 8
    assert stored_ids(ref) == Counter(ids)  # each exactly once
    assert "upstream" not in app.faults.active()


def test_a_slow_answer_times_out_keeps_the_events_and_the_retry_is_deduplicated(app, upstream, ref):
    ids = scan_many(app, 5)
    ref.inject("slow", "scans")
    with pytest.raises(SyncError, match="timed out"):
        upstream.upload_once()
    assert app.journal.counts()["pending"] == 5
    upstream.upload_once()
    assert stored_ids(ref) == Counter(ids)
    assert app.journal.counts()["pending"] == 0


def test_duplicate_and_foreign_ids_in_accepted_mark_only_our_events(app, upstream, ref):
    ids = scan_many(app, 6)
    ref.inject("accept_extra", "scans")
    result = upstream.upload_once()
    assert result.accepted == 6
    assert app.journal.counts() == {"total": 6, "pending": 0, "sent": 6, "isolated": 0}
    assert stored_ids(ref) == Counter(ids)


def test_events_the_upstream_holds_back_stay_pending_for_the_next_round(app, upstream, ref):
    scan_many(app, 10)
    ref.inject("hold_back", "scans")
    assert upstream.upload_once().accepted == 5
    assert app.journal.counts()["pending"] == 5
    assert upstream.upload_once().accepted == 5
    assert app.journal.counts()["pending"] == 0 and len(stored_ids(ref)) == 10


@pytest.mark.parametrize("bad_positions", [[6], [0, 19], [3, 4, 5]])
def test_bad_events_are_bisected_out_and_set_aside_the_rest_is_reported(app, upstream, ref, bad_positions):
    ids = scan_many(app, 20)
    bad = {ids[i] for i in bad_positions}
    ref.bad_ids = set(bad)
    result = upstream.upload_once()
    assert set(result.isolated) == bad
    assert result.accepted == 20 - len(bad)
    assert set(stored_ids(ref)) == set(ids) - bad
    assert {e["id"] for e in app.journal.isolated()} == bad
    assert all("refused" in e["note"] for e in app.journal.isolated())
    assert app.status()["journal"]["isolated"] == len(bad)
    assert app.journal.counts()["pending"] == 0
    assert upstream.upload_once().requests == 0  # set aside: they never block the queue again


@pytest.mark.parametrize("fault,fault_name", [("500", "upstream"), ("503", "upstream"), ("401", "token"),
                                              ("403", "upstream"), ("close", "upstream")])
def test_a_refusing_upstream_loses_nothing_and_isolates_nothing(app, upstream, ref, fault, fault_name):
    ids = scan_many(app, 7)
    ref.inject("lose_answer" if fault == "close" else fault, "scans")
    with pytest.raises(SyncError):
        upstream.upload_once()
    assert app.journal.counts() == {"total": 7, "pending": 7, "sent": 0, "isolated": 0}
    assert fault_name in app.faults.active()
    assert app.state["last_upload"]["ok"] is False
    upstream.upload_once()
    assert set(stored_ids(ref)) == set(ids) and max(stored_ids(ref).values()) == 1
    assert not {"upstream", "token"} & set(app.faults.active())


def test_a_wrong_url_is_an_upstream_fault_not_a_reason_to_set_events_aside(make_app, ref):
    app = make_app(url=ref.url + "/nothing-here")
    up = compose.upstream(app)
    try:
        scan_many(app, 4)
        with pytest.raises(SyncError, match="404"):
            up.upload_once()
        assert app.journal.counts()["isolated"] == 0 and app.journal.counts()["pending"] == 4
    finally:
        up.stop()


def test_upstream_down_keeps_everything_then_drains(app, upstream, ref):
    ref.stop()
    ids = scan_many(app, 5)
    assert verdict(app, "I-1002") == "admit"  # still decided from the held snapshot
    with pytest.raises(SyncError, match="cannot reach"):
        upstream.upload_once()
    with pytest.raises(SyncError, match="cannot reach"):
        upstream.sync_once()
    assert app.journal.counts()["pending"] == 6
    assert app.status()["journal"]["unreported"] == 6
    assert "cannot reach" in app.faults.active()["upstream"]
    back = RefUpstream(ref.store, TOKEN, port=ref.port).start()  # the same upstream comes back
    try:
        assert upstream.upload_once().accepted == 6
        assert set(stored_ids(ref)) == set(ids) | {e["id"] for e in app.journal.events()}
        upstream.sync_once()
        assert "upstream" not in app.faults.active()
    finally:
        back.stop()


def test_a_passage_result_after_reporting_is_reported_again_with_the_same_id(app, upstream, ref):
    decision = app.gate.handle(Scan("I-1001", "stdin"))
    upstream.upload_once()
    assert ref.store.scans()[0]["passed"] is None
    app.gate.record_passage(decision.event_id, True)
    assert upstream.upload_once().accepted == 1
    scans = ref.store.scans()
    assert len(scans) == 1 and scans[0]["passed"] is True


def test_heartbeat_carries_the_kiosk_state(app, upstream, ref):
    scan_many(app, 3)
    app.faults.set("camera", "Camera not found")
    upstream.heartbeat_once()
    beat = ref.store.heartbeats()[-1]
    assert beat["device"] == "test-kiosk" and beat["version"]
    assert beat["cursor"] == app.snapshot.cursor and beat["queue"] == 3
    assert beat["faults"] == ["camera"] and beat["last_scan_at"] and beat["snapshot_age_s"] >= 0
    assert beat["uptime_s"] >= 0


def test_heartbeat_queue_counts_the_decisions_held_while_the_journal_is_locked(app, upstream, ref):
    import sqlite3

    scan_many(app, 2)
    blocker = sqlite3.connect(app.journal.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the journal's write lock
    try:
        for _ in range(3):
            verdict(app, "I-1001")
        assert app.journal.held == 3
        upstream.heartbeat_once()
        assert ref.store.heartbeats()[-1]["queue"] == 5
    finally:
        blocker.rollback()
        blocker.close()
