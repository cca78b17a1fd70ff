"""upstream.reporter = "process": the scans go upstream from a child process that `kiosk run` supervises."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Callable

import pytest

from kiosk import compose
from kiosk.upstream.reporter import NICE, ReporterProcess, run_child

from .conftest import verdict

PATIENCE_S = 60.0  # only stops a hung test: a loaded machine may take seconds to start a Python process


def wait_for(condition: Callable[[], object]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet waited for) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_scans_are_reported_by_a_child_process_at_a_lower_priority(make_app, ref):
    app = make_app(reporter="process", heartbeat_s=3600)
    up = compose.upstream(app)
    up.start()
    try:
        pid = up._reporter.pid
        assert pid is not None and pid != os.getpid() and alive(pid)
        lower = min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
        wait_for(lambda: os.getpriority(os.PRIO_PROCESS, pid) >= lower)
        for text in ("I-1001", "I-1003", "NOPE"):
            verdict(app, text)
        wait_for(lambda: ref.store.scan_count() == 3)
        wait_for(lambda: app.journal.counts()["pending"] == 0)
        wait_for(lambda: (app.state.get("last_upload") or {}).get("ok"))
        assert app.state["last_upload"]["accepted"] >= 1
    finally:
        up.stop()
    assert not alive(pid)  # stopped with the kiosk


def test_the_thread_setting_keeps_the_reporter_in_process(make_app, ref):
    app = make_app(reporter="thread", heartbeat_s=3600)
    up = compose.upstream(app)
    up.start()
    try:
        assert up._reporter is None
        verdict(app, "I-1001")
        wait_for(lambda: ref.store.scan_count() == 1)
    finally:
        up.stop()


def test_a_killed_reporter_is_started_again_and_nothing_is_lost(make_app, ref, caplog):
    app = make_app(reporter="process", heartbeat_s=3600)
    up = compose.upstream(app)
    up.start()
    try:
        verdict(app, "I-1001")
        wait_for(lambda: ref.store.scan_count() == 1)
        first = up._reporter.pid
        with caplog.at_level(logging.ERROR, logger="kiosk.upstream.reporter"):
            os.kill(first, signal.SIGKILL)
            wait_for(lambda: up._reporter.pid not in (None, first))
        assert "the reporter process stopped" in caplog.text
        for text in ("I-1002", "I-1003"):
            verdict(app, text)
        wait_for(lambda: ref.store.scan_count() == 3)
        wait_for(lambda: "upstream" not in app.faults.active())  # its next good round clears the fault
        assert up._reporter.starts == 2
    finally:
        up.stop()


@pytest.mark.parametrize("fault, shown", [("503", "upstream"), ("401", "token")])
def test_the_childs_failures_show_as_the_threads_did(make_app, ref, fault, shown):
    app = make_app(reporter="process", heartbeat_s=3600, retry_max_s=0.4)
    ref.inject(fault, "scans", times=-1)
    up = compose.upstream(app)
    up.start()
    try:
        verdict(app, "I-1001")
        wait_for(lambda: shown in app.faults.active())
        wait_for(lambda: (app.state.get("last_upload") or {}).get("failures", 0) >= 1)
        assert app.state["last_upload"]["ok"] is False
        assert app.journal.counts()["pending"] == 1
        ref.clear_faults()
        wait_for(lambda: ref.store.scan_count() == 1)
        wait_for(lambda: shown not in app.faults.active())
    finally:
        up.stop()


@pytest.mark.parametrize("line, fault", [
    ({"ok": "yes", "accepted": 3}, "Upstream reporting: the reporter process failed"),
    ({"ok": False, "error": "x" * 5000, "status": True}, "Upstream reporting: " + "x" * 500),
    ({"ok": False, "error": "refused", "status": 401}, None),
])
def test_an_outcome_line_is_checked_like_any_input(make_app, ref, line, fault):
    app = make_app(reporter="process")
    up = compose.upstream(app)
    up._reported(line)
    if fault is None:
        assert "token" in app.faults.active()
    else:
        assert app.faults.active()["upstream"] == fault
    up._reported({"ok": True, "accepted": -4, "requests": "many"})  # nonsense counts read as none
    assert "upstream" not in app.faults.active()
    assert up.report_failures == 0


def test_a_child_without_a_usable_start_line_stops_and_says_why(caplog):
    with caplog.at_level(logging.ERROR, logger="kiosk.upstream.reporter"):
        assert run_child(io.BytesIO(b"not json\n"), io.StringIO()) == 2
        assert run_child(io.BytesIO(json.dumps({"config": {"upstream": {"url": 5}}, "source": "x.toml",
                                                "journal": "/nowhere", "sync": "normal"}).encode() + b"\n"),
                         io.StringIO()) == 2
    assert "no usable start line" in caplog.text and "upstream.url" in caplog.text


def test_waking_a_child_that_does_not_read_never_blocks_the_gate(tmp_path):
    reporter = ReporterProcess({}, lambda outcome: None,
                               command=[sys.executable, "-c", "import time; time.sleep(600)"])
    reporter.start()
    woken = threading.Event()

    def wake_a_lot() -> None:
        for _ in range(200_000):  # ~3 pipe buffers full
            reporter.wake()
        woken.set()

    thread = threading.Thread(target=wake_a_lot, daemon=True)
    thread.start()
    try:
        assert woken.wait(PATIENCE_S)
    finally:
        reporter.stop(timeout=0.5)  # it ignores end of file: killed
    assert not alive(reporter.pid)
