"""A real Mosquitto on 127.0.0.1 (a free port, its own persistence folder) and real kiosk processes.

Skipped with the reason printed when mosquitto is not installed (.ci/run installs it with apt).
Nothing here waits a fixed time: every wait is for a condition, with a generous timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto -c conf: persistence on (a restart keeps sessions and queued messages), anonymous on loopback."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {folder}/\nautosave_interval 1\nmax_queued_messages 0\n"
                             f"log_dest file {folder}/mosquitto.log\n"
                             # started as root, mosquitto would become user mosquitto, who cannot write tmp_path
                             "user root\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._listening, f"mosquitto on port {self.port}")
        return self

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            assert self.proc is not None and self.proc.poll() is None, "mosquitto exited"
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def broker(tmp_path: Path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
    b = Broker(tmp_path / "broker").start()
    yield b
    b.kill()


class Proxy:
    """A TCP relay between one kiosk and the broker whose link a test can cut and heal (a partition)."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    @staticmethod
    def _relay(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.open.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def heal(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.server.close()


class Kiosk:
    """`kiosk run --simulate --headless --source stdin --events` with a [venue] section: scans go in a pipe."""

    def __init__(self, folder: Path, gate: str, broker_url: str, rules: dict[str, Any] | None = None, **venue: Any):
        self.folder = folder
        self.gate = gate
        self.state = folder / "state"
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "kiosk.toml"
        settings = {"broker": broker_url, "heartbeat_s": 0.5, **venue}
        lines = [f'state_dir = "{self.state}"', "[gate]", f'id = "{gate}"', "[venue]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        lines += ["[rules]"] + [f"{k} = {json.dumps(v)}" for k, v in (rules or {}).items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.log = folder / "kiosk.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Kiosk":
        env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(self.config), "run",
                                      "--simulate", "--headless", "--source", "stdin"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log, env=env,
                                     cwd=ROOT)
        wait_for(lambda: b"ready:" in self.log.read_bytes() or self.proc.poll() is not None, f"{self.gate} to start")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def scan(self, *texts: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("".join(t + "\n" for t in texts).encode())
        self.proc.stdin.flush()

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # end of input: the kiosk publishes what is left and says offline
        try:
            rc = self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._log.close()
        self.proc = None
        return rc

    # -- what its files hold ---------------------------------------------------------------
    def _query(self, name: str, sql: str, args: tuple = ()) -> list[tuple]:
        path = self.state / name
        if not path.exists():
            return []
        for _attempt in range(100):
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # the tables are not made yet
                last = exc  # a read-only reader can meet the WAL mid-checkpoint: read again
            finally:
                db.close()
            time.sleep(0.05)
        raise last

    def journal(self) -> list[tuple]:
        """(id, verdict, customer_id) of every journalled event, in order."""
        return self._query("journal.sqlite", "SELECT id, verdict, customer_id FROM events ORDER BY seq")

    def journal_ids(self) -> set[str]:
        return {r[0] for r in self.journal()}

    def peer_ids(self, gate: str | None = None) -> list[str]:
        if gate is None:
            return [r[0] for r in self._query("venue.sqlite", "SELECT id FROM peer_events")]
        return [r[0] for r in self._query("venue.sqlite", "SELECT id FROM peer_events WHERE gate = ?", (gate,))]

    def occupancy(self) -> dict[str, Any]:
        """`kiosk occupancy --json` beside the running kiosk: the union's zone as a fresh start counts it."""
        done = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(self.config), "occupancy", "--json"],
                              cwd=ROOT, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        return json.loads(done.stdout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def kiosks(tmp_path: Path):
    started: list[Kiosk] = []

    def make(gate: str, broker_url: str, rules: dict[str, Any] | None = None, **venue: Any) -> Kiosk:
        k = Kiosk(tmp_path / gate, gate, broker_url, rules, **venue).start()
        started.append(k)
        return k

    yield make
    for k in started:
        k.stop()
