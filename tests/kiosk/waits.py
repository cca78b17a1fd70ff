"""Waiting on a condition in tests: the patience only stops a hung test, it is no speed requirement."""

from __future__ import annotations

import time
from typing import Callable


def wait_for(condition: Callable[[], object], what: str, patience_s: float = 120.0) -> None:
    """Poll until `condition` holds; fail naming `what` if it never does."""
    deadline = time.monotonic() + patience_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)
