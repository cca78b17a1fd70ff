"""Bounds on a sync against hostile upstreams on 127.0.0.1: a gzip bomb, a drip, too many records, a shrink."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import threading
import time
import zlib
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kiosk import demo
from kiosk.display import fault_text
from kiosk.errors import SyncError
from kiosk.i18n import Messages
from kiosk import compose
from kiosk.upstream.limits import SyncDeadline, SyncTooLarge, decoded
from kiosk.upstream.sync import SnapshotHeldBack, pending_path

from .conftest import verdict

KIOSK = [sys.executable, "-c", "import sys; from kiosk.cli import main; sys.exit(main())"]
HEADER = json.dumps({"type": "header", "version": 1, "cursor": "hostile-1", "full": True}).encode() + b"\n"
CUSTOMER = json.dumps({"type": "customer", "id": "I-7777", "first_name": "Drip", "last_name": "Slow",
                       "groups": ["members"]}).encode() + b"\n"
END = json.dumps({"type": "end", "records": 1}).encode() + b"\n"


class Hostile:
    """A real HTTP server on 127.0.0.1 that sends one fixed raw answer, from byte `drip_from` on one byte per
    `gap_s`."""

    def __init__(self, raw: bytes, drip_from: int | None = None, gap_s: float = 0.05):
        self.raw, self.drip_from, self.gap_s = raw, drip_from, gap_s
        self.stopping = threading.Event()
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cut = len(hostile.raw) if hostile.drip_from is None else hostile.drip_from
                try:
                    self.wfile.write(hostile.raw[:cut])
                    self.wfile.flush()
                    for i in range(cut, len(hostile.raw)):
                        if hostile.stopping.wait(hostile.gap_s):
                            return
                        self.wfile.write(hostile.raw[i:i + 1])
                        self.wfile.flush()
                except OSError:
                    pass  # the kiosk hung up, as it should

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/kiosk/v1"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(body: bytes, gzipped: bool = False) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/x-ndjson", f"Content-Length: {len(body)}",
            "Connection: close"] + (["Content-Encoding: gzip"] if gzipped else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
def hostile():
    servers: list[Hostile] = []

    def make(raw: bytes, **kw) -> Hostile:
        servers.append(Hostile(raw, **kw))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def seeded(make_app, url: str, **upstream):
    app = make_app(url=url, **upstream)
    demo.seed(app.snapshot_path, app.clock())
    app.snapshot.reload()
    return app, compose.upstream(app)


def assert_kept(app, cursor: str = "demo-1") -> None:
    assert app.snapshot.cursor == cursor
    assert app.snapshot.counts()["customers"] == 6
    assert verdict(app, "I-1001") == "admit"  # still decided from the last good snapshot
    assert app.state["last_sync"]["ok"] is False
    assert not [p.name for p in app.snapshot_path.parent.iterdir() if ".new-" in p.name]
    assert not pending_path(app.snapshot_path).exists()


# -- size -----------------------------------------------------------------------------------

def gzip_bomb(decompressed_mb: int) -> bytes:
    """Valid NDJSON lines (so only the size cap can stop it), ~1000:1 compressed, no end marker."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = CUSTOMER * (1024 * 1024 // len(CUSTOMER))
    parts = [packer.compress(HEADER)] + [packer.compress(block) for _ in range(decompressed_mb)]
    return b"".join(parts) + packer.flush()


def test_a_gzip_bomb_fails_as_too_large_and_the_last_good_snapshot_stays(make_app, hostile):
    bomb = gzip_bomb(200)
    assert len(bomb) < 1024 * 1024  # under 1 MB on the wire, 200 MB inflated
    server = hostile(answer(bomb, gzipped=True))
    app, up = seeded(make_app, server.url, max_snapshot_mb=2)
    try:
        with pytest.raises(SyncTooLarge, match="too large: over 2 MB decompressed"):
            up.sync_once()
        assert "too large" in app.state["last_sync"]["error"]
        assert "too large" in app.faults.active()["upstream"]
        assert_kept(app)
    finally:
        up.stop()


def test_too_many_records_fail_as_too_large(make_app, ref):
    app, up = seeded(make_app, ref.url, max_records=5)  # the reference upstream holds 13 records
    try:
        with pytest.raises(SyncTooLarge, match="too large: over 5 records"):
            up.sync_once()
        assert_kept(app)
    finally:
        up.stop()


def test_streamed_gunzip_reads_several_members_and_refuses_a_cut_one():
    data = b"".join(CUSTOMER for _ in range(5000))
    two = gzip.compress(data[:1000]) + gzip.compress(data[1000:])
    chunks = [two[i:i + 777] for i in range(0, len(two), 777)]
    assert b"".join(decoded(chunks, "gzip", len(data))) == data
    with pytest.raises(SyncTooLarge):
        b"".join(decoded(chunks, "gzip", len(data) - 1))
    with pytest.raises(SyncError, match="ended early"):
        b"".join(decoded([two[:-20]], "gzip", len(data)))
    with pytest.raises(SyncError, match="encoded as 'br'"):
        b"".join(decoded([data], "br", len(data)))


# random bytes (gzip cannot shrink them) and runs that inflate far past the 64 KiB step from one chunk
MEMBER = st.one_of(st.binary(max_size=100_000),
                   st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=40), st.integers(1, 30_000)))


