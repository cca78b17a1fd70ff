"""Outputs that need no hardware: the `--events` JSON stream and the decision log.

Both may carry a hostile name or scanned text: the log line is made printable and bounded
(`safe_text`); an event line stays lossless JSON but is escaped to ASCII whenever it holds a
control, bidi-override or surrogate character, so no terminal or pipe reading it sees one raw.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any, TextIO

from .model import Decision
from .text import has_unsafe, safe_text

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
        event = event_of(decision, self.gate)
        line = json.dumps(event, ensure_ascii=False)
        if has_unsafe(line):
            line = json.dumps(event)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self.stream.flush()


class DecisionLog:
    """Every decision as one INFO line, screen or not: journald is where a technician looks."""

    def act(self, decision: Decision) -> None:
        who = f" {safe_text(decision.name)} ({safe_text(decision.customer_id, 128)})" if decision.customer_id else ""
        log.info("%s%s: %s [%s]", decision.verdict.value.upper(), who, safe_text(decision.reason, 300),
                 safe_text(decision.source, 32))

    def close(self) -> None:
        pass
