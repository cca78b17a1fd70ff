"""The one reconnecting reader loop (hardware.reader), once, with a fake device on a real thread."""

from __future__ import annotations

import errno
import logging
import queue
import threading

from hardware.reader import ReaderLoop
from kiosk.errors import ScannerError
from kiosk.ports import Faults
from tests.kiosk.waits import wait_for

THREAD = "test-reader"


class ScriptedDevice:
    """A device that fails to open as often as the test says, then reads what the test puts in `feed`:
    a text is read, an exception is raised from read() (the device going away mid-read)."""

    def __init__(self, failed_opens: int, failed_reads: int = 0):
        self.failed_opens = failed_opens
        self.failed_reads = failed_reads  # reads that fail at once, each right after an open that worked
        self.feed: queue.Queue[object] = queue.Queue()
        self.read_texts: list[str] = []
        self.opens = 0
        self.closes = 0
        self.open_now = False

    def open(self) -> None:
        self.opens += 1
        if self.failed_opens:
            self.failed_opens -= 1
            raise ScannerError("Test scanner not connected") from FileNotFoundError(errno.ENOENT, "No such device")
        self.open_now = True

    def read(self) -> None:
        if self.failed_reads:
            self.failed_reads -= 1
            raise ScannerError("Test scanner not responding") from OSError(errno.EIO, "Input/output error")
        try:
            item = self.feed.get(timeout=0.05)
        except queue.Empty:
            return
        if isinstance(item, Exception):
            raise item
        self.read_texts.append(str(item))

    def close(self) -> None:
        self.closes += 1
        self.open_now = False


def loop_for(device: ScriptedDevice, faults: Faults) -> ReaderLoop:
    return ReaderLoop(device, faults, fault="test", what="test scanner", thread_name=THREAD,
                      logger=logging.getLogger("test.reader"), reconnect_min_s=0.01, reconnect_max_s=0.05)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def test_absent_at_start_then_lost_mid_read_then_back(caplog):
    caplog.set_level(logging.INFO, logger="test.reader")
    faults = Faults()
    seen: list[tuple[str, str | None]] = []
    faults.subscribe(lambda name, message: seen.append((name, message)))
    device = ScriptedDevice(failed_opens=3)
    loop = loop_for(device, faults)
    loop.start()
    try:
        wait_for(loop.connected.is_set, "the device opened after three failed opens")
        assert device.opens == 4 and "test" not in faults.active()
        device.feed.put("I-1001")
        wait_for(lambda: device.read_texts == ["I-1001"], "the first text read")
        device.feed.put(ScannerError("Test scanner disconnected"))
        wait_for(lambda: device.opens == 5, "reopened after the device went away")
        wait_for(loop.connected.is_set, "connected again")
        device.feed.put("O-2001")
        wait_for(lambda: device.read_texts == ["I-1001", "O-2001"], "the text read after reconnecting")
    finally:
        loop.stop()
    assert not reader_threads()
    assert not device.open_now and device.closes == 2  # once after the outage, once at stop
    assert not loop.connected.is_set()
    assert "test" not in faults.active()
    assert seen == [("test", "Test scanner not connected"), ("test", None),
                    ("test", "Test scanner disconnected"), ("test", None)]
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "test.reader"]
    assert lines == [  # each outage logged once when it starts, not once per retry, and once when it ends
        ("ERROR", "test scanner not available ([Errno 2] No such device); retrying in the background"),
        ("INFO", "test scanner is back"),
        ("ERROR", "test scanner went away (Test scanner disconnected); retrying in the background"),
        ("INFO", "test scanner is back"),
    ]


def test_an_unmapped_error_is_a_fault_with_its_traceback_and_the_loop_carries_on(caplog):
    faults = Faults()
    device = ScriptedDevice(failed_opens=0)
    loop = loop_for(device, faults)
    loop.start()
    try:
        device.feed.put(ZeroDivisionError("a bug in a device"))
        wait_for(lambda: device.opens == 2, "reopened after the bug")
        device.feed.put("I-1001")
        wait_for(lambda: device.read_texts == ["I-1001"], "read after the bug")
    finally:
        loop.stop()
    errors = [r for r in caplog.records if r.name == "test.reader" and r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "a bug in a device" in errors[0].getMessage()


def test_still_absent_when_stopped_leaves_the_fault_and_no_thread():
    faults = Faults()
    device = ScriptedDevice(failed_opens=10**9)
    loop = loop_for(device, faults)
    loop.start()
    try:
        wait_for(lambda: device.opens >= 3, "a few retries")
    finally:
        loop.stop()
    assert not reader_threads()
    assert faults.active() == {"test": "Test scanner not connected"}
    assert device.closes == 0  # never opened, never closed


def test_a_device_that_opens_but_cannot_read_stays_down_and_is_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="test.reader")
    faults = Faults()
    device = ScriptedDevice(failed_opens=0, failed_reads=4)
    loop = loop_for(device, faults)
    loop.start()
    try:
        wait_for(loop.connected.is_set, "the device read at last")
        device.feed.put("I-1001")
        wait_for(lambda: device.read_texts == ["I-1001"], "the first text read")
    finally:
        loop.stop()
    assert device.opens == 5 and device.closes == 5
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "test.reader"]
    assert lines == [("ERROR", "test scanner went away ([Errno 5] Input/output error); retrying in the background"),
                     ("INFO", "test scanner is back")]
