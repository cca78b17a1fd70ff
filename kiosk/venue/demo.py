"""`scripts/demo --venue`: a Mosquitto on loopback and two simulated gates sharing one capacity.

The lounge holds two. The front door lets Jane in, the side door lets Pieter in; then Acme's card
is `full` at both doors, because each gate counts the other's admits.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import IO, Callable

GATES = ("front", "side")
PLAN = [("front", "I-1001"), ("side", "I-1002"), ("front", "O-2001"), ("side", "O-2001")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition: Callable[[], object], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _logged(path: Path, text: bytes) -> bool:
    return text in path.read_bytes()


def _holds(path: Path, sql: str, rows: int) -> bool:
    return len(_rows(path, sql)) >= rows


def stdin(proc: subprocess.Popen) -> IO[bytes]:
    """A gate's stdin (each is started with stdin=PIPE)."""
    assert proc.stdin is not None
    return proc.stdin


def _rows(path: Path, sql: str) -> list[tuple]:
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def main(folder: str) -> int:
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto is None:
        print("demo --venue needs the Mosquitto broker: sudo apt-get install mosquitto (then run it again)")
        return 1
    root = Path(folder)
    shutil.rmtree(root, ignore_errors=True)  # a fresh venue each time: the demo's counts start empty
    root.mkdir(parents=True)
    port = _free_port()
    (root / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([mosquitto, "-c", str(root / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    gates: dict[str, subprocess.Popen] = {}
    try:
        for gate in GATES:
            (root / gate).mkdir()
            (root / gate / "kiosk.toml").write_text(
                f'state_dir = "{root / gate / "state"}"\n[gate]\nid = "{gate}"\n'
                f'[rules]\nzone = "lounge"\ncapacity = 2\ndirection = "in"\n'
                f'[venue]\nbroker = "mqtt://127.0.0.1:{port}"\nid = "demo"\nheartbeat_s = 1\n')
            gates[gate] = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "--config", str(root / gate / "kiosk.toml"), "run", "--simulate",
                 "--headless", "--source", "stdin"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=open(root / gate / "kiosk.log", "wb"))
        print(f"Mosquitto on 127.0.0.1:{port}; gates {' and '.join(GATES)} lead into the lounge (capacity 2)")
        for gate in GATES:
            if not _wait(partial(_logged, root / gate / "kiosk.log", b"venue link connected")):
                print(f"demo --venue: gate {gate} did not connect; see {root / gate / 'kiosk.log'}")
                return 1
        for gate, text in PLAN:
            other = next(g for g in GATES if g != gate)
            # a gate decides on what it has heard: wait until the other gate's admits have arrived
            theirs = len(_rows(root / other / "state" / "journal.sqlite", "SELECT id FROM events"))
            _wait(partial(_holds, root / gate / "state" / "venue.sqlite", "SELECT id FROM peer_events", theirs))
            mine = len(_rows(root / gate / "state" / "journal.sqlite", "SELECT id FROM events"))
            stdin(gates[gate]).write(f"{text}\n".encode())
            stdin(gates[gate]).flush()
            _wait(partial(_holds, root / gate / "state" / "journal.sqlite", "SELECT id FROM events", mine + 1))
            verdict, reason = _rows(root / gate / "state" / "journal.sqlite",
                                    "SELECT verdict, reason FROM events ORDER BY seq DESC LIMIT 1")[0]
            print(f"{gate:>6}: {text:<8} -> {verdict:<8} {reason}")
        fleet = [sys.executable, "-m", "kiosk.cli", "--config", str(root / "front" / "kiosk.toml"), "fleet"]

        def heard_both() -> bool:  # the heartbeats that follow the scans have reached the broker
            seen = subprocess.run(fleet + ["--json"], capture_output=True, text=True, timeout=60)
            gates = json.loads(seen.stdout or "{}").get("gates", [])
            return len(gates) == 2 and all(g.get("last_scan_at") for g in gates)

        _wait(heard_both, timeout=30)
        print(subprocess.run(fleet, capture_output=True, text=True, timeout=60).stdout, end="")
        return 0
    finally:
        for proc in gates.values():
            stdin(proc).close()
        for proc in gates.values():
            proc.wait(timeout=60)
        broker.terminate()
        broker.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
