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
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..errors import SyncError
from ..journal import Journal
from .client import UpstreamClient, UpstreamError

log = logging.getLogger(__name__)

BATCH = 500
PAUSE_BETWEEN_BATCHES_S = 0.02  # between two batches of a long backlog: the CPU left to the gate
# 4xx answers about the request or the kiosk rather than one event: retried later, never isolated.
# 401/408/429 come from the protocol; 403/404/405 mean a refused kiosk or a wrong URL, where
# isolating would set the whole queue aside one event at a time.
NOT_EVENT_ERRORS = frozenset({401, 403, 404, 405, 408, 429})


def is_bad_event(exc: SyncError) -> bool:
    return isinstance(exc, UpstreamError) and 400 <= exc.status < 500 and exc.status not in NOT_EVENT_ERRORS


def backoff_delay(failures: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, so kiosks don't retry in step."""
    delay = min(cap_s, base_s * 2 ** max(0, failures - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


class UploadPacer:
    """When the reporter (the thread of `kiosk run` or its reporter process) uploads next.

    A wake for new scans looks only past what was reported (`after`); every `poll_s` a pass from the start
    also catches events made pending again (passage updates): until purge folds them in, asking from the
    start steps over every acknowledged event. After a failure, the next round waits out a backoff."""

    def __init__(self, poll_s: float, retry_base_s: float, retry_cap_s: float, rng: random.Random):
        self.poll_s = poll_s
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.rng = rng
        self.after = 0  # journal position up to which every event was reported
        self.retry_at = 0.0
        self._next_full = 0.0

    def due(self, now: float) -> bool:
        """Whether a round may run now (its start is `after`)."""
        if now >= self._next_full:
            self.after, self._next_full = 0, now + self.poll_s
        return now >= self.retry_at

    def succeeded(self, after: int) -> None:
        self.after, self.retry_at = after, 0.0

    def failed(self, now: float, failures: int) -> None:
        self.retry_at = now + backoff_delay(failures, self.retry_base_s, self.retry_cap_s, self.rng)

    def retry_after(self, now: float, seconds: float) -> None:
        self.retry_at = now + seconds

    def wait_s(self, now: float, until: float = float("inf")) -> float:
        """How long to sleep before the next look (at most until `until`, e.g. the next heartbeat)."""
        return max(0.01, min(until, self.retry_at if self.retry_at > now else now + self.poll_s) - now)


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
