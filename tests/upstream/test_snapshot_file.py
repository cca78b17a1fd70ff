"""kiosk.snapshot_file on real files: a good file passes; damaged, altered, wrong-schema and hostile ones are refused.

A hostile upstream is modelled by building a file, changing it with SQL, and giving it a manifest that matches
the changed bytes (so only the checks on arrival stand between it and the gate).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from kiosk import compose, demo, snapshot_file
from kiosk.credential import parse
from kiosk.rules import Policy, decide
from kiosk.snapshot import SnapshotStore
from kiosk.snapshot_file import FileRejected, Manifest

NOW = datetime.now(timezone.utc)


def built(tmp_path: Path, records=None) -> tuple[Manifest, Path]:
    """The upstream's file for `records` (the demo's by default), unpacked: (manifest, plain SQLite file)."""
    manifest, packed = snapshot_file.build(records or demo.records(date.today()), "c-42", tmp_path / "upstream")
    plain = tmp_path / "plain.sqlite"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    return manifest, plain


def altered(manifest: Manifest, plain: Path, *sql: str) -> Manifest:
    """`plain` changed by `sql`, with a manifest that matches the changed bytes (a hostile upstream's)."""
    with sqlite3.connect(plain, isolation_level=None) as db:
        for statement in sql:
            db.execute(statement)
    db.close()
    data = plain.read_bytes()
    return Manifest(manifest.cursor, hashlib.sha256(data).hexdigest(), len(data), manifest.path, manifest.records)


def arrive(tmp_path: Path, manifest: Manifest, plain: Path) -> Path:
    """What the gate does with the bytes: receive in chunks, then check and finish. Returns the finished file."""
    target = tmp_path / "received.sqlite"
    data = plain.read_bytes()
    snapshot_file.receive((data[i:i + 65536] for i in range(0, len(data), 65536)), target, manifest)
    snapshot_file.check_and_finish(target, manifest, {"cursor": manifest.cursor, "synced_at": NOW.isoformat(),
                                                      "source": "upstream"}, 5_000_000)
    return target


def test_a_good_file_is_finished_with_the_gates_meta_and_decides(tmp_path):
    manifest, plain = built(tmp_path)
    assert manifest.records == 6 + 4 + 3 + 0 and manifest.size == plain.stat().st_size
    with sqlite3.connect(plain) as db:  # built once by the upstream with the search indexes
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'index'").fetchone() == (5,)
    db.close()
    target = arrive(tmp_path, manifest, plain)
    store = SnapshotStore(target)
    try:
        assert store.meta()["source"] == "upstream" and store.cursor == "c-42"
        assert store.counts() == {"customers": 6, "groups": 3, "cards": 4}
        policy = Policy(tz=timezone.utc)
        assert decide(parse("I-1001"), store, policy, NOW).verdict.value == "admit"
        assert decide(parse(demo.REVOKED_CARD), store, policy, NOW).verdict.value == "card_revoked"
        assert [c.id for c in store.find("Smith")] == ["I-1001"]
    finally:
        store.close()


def test_non_ascii_records_stored_as_the_checks_store_them_pass(tmp_path):
    records = list(demo.records(date.today())) + [
        {"type": "customer", "id": "I-é1", "first_name": "Émile", "last_name": "Straße", "groups": ["members"],
         "postcode": "\u00a01234 ab", "tags": ["ñ"]},
        {"type": "card", "code": "Kärtchen-1", "customer_id": "I-é1", "batch": "Ünïcode"},
        {"type": "customer", "id": "I-tick", "last_name": "O` Neil `"}]  # the text pass's separator in a value
    manifest, plain = built(tmp_path, records)
    store = SnapshotStore(arrive(tmp_path, manifest, plain))
    try:
        assert store.customer("I-É1").first_name == "Émile" and store.card("Kärtchen-1").customer_id == "I-É1"
    finally:
        store.close()


def test_a_byte_changed_on_the_way_is_refused_by_the_sha256(tmp_path):
    manifest, plain = built(tmp_path)
    data = bytearray(plain.read_bytes())
    data[len(data) // 2] ^= 0x01
    plain.write_bytes(bytes(data))
    with pytest.raises(FileRejected, match="sha256 .* is not the manifest's"):
        arrive(tmp_path, manifest, plain)


def test_a_file_longer_or_shorter_than_its_manifest_is_refused(tmp_path):
    manifest, plain = built(tmp_path)
    plain.write_bytes(plain.read_bytes() + b"\0" * 10)
    with pytest.raises(FileRejected, match="longer than"):
        arrive(tmp_path, manifest, plain)
    short = Manifest(manifest.cursor, manifest.sha256, manifest.size + 100, manifest.path)
    plain.write_bytes(plain.read_bytes()[:-10])
    with pytest.raises(FileRejected, match="its manifest names"):
        arrive(tmp_path, short, plain)


def test_a_damaged_page_is_refused_by_quick_check(tmp_path):
    manifest, plain = built(tmp_path, list(demo.records(date.today())) + [
        {"type": "customer", "id": f"I-{i}", "last_name": f"Name{i}" * 5} for i in range(3000)])
    data = bytearray(plain.read_bytes())
    page = 4096
    for at in range(page * 3 + 8, page * 3 + 200):  # the cell pointers and cells of a b-tree page
        data[at] = 0x5A
    plain.write_bytes(bytes(data))
    bad = Manifest(manifest.cursor, hashlib.sha256(data).hexdigest(), len(data), manifest.path)
    with pytest.raises(FileRejected, match="damaged|cannot be read"):
        arrive(tmp_path, bad, plain)


def test_a_file_that_is_no_sqlite_database_is_refused(tmp_path):
    manifest, plain = built(tmp_path)
    plain.write_bytes(b"<html>proxy error</html>" + b" " * 100)
    bad = Manifest(manifest.cursor, hashlib.sha256(plain.read_bytes()).hexdigest(), 124, manifest.path)
    with pytest.raises(FileRejected, match="not an SQLite database"):
        arrive(tmp_path, bad, plain)


@pytest.mark.parametrize("sql", [
    ["CREATE TABLE extra (x TEXT)"],
    ["ALTER TABLE customers ADD COLUMN secret TEXT"],
    ["CREATE TRIGGER t AFTER INSERT ON meta BEGIN DELETE FROM customers; END"],
    ["CREATE VIEW v AS SELECT * FROM customers"],
    ["DROP INDEX customers_by_name", "CREATE INDEX customers_by_name ON customers (last_fold)"],
    ["DROP INDEX punch_cards"],
    ["DROP INDEX punch_cards", "CREATE INDEX punch_cards ON cards (key) WHERE card_type = 'GIFT'"],
    ["CREATE INDEX extra ON cards (batch)"],
    ["DROP TABLE pass_revocations"],
])
def test_a_file_with_another_schema_is_refused(tmp_path, sql):
    manifest, plain = built(tmp_path)
    with pytest.raises(FileRejected, match="schema is not the kiosk's"):
        arrive(tmp_path, altered(manifest, plain, *sql), plain)


def test_a_punch_card_index_that_leaves_out_a_punch_card_is_refused(tmp_path):
    records = list(demo.records(date.today())) + [
        {"type": "card", "code": "PUNCH-1", "customer_id": "I-1001", "card_type": "PUNCH", "entries": 3}]
    manifest, plain = built(tmp_path, records)
    arrive(tmp_path, manifest, plain)  # as built: passes
    manifest, plain = built(tmp_path, records)
    # An index whose entries leave the PUNCH card out under the right definition: quick_check cannot see it.
    bad = altered(manifest, plain, "DROP INDEX punch_cards",
                  "CREATE INDEX punch_cards ON cards (key) WHERE card_type = 'PUNCX'", "PRAGMA writable_schema=ON",
                  "UPDATE sqlite_master SET sql = replace(sql, 'PUNCX', 'PUNCH') WHERE name = 'punch_cards'")
    with pytest.raises(FileRejected, match="punch_cards does not list .*PUNCH-1"):
        arrive(tmp_path, bad, plain)


def test_a_file_of_another_schema_version_or_cursor_is_refused(tmp_path):
    manifest, plain = built(tmp_path)
    with pytest.raises(FileRejected, match="schema '2'"):
        arrive(tmp_path, altered(manifest, plain, "UPDATE meta SET value = '2' WHERE key = 'schema'"), plain)
    manifest, plain = built(tmp_path)
    with pytest.raises(FileRejected, match="cursor is not its manifest's"):
        arrive(tmp_path, altered(manifest, plain, "UPDATE meta SET value = 'other' WHERE key = 'cursor'"), plain)


# (SQL a hostile upstream ran on its file, what the refusal must say): every rule of kiosk/records.py
HOSTILE = [
    ("UPDATE customers SET first_name = 'Jane' || char(8238) WHERE id = 'I-1001'", "I-1001.*U\\+202E"),
    ("UPDATE customers SET last_name = 'Smith' || char(27) || '[2J' WHERE id = 'I-1001'", "I-1001.*U\\+001B"),
    ("UPDATE customers SET email = 'a' || char(0) || 'b@example.org' WHERE id = 'I-1001'", "I-1001.*U\\+0000"),
    ("UPDATE customers SET name = 'x' || char(133) WHERE id = 'O-2001'", "O-2001"),  # NEL: stripped, so not as stored
    ("UPDATE customers SET first_name = printf('%.201c', 'x') WHERE id = 'I-1001'", "I-1001.*201 characters"),
    ("UPDATE customers SET photo = printf('%.2049c', 'x') WHERE id = 'I-1001'", "I-1001.*2,049 characters"),
    ("UPDATE customers SET postcode = '12345678901234567' WHERE id = 'I-1001'", "I-1001.*'postcode'"),
    ("UPDATE customers SET kind = 'robot' WHERE id = 'I-1001'", "I-1001.*'kind'"),
    ("UPDATE customers SET active = 2 WHERE id = 'I-1001'", "I-1001.*'active'"),
    ("UPDATE customers SET valid_until = '2026-02-30' WHERE id = 'I-1001'", "I-1001.*'valid_until'"),
    ("UPDATE customers SET valid_from = '2030-01-01', valid_until = '2029-01-01' WHERE id = 'I-1001'",
     "I-1001.*after"),
    ("UPDATE customers SET key = 'I-9999' WHERE id = 'I-1001'", "customer 'I-1001'"),
    ("UPDATE customers SET last_fold = 'jones' WHERE id = 'I-1001'", "customer 'I-1001'"),
    ("UPDATE customers SET first_name = ' Jane' WHERE id = 'I-1001'", "customer 'I-1001'"),
    ("UPDATE customers SET id = 'X-1001' WHERE id = 'I-1001'", "X-1001.*must start with I"),
    ("UPDATE customers SET groups = '[\"members\"' WHERE id = 'I-1001'", "groups"),
    ("UPDATE customers SET groups = '[\"mem' || char(7) || 'bers\"]' WHERE id = 'I-1001'", "groups"),
    ("UPDATE customers SET tags = '[' || (SELECT group_concat('\"t\"') FROM (SELECT 1 FROM customers, customers, "
     "customers LIMIT 101)) || ']' WHERE id = 'I-1001'", "tags.*101 entries"),
    ("UPDATE customers SET first_name = CAST(x'4a61ff6e65' AS TEXT) WHERE id = 'I-1001'", "cannot be read|UTF-8"),
    ("UPDATE customers SET first_name = CAST(x'eda080' AS TEXT) WHERE id = 'I-1001'", "cannot be read|UTF-8"),
    ("UPDATE customers SET first_name = 'Émile', first_fold = 'Émile' WHERE id = 'I-1001'", "customer 'I-1001'"),
    ("UPDATE customers SET active = 'yes' WHERE id = 'I-1001'", "I-1001.*'active'"),
    ("UPDATE customers SET valid_from = '0000-01-01' WHERE id = 'I-1001'", "I-1001.*'valid_from'"),
    ("UPDATE cards SET batch = 'b' || char(27) WHERE code = '{card}'", "card '{card}'.*U\\+001B"),
    ("UPDATE cards SET batch = 'b ' WHERE code = '{card}'", "card '{card}'"),
    ("UPDATE customers SET photo = 'p ' WHERE id = 'O-2001'", "customer 'O-2001'"),
    ("UPDATE cards SET key = 'other' WHERE code = '{card}'", "card '{card}'"),
    ("UPDATE cards SET card_type = 'FOO' WHERE code = '{card}'", "card '{card}'.*'card_type'"),
    ("UPDATE cards SET entries = -1 WHERE code = '{card}'", "card '{card}'.*'entries'"),
    ("UPDATE cards SET customer_key = 'i-1001' WHERE code = '{card}'", "card '{card}'"),
    ("UPDATE cards SET code = printf('%.257c', 'x'), key = printf('%.257c', 'x') WHERE code = '{card}'",
     "257 characters"),
    ("UPDATE groups SET name = 'Mem' || char(8238) WHERE id = 'members'", "group 'members'.*U\\+202E"),
    ("UPDATE groups SET scannable = 7 WHERE id = 'members'", "group 'members'"),
    ("INSERT INTO pass_keys VALUES (300, zeroblob(32))", "pass_key.*key_id"),
    ("INSERT INTO pass_keys VALUES (1, zeroblob(31))", "pass_key.*31 bytes"),
    ("INSERT INTO pass_revocations VALUES ('i-1001', 1)", "pass_revocation"),
]


@pytest.mark.parametrize("sql,why", HOSTILE)
def test_a_hostile_value_refuses_the_whole_file_naming_the_record(tmp_path, sql, why):
    card = demo.PIET_VIP
    manifest, plain = built(tmp_path)
    bad = altered(manifest, plain, sql.replace("{card}", card))
    with pytest.raises(FileRejected, match=why.replace("{card}", card)) as refused:
        arrive(tmp_path, bad, plain)
    assert all(c.isprintable() for c in str(refused.value))  # the reason itself is safe to log and show


@pytest.mark.parametrize("change,why", [
    ({"path": "https://elsewhere.example/x.sqlite.gz"}, "path must be"),
    ({"path": "snapshot/file/../../admin.sqlite.gz"}, "path must be"),
    ({"schema": 2}, "schema version 2"),
    ({"format": 9}, "format 9"),
    ({"sha256": "00"}, "sha256"),
    ({"size": 10 ** 12}, "too large"),
    ({"cursor": "c\x1b[2J"}, "cursor"),
    ({"records": -1}, "records"),
])
def test_a_manifest_out_of_shape_is_refused(tmp_path, change, why):
    manifest, _plain = built(tmp_path)
    body = {**manifest.as_json(), **change}
    with pytest.raises(FileRejected, match=why):
        snapshot_file.parse_manifest(json.dumps(body).encode(), 1024 * 1024 * 1024)
    assert snapshot_file.parse_manifest(json.dumps(manifest.as_json()).encode(), 1 << 30) == manifest


# -- over HTTP: the reference upstream on 127.0.0.1 serves the file, a kiosk (App) syncs from it ---------------

@pytest.fixture
def filed(tmp_path):
    """A reference upstream that serves full snapshots as files too, its file for the demo data built."""
    from kiosk.upstream.reference import RefStore, RefUpstream

    from .conftest import TOKEN

    store = RefStore(tmp_path / "upstream.sqlite")
    store.replace(demo.records(date.today()))
    server = RefUpstream(store, TOKEN, snapshot_files=tmp_path / "files").start()
    server.snapshot_file()
    yield server
    server.stop()


@pytest.fixture
def kiosk(tmp_path, filed, token_file):
    from kiosk.app import App

    from .conftest import kiosk_config

    app = App(kiosk_config(tmp_path / "kiosk", filed.url, token_file))
    up = compose.upstream(app)
    yield app, up
    up.stop()
    app.close()


def _held(app) -> tuple:
    return app.snapshot.meta()["cursor"], app.snapshot.counts(), app.snapshot.customer("I-1001")


def test_sync_takes_the_file_and_decides_from_it(kiosk, filed):
    from .conftest import verdict

    app, up = kiosk
    result = up.sync_once()
    assert result.kind == "full" and result.changed()["customers"] == 6 and result.changed()["cards"] == 4
    assert filed.requests.get("snapshot_file") == 1  # the file, not NDJSON
    assert filed.last_headers["snapshot"]["Accept"].startswith(snapshot_file.MANIFEST_TYPE)
    meta = app.snapshot.meta()
    assert meta["source"] == "upstream" and meta["cursor"] == filed.store.cursor() and meta["etag"]
    assert verdict(app, "I-1001") == "admit" and verdict(app, demo.REVOKED_CARD) == "card_revoked"
    filed.store.put([{"type": "customer", "id": "I-3001", "first_name": "New", "groups": ["members"]}])
    assert up.sync_once().kind == "delta"  # changes on top of a file come as an NDJSON delta
    assert verdict(app, "I-3001") == "admit" and filed.requests.get("snapshot_file") == 1
    assert up.sync_once().kind == "unchanged"


def test_an_upstream_without_files_still_syncs_through_ndjson(tmp_path, token_file):
    from kiosk.app import App
    from kiosk.upstream.reference import RefStore, RefUpstream

    from .conftest import TOKEN, kiosk_config, verdict

    store = RefStore(tmp_path / "plain.sqlite")
    store.replace(demo.records(date.today()))
    server = RefUpstream(store, TOKEN).start()  # no snapshot_files: it ignores the kiosk's offer
    app = App(kiosk_config(tmp_path / "k", server.url, token_file))
    up = compose.upstream(app)
    try:
        assert up.sync_once().kind == "full" and verdict(app, "I-1001") == "admit"
        assert "snapshot_file" not in server.requests
    finally:
        up.stop()
        app.close()
        server.stop()


def test_while_the_upstream_builds_its_file_the_kiosk_gets_ndjson(tmp_path, kiosk, filed):
    app, up = kiosk
    filed.store.put([{"type": "customer", "id": "I-3002", "first_name": "Newer", "groups": ["members"]}])
    with filed._build_lock:  # the build of the new cursor's file cannot finish yet
        result = up.sync_once()
    assert result.kind == "full" and "snapshot_file" not in filed.requests
    assert app.snapshot.customer("I-3002") is not None


def _refused_keeps_the_last(app, up, filed, match: str) -> None:
    from kiosk.errors import SyncError

    before = _held(app)
    with pytest.raises(SyncError, match=match):
        up.sync_once()
    assert _held(app) == before
    assert not list(app.snapshot_path.parent.glob("*.new-*"))
    assert not app.snapshot_path.with_name("snapshot.pending.sqlite").exists()


def _hostile(tmp_path, filed, *sql: str) -> None:
    """The upstream serves its file changed by `sql`, under a manifest that matches the changed bytes."""
    manifest, plain = built(tmp_path)
    cursor = filed.store.cursor()
    bad = altered(Manifest(cursor, manifest.sha256, manifest.size, manifest.path), plain,
                  f"UPDATE meta SET value = '{cursor}' WHERE key = 'cursor'", *sql)
    packed = tmp_path / "files" / "hostile.sqlite.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    filed.serve_file(Manifest(bad.cursor, bad.sha256, bad.size, "snapshot/file/hostile.sqlite.gz"), packed)


@pytest.mark.parametrize("case", ["corrupt", "close", "sha", "schema", "hostile", "cursor"])
def test_a_bad_file_is_refused_and_the_last_snapshot_kept(tmp_path, kiosk, filed, case):
    app, up = kiosk
    up.sync_once()  # a good snapshot held
    filed.store.put([{"type": "customer", "id": "I-3003", "first_name": "Later", "groups": ["members"]}])
    filed.snapshot_file()
    with sqlite3.connect(app.snapshot_path) as db:  # as if imported: the next sync asks for a full snapshot
        db.execute("UPDATE meta SET value = 'import' WHERE key = 'source'")
    db.close()
    app.snapshot.reload()
    if case in ("corrupt", "close"):
        filed.inject(case, "snapshot_file")
        match = "gzip|closed the connection|ended early|sha256"
    elif case == "sha":
        manifest, packed = filed.snapshot_file()
        filed.serve_file(Manifest(manifest.cursor, "0" * 64, manifest.size, manifest.path), packed)
        match = "sha256"
    elif case == "schema":
        _hostile(tmp_path, filed, "CREATE TABLE extra (x TEXT)")
        match = "schema is not the kiosk's"
    elif case == "hostile":
        _hostile(tmp_path, filed, "UPDATE customers SET first_name = 'Jane' || char(8238) WHERE id = 'I-1001'")
        match = "I-1001.*U\\+202E"
    else:
        _hostile(tmp_path, filed, "UPDATE meta SET value = 'elsewhere' WHERE key = 'cursor'")
        match = "cursor is not its manifest's"
    _refused_keeps_the_last(app, up, filed, match)
