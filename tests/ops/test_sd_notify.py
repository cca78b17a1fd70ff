"""kiosk.notify.Notifier against a real Unix datagram socket, and app.run()'s use of it."""

from __future__ import annotations

import io
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from kiosk import config as configuration
from kiosk.app import App
from kiosk.compose import run
from kiosk.notify import TEST_ONLY_STOP_WATCHDOG, Notifier


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def _drain(sock: socket.socket) -> list[str]:
    sock.settimeout(0.2)
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except (TimeoutError, BlockingIOError):
            return messages


@pytest.fixture
def path_socket(tmp_path: Path):
    path = str(tmp_path / "notify.sock")
    sock = _receiver(path)
    yield path, sock
    sock.close()


def test_ready_status_stopping_reach_the_socket(path_socket):
    path, sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    notifier.ready("ok, snapshot 3 min old, 0 unreported")
    notifier.status("fault: camera")
    notifier.stopping()
    notifier.close()
    assert [sock.recv(4096).decode() for _ in range(3)] == [
        "READY=1\nSTATUS=ok, snapshot 3 min old, 0 unreported", "STATUS=fault: camera", "STOPPING=1"]


def test_abstract_socket_address():
    name = f"kiosk-test-{uuid.uuid4().hex}"
    sock = _receiver("\0" + name)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.send("READY=1")
        assert sock.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_watchdog_pings_at_half_the_interval_and_at_once(path_socket):
    path, sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval == 1.0
    for now in (0.5, 1.0, 1.49, 1.5, 1.7, 2.6):  # monotonic seconds: 0.5 is just after boot
        notifier.watchdog(now)
    notifier.close()
    assert _drain(sock) == ["WATCHDOG=1"] * 3  # at 0.5, 1.5 and 2.6


def test_test_only_stop_file_ends_the_pings_for_good_and_is_consumed(path_socket, tmp_path: Path):
    path, sock = path_socket
    stop = tmp_path / TEST_ONLY_STOP_WATCHDOG
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())},
                        stop_file=stop)
    notifier.watchdog(0.0)
    stop.touch()
    for now in (1.0, 2.0, 3.0, 4.0):
        notifier.watchdog(now)
    notifier.close()
    assert _drain(sock) == ["WATCHDOG=1"]  # only the ping before the file appeared
    assert not stop.exists()  # consumed: the restarted kiosk pings again


def test_watchdog_meant_for_another_process_is_ignored(path_socket):
    path, sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_interval is None
    notifier.watchdog(100.0)
    notifier.status("still here")
    notifier.close()
    assert _drain(sock) == ["STATUS=still here"]


def test_outside_systemd_it_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.send("READY=1") is False
    notifier.ready()
    notifier.watchdog()
    notifier.close()


def test_a_vanished_socket_does_not_raise(tmp_path: Path):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.send("READY=1") is False
    notifier.close()


def test_app_run_sends_ready_watchdog_and_stopping(path_socket, tmp_path: Path, monkeypatch):
    path, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"I-1001\nnot-a-member\n")))
    config = configuration.Config(configuration.defaults(), "test").with_overrides(state_dir=str(tmp_path / "state"))
    app = App(config)
    try:
        assert run(app, source="stdin", headless=True) == 0
        assert app.gate.decided == 2
    finally:
        app.close()
    messages = _drain(sock)
    assert messages[0].startswith("READY=1\nSTATUS=")
    assert "unreported" in messages[0]
    assert "WATCHDOG=1" in messages
    assert messages[-1] == "STOPPING=1"
    assert messages.index("WATCHDOG=1") > 0
