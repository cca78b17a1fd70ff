"""Outputs that need no hardware: the `--events` JSON stream and the headless decision log."""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any, TextIO

from .model import Decision

log = logging.getLogger(__name__)


def event_of(decision: Decision, gate: str) -> dict[str, Any]:
    """One decision as the `--events` JSON object."""
    latency = decision.timings.get("latency_ms")
    return {
        "at": decision.at.isoformat(timespec="milliseconds"), "gate": gate, "source": decision.source,
        "raw": decision.raw, "credential": decision.credential, "verdict": decision.verdict.value,
        "customer_id": decision.customer_id, "name": decision.name, "groups": list(decision.groups),
        "matched_groups": list(decision.matched_groups), "reason": decision.reason,
        "latency_ms": None if latency is None else round(latency, 3), "id": decision.event_id,
    }


class EventPrinter:
    """`kiosk run --events`: one JSON object per decision on stdout, flushed at once."""

    def __init__(self, gate: str, stream: TextIO | None = None):
        self.gate = gate
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def act(self, decision: Decision) -> None:
        line = json.dumps(event_of(decision, self.gate), ensure_ascii=False)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self.stream.flush()


class DecisionLog:
    """Without a screen, staff read decisions in the log (journald)."""

    def act(self, decision: Decision) -> None:
        who = f" {decision.name} ({decision.customer_id})" if decision.customer_id else ""
        log.info("%s%s: %s [%s]", decision.verdict.value.upper(), who, decision.reason, decision.source)

    def close(self) -> None:
        pass
