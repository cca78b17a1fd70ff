"""Reconnect delays for devices that come and go (scanners unplugged, a camera cable reseated)."""

from __future__ import annotations


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
