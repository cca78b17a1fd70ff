"""GPIO inputs: the request-to-exit button, the door contact and the passage sensor.

Each wraps a gpiozero DigitalInputDevice (a contact to ground with the pull-up, or an active-high
sensor without it) and talks to the gate only through narrow ports (submit a scan, record an alarm or a
passage), which journal; gpiozero calls them on its own thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

from kiosk.ports import AlarmRecorder, Faults, Scan, Submit

log = logging.getLogger(__name__)


class ExitButton:
    """A press submits a journalled admit from source `exit_button`, which pulses the relay."""

    def __init__(self, button: Any, submit: Submit):
        self.button = button
        self.submit = submit
        button.when_activated = self._pressed

    def _pressed(self) -> None:
        log.info("request-to-exit button pressed")
        self.submit(Scan(raw="", source="exit_button", note="Request to exit"))

    def close(self) -> None:
        self.button.close()


class DoorMonitor:
    """The door contact (closed = door shut). Opening without a recent relay pulse is `door_forced`;
    staying open longer than `held_open_s` is `door_held_open`. Both are journalled and shown as a
    fault until the door shuts again."""

    def __init__(self, button: Any, alarms: AlarmRecorder, faults: Faults, *, held_open_s: float, grace_s: float,
                 unlocked_until: Callable[[], float]):
        self.button = button
        self.alarms = alarms
        self.faults = faults
        self.held_open_s = held_open_s
        self.grace_s = grace_s
        self.unlocked_until = unlocked_until  # monotonic end of the last relay pulse
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        button.when_deactivated = self._opened
        button.when_activated = self._closed
        if not button.is_active:
            log.warning("door is open at start")
            self._start_timer()

    @property
    def is_open(self) -> bool:
        return not self.button.is_active

    def _opened(self) -> None:
        authorised = time.monotonic() <= self.unlocked_until() + self.grace_s
        if not authorised:
            log.warning("door forced: opened without an admit")
            self.alarms.record_alarm("door_forced", "Door opened without an admit")
            self.faults.set("door", "Door forced open")
        self._start_timer()

    def _closed(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.faults.clear("door")

    def _start_timer(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.held_open_s, self._held_open)
            self._timer.daemon = True
            self._timer.start()

    def _held_open(self) -> None:
        with self._lock:
            self._timer = None
        if not self.is_open:
            return
        log.warning("door held open longer than %g s", self.held_open_s)
        self.alarms.record_alarm("door_held_open", f"Door open longer than {self.held_open_s:g} s")
        self.faults.set("door", "Door held open")

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.button.close()


class PassageMonitor:
    """Turnstile rotation or light beam. Each admit waits up to `timeout_s` for one passage, first
    come first served; it is journalled passed = true when the sensor fires in time, else false."""

    def __init__(self, button: Any, passages: AlarmRecorder, *, timeout_s: float):
        self.button = button
        self.passages = passages
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._waiting: collections.OrderedDict[str, threading.Timer] = collections.OrderedDict()
        button.when_activated = self._passed

    def expect(self, event_id: str) -> None:
        timer = threading.Timer(self.timeout_s, self._timed_out, args=(event_id,))
        timer.daemon = True
        with self._lock:
            self._waiting[event_id] = timer
        timer.start()

    def _passed(self) -> None:
        with self._lock:
            if not self._waiting:
                event_id = None
            else:
                event_id, timer = self._waiting.popitem(last=False)
                timer.cancel()
        if event_id is None:
            log.warning("passage sensor fired with no admit waiting (tailgating?)")
            return
        self.passages.record_passage(event_id, True)

    def _timed_out(self, event_id: str) -> None:
        with self._lock:
            if self._waiting.pop(event_id, None) is None:
                return
        log.info("no passage within %g s of admit %s", self.timeout_s, event_id)
        self.passages.record_passage(event_id, False)

    def close(self) -> None:
        with self._lock:
            for timer in self._waiting.values():
                timer.cancel()
            self._waiting.clear()
        self.button.close()