@given(members=st.lists(MEMBER, min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=1, max_value=70_000), max_size=20), level=st.integers(0, 9))
@example(members=[b"\0" * 65541, b"\0"], cuts=[], level=0)  # a member ending past one 64 KiB step: found by Hypothesis
@settings(max_examples=60, deadline=None)
def test_streamed_gunzip_equals_gzip_whatever_the_chunking(members, cuts, level):
    wire = b"".join(gzip.compress(m, compresslevel=level) for m in members)
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(wire[at:at + cut])
        at += cut
    chunks.append(wire[at:])
    data = b"".join(members)
    assert b"".join(decoded(chunks, "gzip", len(data))) == data
    if data:
        with pytest.raises(SyncTooLarge):
            b"".join(decoded(chunks, "gzip", len(data) - 1))


# -- time -----------------------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_dripping_upstream_is_cut_off_at_the_sync_deadline(make_app, hostile, phase):
    # One byte every 50 ms never trips a read timeout; sent whole, this answer would be applied.
    raw = answer(HEADER + CUSTOMER + END)
    drip_from = 0 if phase == "headers" else raw.index(CUSTOMER)
    server = hostile(raw, drip_from=drip_from)
    app, up = seeded(make_app, server.url, sync_deadline_s=1, timeout_s=10)  # only the deadline can end it
    try:
        with pytest.raises(SyncDeadline, match=r"deadline \(upstream.sync_deadline_s = 1 s\)"):
            up.sync_once()
        assert "deadline" in app.faults.active()["upstream"]
        assert_kept(app)
        assert verdict(app, "I-7777") == "not_recognised"
    finally:
        up.stop()


# -- shrink ---------------------------------------------------------------------------------

def config_file(tmp_path: Path, state: Path, url: str, token_file: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'state_dir = "{state}"\ndevice_id = "shrink"\n[upstream]\nurl = "{url}"\n'
                    f'token_file = "{token_file}"\ntimeout_s = 20\n')
    return path


def test_an_empty_full_snapshot_is_held_back_until_accepted(tmp_path, make_app, ref, token_file):
    app, up = seeded(make_app, ref.url)  # 6 customers held, from the demo: the upstream sends a full snapshot
    groups_only = [r for r in demo.records(date.today()) if r["type"] == "group"]
    cursor = ref.store.replace(groups_only)
    try:
        with pytest.raises(SnapshotHeldBack, match=r"leave 0 of the 6 customers.*max_shrink = 0.5.*--accept-shrink"):
            up.sync_once()
        assert pending_path(app.snapshot_path).exists()
        assert "held back" in app.faults.active()["snapshot_pending"]
        assert fault_text("snapshot_pending", "", Messages("nl")).startswith("Nieuwe ledenlijst tegengehouden")
        assert app.snapshot.cursor == "demo-1" and verdict(app, "I-1001") == "admit"
    finally:
        up.stop()
    done = subprocess.run([*KIOSK, "sync", "--accept-shrink", "--config",
                           str(config_file(tmp_path, app.state_dir, ref.url, token_file))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied the held-back snapshot" in done.stdout
    wait_for_cursor(app, cursor)
    assert app.snapshot.counts()["customers"] == 0
    assert not pending_path(app.snapshot_path).exists()


def wait_for_cursor(app, cursor: str) -> None:
    deadline = time.monotonic() + 10
    while app.snapshot.cursor != cursor:
        assert time.monotonic() < deadline, "the reader never saw the new snapshot"
        time.sleep(0.05)


def test_a_later_full_snapshot_that_keeps_the_customers_replaces_the_held_back_one(make_app, ref):
    app, up = seeded(make_app, ref.url)
    ref.store.replace([r for r in demo.records(date.today()) if r.get("id") in ("members", "I-1001")])
    try:
        with pytest.raises(SnapshotHeldBack, match="leave 1 of the 6 customers"):
            up.sync_once()
        cursor = ref.store.replace(demo.records(date.today()))  # the upstream's data is whole again
        assert up.sync_once().kind == "full"
    finally:
        up.stop()
    assert app.snapshot.cursor == cursor and app.snapshot.counts()["customers"] == 6
    assert "snapshot_pending" not in app.faults.active()
    assert not pending_path(app.snapshot_path).exists()


def test_a_held_back_snapshot_left_over_is_discarded_when_a_sync_succeeds_without_it(make_app, ref):
    app = make_app()
    up = compose.upstream(app)
    try:
        up.sync_once()
        shutil.copy(app.snapshot_path, pending_path(app.snapshot_path))  # held back by an earlier sync
        assert up.sync_once().kind == "unchanged"
    finally:
        up.stop()
    assert not pending_path(app.snapshot_path).exists()


def test_a_delta_that_drops_most_customers_is_not_applied_unless_accepted(make_app, ref):
    app = make_app()
    up = compose.upstream(app)
    try:
        up.sync_once()
        held = app.snapshot.cursor
        ref.store.put([{"type": "delete", "entity": "customer", "id": i}
                       for i in ("I-1001", "I-1002", "I-1003", "I-1004")])
        with pytest.raises(SnapshotHeldBack, match="a delta .* leave 2 of the 6 customers.*not applied"):
            up.sync_once()
        assert app.snapshot.cursor == held and verdict(app, "I-1001") == "admit"
        assert "snapshot_pending" in app.faults.active()
        assert up.sync_once(accept_shrink=True).kind == "delta"
        assert verdict(app, "I-1001") == "not_recognised"
        assert "snapshot_pending" not in app.faults.active()
    finally:
        up.stop()


def test_max_shrink_one_never_holds_back(make_app, ref):
    app, up = seeded(make_app, ref.url, max_shrink=1)
    ref.store.replace([])
    try:
        assert up.sync_once().kind == "full"
        assert app.snapshot.counts()["customers"] == 0
    finally:
        up.stop()
