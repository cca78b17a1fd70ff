"""Bounds on one snapshot sync, whatever the upstream sends (docs/protocol.md, "Limits").

- a deadline for the whole sync: a server that drips a byte a second never trips a read
  timeout, so a watchdog shuts the connection's socket when the deadline passes;
- a cap on the decompressed bytes, applied while gzip is inflated in bounded steps (httpx
  inflates a whole network chunk at once: a 300 KB gzip bomb became hundreds of MB);
- a cap on the records, and a limit on the share of customers a sync may drop.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ..errors import SyncError

STEP = 64 * 1024  # bytes inflated at a time: memory stays at one step per chunk, however well it compresses


@dataclass(frozen=True)
class SyncLimits:
    """The [upstream] limits (their defaults live in the config schema, documented in config/kiosk.toml)."""

    deadline_s: float
    max_bytes: int
    max_records: int
    max_shrink: float  # a sync may drop at most this share of the customers held; 1 = no check

    @classmethod
    def from_config(cls, up: Any) -> "SyncLimits":
        return cls(deadline_s=float(up.sync_deadline_s), max_bytes=int(up.max_snapshot_mb * 1024 * 1024),
                   max_records=int(up.max_records), max_shrink=float(up.max_shrink))


class SyncTooLarge(SyncError):
    """The answer is over a cap; nothing of it was applied."""


class SyncDeadline(SyncError):
    """The sync took longer than its deadline; nothing of it was applied."""


class Deadline:
    """The end of one sync. While armed, a watchdog shuts the socket it was given when the time is up.

    Shutting the socket (not closing it) wakes a read blocked in another thread; httpx then
    raises, and `check()` turns that into SyncDeadline.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def error(self) -> SyncDeadline:
        return SyncDeadline(f"the sync took longer than its deadline (upstream.sync_deadline_s = {self.seconds:g} s) "
                            "and was abandoned")

    def check(self) -> None:
        if self.expired.is_set() or time.monotonic() >= self.at:
            self.expired.set()
            raise self.error()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's `trace` extension: note the socket of each new connection (plain, then TLS)."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                with self._lock:
                    self._sockets.append(sock)
                if self.expired.is_set():
                    self._shut()

    @contextlib.contextmanager
    def armed(self) -> Iterator["Deadline"]:
        self._timer = threading.Timer(max(0.0, self.at - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()
        try:
            yield self
        finally:
            self._timer.cancel()

    def _expire(self) -> None:
        self.expired.set()
        self._shut()

    def _shut(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by httpx: nothing to wake
                sock.shutdown(socket.SHUT_RDWR)


def decoded(raw: Iterable[bytes], encoding: str, max_bytes: int) -> Iterator[bytes]:
    """The body's bytes after Content-Encoding, at most `max_bytes` of them (else SyncTooLarge)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        chunks: Iterable[bytes] = raw
    elif encoding in ("gzip", "x-gzip"):
        chunks = _gunzip(raw)
    else:
        raise SyncError(f"the upstream's snapshot is encoded as {encoding!r}; the kiosk reads gzip or no encoding")
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise SyncTooLarge(f"the upstream's answer is too large: over {_size(max_bytes)} decompressed "
                               "(upstream.max_snapshot_mb); nothing of it was applied")
        yield chunk


def _gunzip(raw: Iterable[bytes]) -> Iterator[bytes]:
    """Inflate gzip (one member or several) STEP bytes at a time."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        for data in raw:
            while data:
                if inflater.eof:  # the previous member ended: what follows is the next one
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out = inflater.decompress(data, STEP)
                if out:
                    yield out
                # At a member's end all the input left is in unused_data (unconsumed_tail may repeat part of it).
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        while not inflater.eof and (out := inflater.decompress(b"", STEP)):
            yield out
    except zlib.error as exc:
        raise SyncError(f"the upstream's answer could not be decoded (gzip: {exc})") from None
    if not inflater.eof:
        raise SyncError("the upstream's gzip answer ended early")


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n:,} bytes"
