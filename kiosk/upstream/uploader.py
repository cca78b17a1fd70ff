"""Scan reporting: journal events not yet acknowledged go upstream, oldest first, 500 at a time.

Only ids the upstream names in `accepted` are marked sent; everything else stays pending and
is sent again later with the same id (the upstream deduplicates by id, so nothing counts twice).

A bad event (a 4xx other than 401/408/429, see `is_bad_event`) must never block the queue.
The upstream rejects the whole request and does not say which event was bad, so the batch is
bisected: each half is sent on its own, the good half is stored, the bad half split again,
until the one bad event is alone and set aside (`journal.isolate`). One bad event in 500 costs
about 2 x log2(500) = 18 small requests instead of 500 single-event requests, and a batch
with no bad event costs nothing extra.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..errors import SyncError
from ..journal import Journal
from .client import UpstreamClient, UpstreamError

log = logging.getLogger(__name__)

BATCH = 500
# 4xx answers about the request or the kiosk rather than one event: retried later, never isolated.
# 401/408/429 come from the protocol; 403/404/405 mean a refused kiosk or a wrong URL, where
# isolating would set the whole queue aside one event at a time.
NOT_EVENT_ERRORS = frozenset({401, 403, 404, 405, 408, 429})


def is_bad_event(exc: SyncError) -> bool:
    return isinstance(exc, UpstreamError) and 400 <= exc.status < 500 and exc.status not in NOT_EVENT_ERRORS


@dataclass
class UploadResult:
    sent: int = 0  # events posted (a bisected event counts each time it went)
    accepted: int = 0  # events the upstream acknowledged, now marked sent
    isolated: list[str] = field(default_factory=list)
    requests: int = 0
    after: int = 0  # journal position up to which every event was acknowledged or set aside

    def summary(self) -> str:
        return summary(self.accepted, len(self.isolated))


def summary(accepted: int, isolated: int) -> str:
    text = f"reported {accepted} scan{'s' if accepted != 1 else ''}"
    if isolated:
        text += f", set aside {isolated} the upstream rejected"
    return text


def upload_round(client: UpstreamClient, journal: Journal, now: Callable[[], datetime], *, batch: int = BATCH,
                 stop: threading.Event | None = None, pause_s: float = 0.0, after: int = 0) -> UploadResult:
    """Send pending events until none are left, the upstream holds some back, or `stop` is set.

    Raises SyncError when the upstream cannot be reached or refuses (those events stay pending).
    `journal`: the reporter's own connection, not the gate's: its reads never block the gate, and
    its acknowledgements go to the acknowledgements file, never taking the journal's write lock.
    `pause_s` between batches leaves the CPU to the gate while a long backlog drains.
    `after`: start past this journal position (a previous round's `after`); 0 looks at every event,
    including those a passage answer made pending again.
    """
    result = UploadResult(after=after)
    while stop is None or not stop.is_set():
        events, last = journal.pending_after(result.after, batch)
        if not events:
            break
        handled = _send(client, journal, events, now, result)
        if handled < len(events):
            log.info("the upstream held back %d of %d events; they are retried later", len(events) - handled,
                     len(events))
            break
        result.after = last
        if len(events) < batch:
            break
        if pause_s and stop is not None and stop.wait(pause_s):
            break
    return result


def _send(client: UpstreamClient, journal: Journal, events: list[dict], now: Callable[[], datetime],
          result: UploadResult) -> int:
    """Post `events`; returns how many were dealt with (acknowledged or isolated)."""
    result.requests += 1
    result.sent += len(events)
    try:
        accepted = client.post_scans(events)
    except SyncError as exc:
        if not is_bad_event(exc):
            raise
        if len(events) == 1:
            event = events[0]
            log.warning("the upstream rejected event %s (%s at %s): %s; set aside", event["id"], event["verdict"],
                        event["at"], exc)
            journal.isolate(event["id"], str(exc))
            result.isolated.append(event["id"])
            return 1
        middle = len(events) // 2
        return (_send(client, journal, events[:middle], now, result)
                + _send(client, journal, events[middle:], now, result))
    ours = {e["id"] for e in events}
    # Ignore ids we did not send and ids named twice: the answer only acknowledges this batch.
    acknowledged = [i for i in dict.fromkeys(accepted) if i in ours]
    by_id = {e["id"]: e for e in events}
    # The events as sent: one whose passage answer landed meanwhile is not acknowledged by this answer.
    journal.mark_sent([by_id[i] for i in acknowledged], now())
    result.accepted += len(acknowledged)
    return len(acknowledged)
