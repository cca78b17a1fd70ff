"""Sources that can wait (stdin, a folder of images) get back-pressure; only live sources drop, counted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timezone

from kiosk import demo
from kiosk.app import App
from kiosk.config import Config, validate
from kiosk.ports import Scan


def test_twenty_thousand_lines_on_stdin_are_all_decided(tmp_path):
    state = tmp_path / "state"
    demo.seed(state / "snapshot.sqlite", datetime.now(timezone.utc))
    lines = [demo.SCANS[i % len(demo.SCANS)] + f"-{i}" if i % 3 else demo.SCANS[i % len(demo.SCANS)]
             for i in range(20_000)]
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--source", "stdin", "--headless", "--events",
                           "--state-dir", str(state)], input="\n".join(lines) + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(events) == 20_000
    assert [e["raw"] for e in events] == lines  # every line, in order
    assert "dropped" not in done.stderr


def test_a_waiting_source_blocks_on_a_full_queue_and_a_live_one_drops_and_counts(state_dir, clock):
    app = App(Config(validate({"state_dir": str(state_dir)}, "test.toml"), "test.toml"), clock=clock)
    try:
        gate = app.gate
        for _ in range(gate.scans.maxsize):
            gate.submit(Scan("I-1001", "camera"))
        gate.submit(Scan("I-1001", "camera"))  # live: dropped, counted
        assert gate.dropped == 1
        assert app.status()["scans_dropped"] == 1
        waiting = threading.Thread(target=gate.submit_waiting, args=(Scan("I-1003", "stdin"),))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()  # blocked, not dropped
        gate.scans.get_nowait()  # the loop takes one
        waiting.join()
        assert gate.dropped == 1 and gate.scans.qsize() == gate.scans.maxsize
        assert gate.scans.queue[-1].raw == "I-1003"
    finally:
        app.close()


def test_a_waiting_source_gives_up_once_the_loop_has_ended(state_dir, clock):
    app = App(Config(validate({"state_dir": str(state_dir)}, "test.toml"), "test.toml"), clock=clock)
    try:
        gate = app.gate
        for _ in range(gate.scans.maxsize):
            gate.submit(Scan("I-1001", "camera"))
        stop = threading.Event()
        stop.set()
        gate.run_loop(stop)  # ends at once: nobody takes scans any more
        gate.submit_waiting(Scan("I-1003", "stdin"))  # returns instead of hanging the reader thread
        assert gate.scans.qsize() == gate.scans.maxsize
    finally:
        app.close()


def test_an_image_folder_that_is_not_there_is_one_clear_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--source", "images:/nonexistent", "--headless",
                           "--state-dir", str(tmp_path / "state")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "/nonexistent" in done.stderr and "images:DIR" in done.stderr
