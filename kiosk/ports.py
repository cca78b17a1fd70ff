"""The small ports between the core and its adapters, named for what they do.

Adapters in `hardware/`, `kiosk/upstream/` and `kiosk/venue/` receive these (and their own typed
settings), never the whole App. The core never imports an adapter; the composition root
(`kiosk.compose`) wires them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from .model import Decision

if TYPE_CHECKING:
    from .status import KioskStatus


@dataclass(frozen=True)
class Scan:
    """One scanned text as a source delivered it. `raw` may be bytes straight off a wire."""

    raw: str | bytes
    source: str  # "camera", "serial", "hid", "stdin", "images", "exit_button", "staff", ...
    received: float = field(default_factory=time.monotonic)
    note: str = ""  # e.g. the reason a staff member gave for a manual admit


Submit = Callable[[Scan], None]  # submit a scan: queued for the gate loop, decided there, one at a time
Clock = Callable[[], datetime]


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


class KeyValues(Protocol):
    """The kiosk's small persistent state (kiosk/state.py): what the upstream and venue links keep there."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...


class AlarmRecorder(Protocol):
    """Records what a door or passage sensor saw (journalled by the gate; nothing is decided)."""

    def record_alarm(self, kind: str, reason: str, source: str = "door") -> str: ...

    def record_passage(self, event_id: str, passed: bool) -> None: ...


class StatusReader(Protocol):
    """Reads the kiosk's typed status (the screen's staff panel, the venue heartbeat)."""

    def live_status(self) -> "KioskStatus": ...


class SyncTrigger(Protocol):
    """Asks for a snapshot sync now, when an upstream is configured; returns at once."""

    @property
    def available(self) -> bool: ...

    def request(self) -> None: ...


class SyncRequests:
    """The SyncTrigger the composition root hands out before it knows whether an upstream will run:
    the upstream connects itself when it starts, so the screen opened earlier can ask it."""

    def __init__(self) -> None:
        self._target: Callable[[], None] | None = None

    def connect(self, target: Callable[[], None] | None) -> None:
        self._target = target

    @property
    def available(self) -> bool:
        return self._target is not None

    def request(self) -> None:
        target = self._target
        if target is not None:
            target()


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
