"""The small ports that adapters in `hardware/` (and the CLI) implement.

The core never imports an adapter; the composition root (`kiosk.app`) wires them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

from .model import Decision


@dataclass(frozen=True)
class Scan:
    """One scanned text as a source delivered it. `raw` may be bytes straight off a wire."""

    raw: str | bytes
    source: str  # "camera", "serial", "hid", "stdin", "images", "exit_button", "staff", ...
    received: float = field(default_factory=time.monotonic)
    note: str = ""  # e.g. the reason a staff member gave for a manual admit


Submit = Callable[[Scan], None]


@runtime_checkable
class ScanSource(Protocol):
    """Produces scans on its own thread and hands them to `submit`; never blocks the loop."""

    name: str

    def start(self, submit: Submit) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class Output(Protocol):
    """Carries a decision out: lights, buzzer, relay, screen, event log. Must return fast."""

    def act(self, decision: Decision) -> None: ...

    def close(self) -> None: ...


class Faults:
    """What is wrong right now (camera down, snapshot stale, door held open...).

    Thread-safe; adapters set and clear, the screen, status and heartbeat read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, str] = {}
        self._listeners: list[Callable[[str, str | None], None]] = []

    def set(self, name: str, message: str) -> None:
        with self._lock:
            changed = self._faults.get(name) != message
            self._faults[name] = message
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(name, message)

    def clear(self, name: str) -> None:
        with self._lock:
            changed = self._faults.pop(name, None) is not None
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(name, None)

    def active(self) -> dict[str, str]:
        with self._lock:
            return dict(self._faults)

    def subscribe(self, listener: Callable[[str, str | None], None]) -> None:
        with self._lock:
            self._listeners.append(listener)
