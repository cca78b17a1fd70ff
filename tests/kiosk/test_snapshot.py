"""The snapshot store: full loads swapped in atomically, merges, deltas, readers, and a kill -9 mid-load."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiosk import demo
from kiosk.errors import SnapshotError
from kiosk.records import RecordError
from kiosk.snapshot import SnapshotBuilder, SnapshotStore, load_records

GROUP = {"type": "group", "id": "members", "name": "Members", "scannable": True}


def customer(ident: str, **fields) -> dict:
    return {"type": "customer", "id": ident, "first_name": "F", "last_name": ident, "groups": ["members"], **fields}


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if ".new-" in p.name)


def test_full_load_replaces_everything_and_swaps_the_file(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    load_records(path, [GROUP, customer("I-1"), customer("I-2"), {"type": "card", "code": "C-1", "customer_id": "I-1"}],
                 {"cursor": "c-1", "synced_at": "2026-11-22T10:00:00+00:00"})
    store = SnapshotStore(path, recheck_s=0)
    try:
        assert store.customer("i-1").last_name == "I-1"
        assert store.card("C-1").customer_id == "I-1"
        inode = path.stat().st_ino
        result = load_records(path, [GROUP, customer("I-3")],
                              {"cursor": "c-2", "synced_at": "2026-11-23T10:00:00+00:00"})
        assert (result.groups, result.customers, result.cards) == (1, 1, 0)
        assert path.stat().st_ino != inode  # a new file, swapped in
        assert store.customer("I-1") is None
        assert store.card("C-1") is None
        assert store.customer("I-3") is not None
        assert store.cursor == "c-2"
        assert store.counts() == {"customers": 1, "groups": 1, "cards": 0}
        assert leftovers(path) == []
    finally:
        store.close()


def test_failed_full_load_leaves_the_old_snapshot_and_no_temp_file(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    load_records(path, [GROUP, customer("I-1")], {"cursor": "c-1"})
    with pytest.raises(RecordError):
        load_records(path, [GROUP, customer("I-2"), {"type": "customer", "id": "X-not-an-id"}], {"cursor": "c-2"})
    store = SnapshotStore(path)
    try:
        assert store.cursor == "c-1"
        assert store.customer("I-1") is not None
        assert store.customer("I-2") is None
    finally:
        store.close()
    assert leftovers(path) == []


def test_aborted_builder_changes_nothing(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    load_records(path, [GROUP, customer("I-1")], {"cursor": "c-1"})
    for mode in ("full", "merge", "delta"):
        builder = SnapshotBuilder(path, mode)
        builder.apply({"type": "delete", "entity": "customer", "id": "I-1"})
        builder.apply(customer("I-9"))
        builder.abort()
    store = SnapshotStore(path)
    try:
        assert store.customer("I-1") is not None
        assert store.customer("I-9") is None
        assert store.cursor == "c-1"
    finally:
        store.close()
    assert leftovers(path) == []


def test_merge_upserts_into_a_copy_and_keeps_the_rest(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    load_records(path, [GROUP, customer("I-1"), customer("I-2", first_name="Old")], {"cursor": "c-1"})
    load_records(path, [customer("I-2", first_name="New"), customer("I-3")], {"cursor": "c-2"}, mode="merge")
    store = SnapshotStore(path)
    try:
        assert store.counts()["customers"] == 3
        assert store.customer("I-1") is not None
        assert store.customer("I-2").first_name == "New"
        assert store.groups()["members"].name == "Members"
        assert store.cursor == "c-2"
    finally:
        store.close()


def test_merge_without_a_snapshot_starts_one(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    load_records(path, [GROUP, customer("I-1")], {"cursor": "m-1"}, mode="merge")
    store = SnapshotStore(path)
    try:
        assert store.customer("I-1") is not None
    finally:
        store.close()


def test_delta_with_deletes(tmp_path, clock):
    path = tmp_path / "snapshot.sqlite"
    demo.seed(path, clock())
    store = SnapshotStore(path, recheck_s=0)
    try:
        assert store.customer("I-1003") is not None
        result = load_records(path, [
            {"type": "delete", "entity": "customer", "id": "i-1003"},
            {"type": "delete", "entity": "card", "id": demo.REVOKED_CARD.upper()},
            {"type": "delete", "entity": "group", "id": "patrons"},
            customer("I-1006"),
            {"type": "card", "code": demo.UNASSIGNED_CARD, "customer_id": "I-1006", "card_type": "GIFT"},
            {"type": "future-thing", "id": 1},
        ], {"cursor": "demo-2"}, mode="delta")
        assert result.deleted == 3
        assert result.skipped == 1
        assert store.customer("I-1003") is None
        assert store.card(demo.REVOKED_CARD) is None
        assert "patrons" not in store.groups()
        assert store.card(demo.UNASSIGNED_CARD).customer_id == "I-1006"
        assert store.customer("I-1001").first_name == "Jane"  # untouched
        assert store.cursor == "demo-2"
        assert store.meta()["source"] == "demo"  # meta keys not in the delta stay
    finally:
        store.close()


def test_delta_needs_a_snapshot(tmp_path):
    with pytest.raises(SnapshotError):
        load_records(tmp_path / "none.sqlite", [customer("I-1")], {"cursor": "d"}, mode="delta")


def test_failed_delta_rolls_back(tmp_path, clock):
    path = tmp_path / "snapshot.sqlite"
    demo.seed(path, clock())
    with pytest.raises(RecordError):
        load_records(path, [{"type": "delete", "entity": "customer", "id": "I-1001"},
                            {"type": "card", "code": "X", "card_type": "BOGUS"}], {"cursor": "bad"}, mode="delta")
    store = SnapshotStore(path)
    try:
        assert store.customer("I-1001") is not None
        assert store.cursor == "demo-1"
    finally:
        store.close()


def test_reader_notices_a_swapped_file_by_itself(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    load_records(path, [GROUP, customer("I-1")], {"cursor": "c-1"})
    store = SnapshotStore(path, recheck_s=0)
    try:
        assert store.cursor == "c-1"
        # a writer in another process, as `kiosk import` or the sync would be
        code = ("import sys; from kiosk.snapshot import load_records; "
                "load_records(sys.argv[1], [{'type':'customer','id':'I-2','groups':[]}], {'cursor':'c-2'})")
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
        assert store.customer("I-2") is not None
        assert store.customer("I-1") is None
        assert store.cursor == "c-2"
        # and a delta committed on the live file by another connection
        load_records(path, [customer("I-3")], {"cursor": "c-3"}, mode="delta")
        assert store.cursor == "c-3"
        assert store.customer("I-3") is not None
    finally:
        store.close()


def test_reader_without_a_snapshot_reads_nothing_then_finds_one(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    store = SnapshotStore(path, recheck_s=0)
    try:
        assert not store.exists()
        assert store.customer("I-1") is None
        assert store.card("x") is None
        assert store.groups() == {}
        assert store.counts()["customers"] == 0
        load_records(path, [GROUP, customer("I-1")], {"cursor": "c-1"})
        assert store.exists()
        assert store.customer("I-1") is not None
    finally:
        store.close()


def test_reader_connection_is_read_only(snapshot):
    snapshot.customer("I-1001")
    with pytest.raises(sqlite3.OperationalError):
        snapshot._db.execute("DELETE FROM customers")


def test_corrupt_snapshot_is_a_snapshot_error(tmp_path):
    path = tmp_path / "snapshot.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = SnapshotStore(path)
    with pytest.raises(SnapshotError):
        store.customer("I-1")


# A child that writes a large full load and says "loading" part-way through; the parent kills it.
_KILLED_WRITER = textwrap.dedent("""
    import sys
    from kiosk.snapshot import SnapshotBuilder
    path, total = sys.argv[1], int(sys.argv[2])
    builder = SnapshotBuilder(path, "full")
    builder.apply({"type": "group", "id": "members", "name": "Members"})
    for i in range(total):
        builder.apply({"type": "customer", "id": f"I-{i}", "first_name": "New", "last_name": f"N{i}",
                       "groups": ["members"]})
        if i == 30000:
            print("loading", flush=True)
    print("committing", flush=True)
    builder.commit({"cursor": "new"})
    print("done", flush=True)
""")


def test_kill_9_during_a_large_full_load_leaves_the_old_snapshot_intact(tmp_path, clock):
    path = tmp_path / "snapshot.sqlite"
    demo.seed(path, clock())
    before = path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), "5000000"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "loading"
        assert leftovers(path), "the child should be writing its new file"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert path.read_bytes() == before
    store = SnapshotStore(path)
    try:
        assert store.cursor == "demo-1"
        assert store.counts() == {"customers": 6, "groups": 3, "cards": 4}
        assert store.customer("I-1001").first_name == "Jane"
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()
    # the dead writer's lock went with it: the next load goes through and is seen
    load_records(path, [GROUP, customer("I-7")], {"cursor": "after"})
    assert leftovers(path) == []  # and the dead writer's half-written file is cleared away
    store = SnapshotStore(path)
    try:
        assert store.cursor == "after"
    finally:
        store.close()
