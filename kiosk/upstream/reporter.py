"""The uploader in a process of its own (`upstream.reporter = "process"`), supervised by `kiosk run`.

Reporting a long backlog is JSON, HTTP and SQLite reads: on a thread of `kiosk run` it shares the
interpreter's lock with the scans. Here it runs in a child process at a lower CPU priority, reading
the journal on its own connection and writing acknowledgements only to the acknowledgements file
(kiosk/journal.py), so neither the GIL nor the journal's write lock is ever shared with a scan.

The parent (`ReporterProcess`) talks to it through two pipes:
- to the child, on stdin: one JSON line first (the effective config, the journal's path and the
  journal's sync setting: never on the command line, where `ps` shows it to every user), then one
  byte per journalled scan, which wakes it; end of file stops it after the batch in hand;
- from the child, on stdout: one JSON line per round that sent something or failed, which the
  parent turns into `state["last_upload"]` and the "upstream"/"token" faults, as the thread did.
Its log goes to stderr, which is the parent's (the service's journal).

If the child dies, the parent logs it, shows the fault and starts it again with backoff; events
stay pending in the journal meanwhile, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import select
import subprocess
import sys
import threading
import time
from typing import IO, Any, Callable

from .uploader import backoff_delay

log = logging.getLogger(__name__)

NICE = 10  # the child's CPU niceness over the gate's: a scan wins the CPU whenever both want it
STOP_S = 10.0  # how long a stopping child may finish its batch before it is killed
RESTART_MAX_S = 60.0


class ReporterProcess:
    """The parent's side: starts the child, wakes it on each scan, reads its outcomes, restarts it if it dies."""

    def __init__(self, handshake: dict[str, Any], on_outcome: Callable[[dict[str, Any]], None], *,
                 command: list[str] | None = None, rng: random.Random | None = None):
        self.handshake = handshake
        self.on_outcome = on_outcome
        # Not `-m kiosk.upstream.reporter`: the package imports this module before runpy would run it again.
        self.command = command or [sys.executable, "-c", "import sys; from kiosk.upstream.reporter import main; "
                                   "sys.exit(main())"]
        self.rng = rng or random.Random()
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="upstream-reporter", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(self.handshake).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # it died at once: _supervise sees its end and starts it again
        # From here on the gate's thread writes wakes: never let it block on a child that does not read.
        os.set_blocking(proc.stdin.fileno(), False)
        with self._lock:
            self._proc = proc
        self.starts += 1

    def wake(self) -> None:
        """Called on the gate's thread for each journalled scan: one byte, never blocking, never raising."""
        with self._lock:
            proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):  # a full pipe is awake already; a dead child restarts
            os.write(proc.stdin.fileno(), b"\n")

    def _supervise(self) -> None:
        failures = 0
        while True:
            with self._lock:
                proc = self._proc
            assert proc is not None and proc.stdout is not None
            started = time.monotonic()
            for line in proc.stdout:
                try:
                    outcome = json.loads(line)
                except ValueError:
                    log.warning("the reporter process wrote something that is not an outcome: %r", line[:200])
                    continue
                if isinstance(outcome, dict):
                    self.on_outcome(outcome)
            code = proc.wait()
            if self._stopping.is_set():
                return
            failures = 1 if time.monotonic() - started > RESTART_MAX_S else failures + 1
            delay = backoff_delay(failures, 1.0, RESTART_MAX_S, self.rng)
            log.error("the reporter process stopped (exit code %s); started again in %.1f s", code, delay)
            self.on_outcome({"ok": False, "error": f"the reporter process stopped (exit code {code})"})
            if self._stopping.wait(delay):
                return
            try:
                self._spawn()
            except OSError as exc:
                log.error("the reporter process cannot be started: %s", exc)
                self.on_outcome({"ok": False, "error": f"the reporter process cannot be started: {exc}"})
                if self._stopping.wait(RESTART_MAX_S):
                    return

    def stop(self, timeout: float = STOP_S) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # end of file: the child stops after the batch in hand
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the reporter process did not stop within %.0f s; killed", timeout)
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self._proc is None else self._proc.pid


# -- the child ---------------------------------------------------------------------------------

class _Wakes:
    """Reads the parent's stdin on a thread: each byte wants an upload, end of file stops the child."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.wanted = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._read, name="reporter-wakes", daemon=True).start()

    def _read(self) -> None:
        fd = self.stream.fileno()
        while True:
            select.select([fd], [], [])
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                self.stop.set()
                self.wanted.set()
                return
            self.wanted.set()


def _emit(out: IO[str], outcome: dict[str, Any]) -> None:
    out.write(json.dumps(outcome) + "\n")
    out.flush()


def run_child(stdin: IO[bytes], stdout: IO[str]) -> int:
    from ..config import Config, validate
    from ..errors import KioskError
    from ..journal import Journal
    from ..gate import utc_now
    from . import UpstreamSettings
    from .client import UpstreamClient, UpstreamError
    from .uploader import PAUSE_BETWEEN_BATCHES_S, upload_round

    first = stdin.readline()
    try:
        hello = json.loads(first)
        config = Config(validate(hello["config"], hello["source"]), hello["source"])
        settings = UpstreamSettings.from_config(config)
        journal_path, sync = str(hello["journal"]), str(hello["sync"])
    except (ValueError, KeyError, TypeError, KioskError) as exc:
        log.error("the reporter process got no usable start line: %s", exc)
        return 2
    wakes = _Wakes(stdin)
    pacer = settings.pacer(random.Random())
    failures = 0
    client = UpstreamClient(settings.client)
    with Journal(journal_path, sync=sync) as journal:
        while not wakes.stop.is_set():
            wakes.wanted.clear()
            now = time.monotonic()
            if pacer.due(now) and journal.pending_after(pacer.after, 1)[0]:
                try:
                    result = upload_round(client, journal, utc_now, stop=wakes.stop, pause_s=PAUSE_BETWEEN_BATCHES_S,
                                          after=pacer.after)
                except KioskError as exc:
                    failures += 1
                    pacer.failed(now, failures)
                    _emit(stdout, {"ok": False, "error": str(exc),
                                   "status": exc.status if isinstance(exc, UpstreamError) else None})
                else:
                    failures = 0
                    pacer.succeeded(result.after)
                    if result.requests:
                        _emit(stdout, {"ok": True, "accepted": result.accepted, "isolated": len(result.isolated),
                                       "requests": result.requests})
            wakes.wanted.wait(pacer.wait_s(time.monotonic()))
    client.close()
    return 0


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(NICE)  # first, before the imports: a scan wins the CPU from here on
    logging.basicConfig(level=logging.INFO, format="%(levelname)s kiosk reporter: %(message)s")
    return run_child(sys.stdin.buffer, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
