"""systemd's notify protocol in the standard library: a no-op outside systemd.

READY once devices are open and the snapshot is loaded, STATUS lines, STOPPING, and
WATCHDOG pings that only the main loop sends, so a hung loop gets the service restarted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


# TEST ONLY (scripts/system-test): a file by this name in the state dir makes the running kiosk
# stop its watchdog pings for good, as a hung main loop would, so the watchdog restart is proven.
TEST_ONLY_STOP_WATCHDOG = "TEST-ONLY-stop-watchdog"


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None, stop_file: Path | None = None) -> None:
        env = os.environ if env is None else env
        self._stop_file = stop_file
        self._stopped = False
        self.address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        # ping at half the watchdog interval, as sd_watchdog_enabled(3) advises
        self.watchdog_interval = int(usec) / 2e6 if watchdog else None
        self._last_ping: float | None = None  # None: ping on the first turn, however soon after boot
        self._sock: socket.socket | None = None
        if self.address:
            if self.address.startswith("@"):
                self.address = "\0" + self.address[1:]
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, message: str) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message.encode("utf-8"), self.address)
            return True
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> None:
        """Call from the main loop on every turn; pings only as often as the interval needs."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic() if now is None else now
        if self._last_ping is None or now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            if not self._stopped and self._stop_file is not None and self._stop_file.exists():
                with contextlib.suppress(OSError):  # consumed where it can be; the pings stop either way
                    self._stop_file.unlink()
                self._stopped = True
                log.warning("test only: %s found, watchdog pings stopped", self._stop_file)
            if not self._stopped:
                self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
