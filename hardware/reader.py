"""One reconnecting reader loop for every device that delivers scans: serial and HID scanners, the camera.

Modelled on pyserial's `serial.threaded.ReaderThread` + `Protocol`: the loop owns the thread,
start/stop, reconnecting with backoff, the device's fault (screen banner, status) and the log
lines about it; the device only opens, reads and closes. Unplugging a device never stops the
kiosk: the fault is set while it is away and the device is reopened until it is back.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from kiosk.errors import KioskError
from kiosk.ports import Faults

from .backoff import Backoff

log = logging.getLogger(__name__)

STOP_WAIT_S = 2.0  # how long stop() waits for a read in progress to return


class Device(Protocol):
    """What a device supplies to the loop. Errors are the project's own (ScannerError, CameraError):
    the device maps its library's errors at its edge, and their text is the fault shown to staff."""

    def open(self) -> None:
        """Connect; raise when the device is not there."""

    def read(self) -> None:
        """Read once and hand on what was read; return within a fraction of a second so stop() is seen."""

    def close(self) -> None:
        """Let go of the device; never raises."""


class ReaderLoop:
    """Reads `device` on its own thread until stopped, reopening it with backoff whenever it fails.

    An outage is logged once when it starts (on the device's own logger) and once more when the
    device is back; the fault named `fault` stays set on `faults` while it lasts.
    """

    def __init__(self, device: Device, faults: Faults, *, fault: str, what: str, thread_name: str,
                 logger: logging.Logger = log, reconnect_min_s: float = 0.5, reconnect_max_s: float = 30.0):
        self.device = device
        self.faults = faults
        self.fault = fault
        self.what = what  # how the log names the device: "serial scanner /dev/ttyACM0"
        self.thread_name = thread_name
        self.log = logger
        self.backoff = Backoff(reconnect_min_s, reconnect_max_s)
        self.connected = threading.Event()  # the device is open and reads
        self._down = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join(STOP_WAIT_S)
        if thread.is_alive():  # a read hung in the driver: the thread closes the device once it returns
            self.log.warning("%s did not stop within %g s; leaving it to close when its read returns",
                             self.what, STOP_WAIT_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.device.open()
            except Exception as exc:  # whatever it was, the kiosk keeps running and retries
                self._lost(exc, "not available")
                self._stop.wait(self.backoff.next())
                continue
            try:
                # back once it reads, not merely opens: a device that opens and fails at once is still
                # down, so its retries back off and its log stays one line per outage
                self.device.read()
                self._back()
                while not self._stop.is_set():
                    self.device.read()
            except Exception as exc:  # as above; a stop in the middle of a read is no outage
                if not self._stop.is_set():
                    self._lost(exc, "went away")
            finally:
                self.connected.clear()
                self.device.close()
            if not self._stop.is_set():
                self._stop.wait(self.backoff.next())

    def _lost(self, exc: Exception, how: str) -> None:
        if isinstance(exc, KioskError):
            cause = exc.__cause__ or exc
            message = str(exc)
        else:  # not mapped by the device: a bug or a library error nobody expected; keep the traceback
            cause, message = exc, f"{self.what} failed: {exc}"
        if not self._down:
            self.log.error("%s %s (%s); retrying in the background", self.what, how, cause,
                           exc_info=not isinstance(exc, KioskError))
            self._down = True
        self.faults.set(self.fault, message)

    def _back(self) -> None:
        if self._down:
            self.log.info("%s is back", self.what)
        self._down = False
        self.backoff.reset()
        self.faults.clear(self.fault)
        self.connected.set()
