"""Snapshot sync over real HTTP against the reference upstream, including every fault it can provoke."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from kiosk import compose, demo
from kiosk.errors import ConfigError, SyncError
from kiosk.upstream.reference import RefStore, RefUpstream
from kiosk.upstream.sync import MAX_LINE, SnapshotRejected, _LineTooLong, iter_lines

from .conftest import TOKEN, verdict, write_token


@pytest.fixture
def upstream(app):
    up = compose.upstream(app)
    yield up
    up.stop()


def test_full_sync_then_scans_are_decided_from_it(app, upstream, ref):
    result = upstream.sync_once()
    assert result.kind == "full"
    assert result.changed() == {"groups": 3, "customers": 6, "cards": 4, "deleted": 0, "skipped": 0}
    assert app.snapshot.meta()["source"] == "upstream"
    assert app.snapshot.cursor == ref.store.cursor()
    assert verdict(app, "I-1001") == "admit"
    assert verdict(app, demo.REVOKED_CARD) == "card_revoked"
    last = app.state["last_sync"]
    assert last["ok"] and last["kind"] == "full" and last["cursor"] == ref.store.cursor()
    assert "upstream" not in app.faults.active() and "snapshot_stale" not in app.faults.active()


def test_request_headers_follow_the_protocol(upstream, ref):
    upstream.sync_once()
    headers = {k.lower(): v for k, v in ref.last_headers["snapshot"].items()}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["kiosk-device"] == "test-kiosk"
    assert headers["user-agent"].startswith("kiosk/")
    assert "gzip" in headers["accept-encoding"]


def test_delta_applies_changes_and_deletes_on_top_of_the_held_cursor(app, upstream, ref):
    upstream.sync_once()
    held = app.snapshot.cursor
    ref.store.put([
        {"type": "customer", "id": "I-1001", "first_name": "Jane", "last_name": "Smith", "active": False,
         "groups": ["members"]},
        {"type": "customer", "id": "I-3001", "first_name": "New", "last_name": "Member", "groups": ["members"]},
        {"type": "delete", "entity": "card", "id": demo.PIET_VIP},
    ])
    result = upstream.sync_once()
    assert result.kind == "delta"
    assert result.changed()["customers"] == 2 and result.changed()["deleted"] == 1
    assert f"since={held}" in ref.last_paths["snapshot"] and app.snapshot.cursor != held
    assert verdict(app, "I-1001") == "inactive"
    assert verdict(app, "I-3001") == "admit"
    assert verdict(app, demo.PIET_VIP) == "not_recognised"
    assert app.snapshot.counts()["customers"] == 7


def test_unchanged_upstream_answers_304_and_the_snapshot_counts_as_fresh(app, upstream, ref):
    upstream.sync_once()
    first = app.snapshot.meta()
    requests = ref.requests["snapshot"]
    result = upstream.sync_once()
    assert result.kind == "unchanged"
    assert ref.requests["snapshot"] == requests + 1
    assert app.snapshot.meta()["cursor"] == first["cursor"]
    assert app.snapshot.meta()["synced_at"] >= first["synced_at"]
    assert app.state["last_sync"]["kind"] == "unchanged"


def test_a_snapshot_from_elsewhere_is_replaced_by_a_full_one(make_app, ref):
    app = make_app()
    demo.seed(app.snapshot_path, app.clock())  # held snapshot came from the demo, not this upstream
    up = compose.upstream(app)
    try:
        assert up.sync_once().kind == "full"
        assert "since=" not in ref.last_paths["snapshot"]
        assert app.snapshot.meta()["source"] == "upstream"
    finally:
        up.stop()


@pytest.mark.parametrize("gzip_level", [0, 6])
def test_plain_and_gzip_answers_give_the_same_snapshot(tmp_path, make_app, token_file, gzip_level):
    store = RefStore(tmp_path / f"up{gzip_level}.sqlite")
    store.replace(demo.records(date.today()))
    server = RefUpstream(store, TOKEN, gzip_level=gzip_level).start()
    app = make_app(f"k{gzip_level}", url=server.url)
    up = compose.upstream(app)
    try:
        assert up.sync_once().changed()["customers"] == 6
        assert verdict(app, "O-2001") == "admit"
    finally:
        up.stop()
        server.stop()


# -- faults -------------------------------------------------------------------------------

# fault -> the words status and the log give for it
CONTENT_FAULTS = {"no_end": "without its end marker", "wrong_count": "the end marker counts",
                  "bad_json": "is not valid JSON", "long_line": "longer than 64 KiB", "bad_record": "missing 'id'"}
SERVER_FAULTS = {"close": "closed the connection", "500": "failed (500)", "503": "failed (503)",
                 "403": "refused this kiosk (403)", "slow": "timed out", "stall": "timed out"}


def _change_upstream(ref):
    """A change that would turn Jane away if it were (even partly) applied."""
    ref.store.put([{"type": "customer", "id": "I-1001", "first_name": "Jane", "last_name": "Smith", "active": False,
                    "groups": ["members"]},
                   {"type": "customer", "id": "I-1003", "first_name": "Bob", "last_name": "Jones",
                    "groups": ["members"]}])


def _assert_kept(app, cursor, fault_name="upstream"):
    assert app.snapshot.cursor == cursor
    assert verdict(app, "I-1001") == "admit"  # decided from the last good snapshot
    assert verdict(app, "I-1003") == "not_in_group"
    assert fault_name in app.faults.active()
    last = app.state["last_sync"]
    assert last["ok"] is False and last["error"] and last["cursor"] == cursor
    leftovers = [p.name for p in app.snapshot_path.parent.iterdir() if ".new-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("fault,mode", [(f, "full") for f in [*CONTENT_FAULTS, *SERVER_FAULTS]]
                         + [(f, "delta") for f in ("no_end", "wrong_count", "bad_record", "close", "stall")])
def test_a_bad_answer_is_rejected_whole_and_the_old_snapshot_stays(app, upstream, ref, fault, mode):
    if mode == "full":
        demo.seed(app.snapshot_path, app.clock())  # a snapshot not from this upstream: it asks for a full one
    else:
        upstream.sync_once()
    app.snapshot.reload()
    cursor = app.snapshot.cursor
    _change_upstream(ref)
    ref.inject(fault, "snapshot")
    words = {**CONTENT_FAULTS, **SERVER_FAULTS}[fault]
    with pytest.raises(SyncError, match=re.escape(words)) as failure:
        upstream.sync_once()
    assert isinstance(failure.value, SnapshotRejected) == (fault in CONTENT_FAULTS)
    _assert_kept(app, cursor)
    assert str(failure.value) in app.faults.active()["upstream"]
    assert words in app.status()["last_sync"]["error"]
    # and once the upstream behaves, the change arrives and the fault clears
    upstream.sync_once()
    assert verdict(app, "I-1003") == "admit"
    assert "upstream" not in app.faults.active()


def test_an_expired_token_raises_the_token_fault_until_a_request_succeeds(app, upstream, ref):
    upstream.sync_once()
    cursor = app.snapshot.cursor
    _change_upstream(ref)
    ref.inject("401", "snapshot")
    with pytest.raises(SyncError, match="401"):
        upstream.sync_once()
    _assert_kept(app, cursor, "token")
    assert "upstream" not in app.faults.active()
    upstream.sync_once()
    assert "token" not in app.faults.active()


def test_a_wrong_token_is_refused(make_app, ref, tmp_path):
    app = make_app()
    write_token(Path(app.config.upstream.token_file), "not-the-token")
    up = compose.upstream(app)
    try:
        with pytest.raises(SyncError, match="refused the token"):
            up.sync_once()
        assert "token" in app.faults.active()
        write_token(Path(app.config.upstream.token_file), TOKEN)  # renewed: read again without a restart
        up.sync_once()
        assert "token" not in app.faults.active()
    finally:
        up.stop()


def test_upstream_down(make_app, ref):
    ref.stop()
    app = make_app(url=ref.url)  # nothing listens there any more
    up = compose.upstream(app)
    try:
        with pytest.raises(SyncError, match="cannot reach the upstream"):
            up.sync_once()
        assert "cannot reach" in app.faults.active()["upstream"]
        assert verdict(app, "I-1001") == "not_recognised"  # no snapshot yet: nothing to admit from
    finally:
        up.stop()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_token_file_others_can_read_is_refused(make_app, token_file, mode):
    app = make_app()
    os.chmod(token_file, mode)
    with pytest.raises(ConfigError) as refused:
        compose.upstream(app)
    assert refused.value.key == "upstream.token_file" and "chmod 600" in str(refused.value)


def test_a_missing_token_file_is_refused(make_app, token_file):
    app = make_app()
    token_file.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        compose.upstream(app)


def test_iter_lines_splits_across_chunks_and_refuses_long_lines():
    chunks = [b'{"a":1}\n{"b"', b':2}\n', b'{"c":3}']
    assert list(iter_lines(chunks)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert list(iter_lines([b"x" * MAX_LINE + b"\n"])) == [b"x" * MAX_LINE]
    with pytest.raises(_LineTooLong):
        list(iter_lines([b"x" * 1000] * 70))  # one line growing past 64 KiB over many chunks, no newline


# -- TLS ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test CA")
    d = tmp_path_factory.mktemp("tls")
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=kiosk test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext")
    return d


def test_tls_with_a_private_ca(tmp_path, make_app, certs):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    store = RefStore(tmp_path / "tls.sqlite")
    store.replace(demo.records(date.today()))
    server = RefUpstream(store, TOKEN, ssl_context=context).start()
    try:
        assert server.url.startswith("https://")
        untrusting = compose.upstream(make_app("plain", url=server.url))
        with pytest.raises(SyncError, match="certificate"):
            untrusting.sync_once()
        untrusting.stop()
        app = make_app("ca", url=server.url, ca_file=str(certs / "ca.pem"))
        trusting = compose.upstream(app)
        assert trusting.sync_once().kind == "full"
        trusting.stop()
        assert verdict(app, "I-1001") == "admit"
    finally:
        server.stop()
