"""The background threads: periodic sync, "sync now", reporting on scan, heartbeat, backoff, and scans never waiting."""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

import pytest

from kiosk import demo
from kiosk.upstream import backoff_delay
from kiosk import compose

from .conftest import verdict


def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_threads_sync_report_and_heartbeat(app, ref):
    up = compose.upstream(app)
    up.start()
    try:
        wait_for(lambda: (app.state.get("last_sync") or {}).get("ok"))
        assert verdict(app, "I-1001") == "admit"
        verdict(app, "I-1003")
        wait_for(lambda: ref.store.scan_count() == 2)
        wait_for(lambda: app.journal.counts()["pending"] == 0)
        wait_for(lambda: ref.store.heartbeats())
        assert {t.name for t in threading.enumerate()} >= {"upstream-sync", "upstream-report"}
    finally:
        up.stop()
    assert not {t.name for t in threading.enumerate()} & {"upstream-sync", "upstream-report"}


def test_request_sync_fetches_at_once(make_app, ref):
    app = make_app(sync_interval_s=3600)
    up = compose.upstream(app)
    up.start()
    try:
        wait_for(lambda: app.snapshot.cursor == ref.store.cursor())
        cursor = ref.store.put([{"type": "customer", "id": "I-4242", "first_name": "Sam", "last_name": "Now",
                                 "groups": ["members"]}])
        up.request_sync()
        wait_for(lambda: app.snapshot.cursor == cursor)
        assert verdict(app, "I-4242") == "admit"
        assert app.state["last_sync"]["kind"] == "delta"
    finally:
        up.stop()


@pytest.mark.parametrize("mode", ["full", "delta"])
def test_scans_are_decided_from_the_held_snapshot_while_a_sync_is_mid_stream(make_app, ref, mode):
    app = make_app(timeout_s=5, sync_interval_s=3600)
    up = compose.upstream(app)
    if mode == "delta":
        up.sync_once()
    else:
        demo.seed(app.snapshot_path, app.clock())
        app.snapshot.reload()
    cursor = app.snapshot.cursor
    target = ref.store.put([{"type": "customer", "id": "I-1001", "first_name": "Jane", "last_name": "Smith",
                             "active": False, "groups": ["members"]}])
    ref.inject("stall", "snapshot")
    ref.slow_s = 60  # the answer stays half sent until the test lets it go on
    sent_before = ref.lines_sent
    up.start()
    try:
        wait_for(lambda: ref.lines_sent > sent_before)  # the answer is half sent; the sync thread waits for more
        assert app.state.get("last_sync") is None or app.state["last_sync"]["cursor"] != target
        # decided while the sync cannot finish: the stall lasts until unstall is set below
        assert verdict(app, "I-1001") == "admit"
        assert verdict(app, "I-1002") == "admit"
        assert app.snapshot.cursor == cursor
        ref.unstall.set()
        wait_for(lambda: app.snapshot.cursor == target)
        assert verdict(app, "i-1001") == "inactive"
    finally:
        ref.unstall.set()
        up.stop()


def test_failures_back_off_and_show_in_status(make_app, ref):
    app = make_app(sync_interval_s=0.1, retry_max_s=0.4)
    ref.inject("503", "snapshot", times=-1)
    up = compose.upstream(app)
    up.start()
    try:
        # the state is written after the counter and the fault: wait on what is asserted last
        wait_for(lambda: (app.state.get("last_sync") or {}).get("failures", 0) >= 3)
        assert up.sync_failures >= 3
        assert "503" in app.faults.active()["upstream"]
        ref.clear_faults()
        up.request_sync()
        wait_for(lambda: "upstream" not in app.faults.active())
        assert up.sync_failures == 0
    finally:
        up.stop()


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    rng = random.Random(7)
    for failures, full in [(1, 5), (2, 10), (3, 20), (4, 40), (7, 300), (30, 300)]:
        delays = [backoff_delay(failures, 5, 300, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jittered: kiosks don't retry in step
