"""Helpers for the adapter tests (a plain module: `conftest` names clash across test folders)."""

from __future__ import annotations

import queue
import time
from typing import Any, Callable

from kiosk.config import Config, validate
from kiosk.gate import Gate


def make_config(data: dict[str, Any] | None = None) -> Config:
    """A validated Config, as if `data` had been read from a kiosk.toml."""
    return Config(validate(data or {}, "test.toml"), "test.toml")


# The patience only stops a hung test; it is no speed requirement (a loaded CI machine may be slow).
PATIENCE_S = 60.0


def wait_for(condition: Callable[[], Any], timeout: float = PATIENCE_S, step: float = 0.005) -> Any:
    """Poll until `condition()` is truthy; returns its value, or fails the test at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


def drain(gate: Gate, expected: int, timeout: float = PATIENCE_S) -> list:
    """Decide the next `expected` scans a source submitted to `gate`, like the main loop does."""
    decisions = []
    deadline = time.monotonic() + timeout
    while len(decisions) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"only {len(decisions)} of {expected} scans arrived")
        try:
            scan = gate.scans.get(timeout=remaining)
        except queue.Empty:
            continue
        decisions.append(gate.handle(scan))
    return decisions
