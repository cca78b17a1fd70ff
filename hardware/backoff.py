"""Devices that come and go (scanners unplugged, a camera cable reseated): reconnect delays and health."""

from __future__ import annotations

import logging

from kiosk.ports import Faults


class Backoff:
    """Doubling delays from `first` up to `maximum` seconds; `reset()` once the device is back."""

    def __init__(self, first: float = 0.5, maximum: float = 30.0):
        self.first = min(first, maximum)
        self.maximum = maximum
        self._delay = self.first

    def next(self) -> float:
        delay = self._delay
        self._delay = min(self.maximum, self._delay * 2)
        return delay

    def reset(self) -> None:
        self._delay = self.first


class DeviceWatch:
    """One device's health as its reader thread sees it.

    An outage is logged once, when it starts, and once more when the device is back; the
    fault (screen banner, status) stays set while it lasts; reconnect delays back off.
    """

    def __init__(self, faults: Faults, fault: str, log: logging.Logger, *, first: float, maximum: float):
        self.faults = faults
        self.fault = fault
        self.log = log
        self.backoff = Backoff(first, maximum)
        self.down = False

    def lost(self, log_message: str, fault_message: str) -> None:
        if not self.down:
            self.log.error(log_message)
            self.down = True
        self.faults.set(self.fault, fault_message)

    def back(self, log_message: str) -> None:
        if self.down:
            self.log.info(log_message)
        self.down = False
        self.backoff.reset()
        self.faults.clear(self.fault)

    def next_delay(self) -> float:
        return self.backoff.next()
