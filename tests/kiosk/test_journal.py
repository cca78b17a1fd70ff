"""The scan journal: append, report, acknowledge, isolate, purge (SQLite, WAL)."""

from __future__ import annotations

import io
import logging
import sqlite3
from datetime import timedelta

import pytest

from kiosk.errors import JournalError
from kiosk.journal import Journal, iso, write_csv


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
    journal.mark_sent([e["id"] for e in in_flight], at)
    again = reader.pending(500)
    assert [(e["id"], e["passed"]) for e in again] == [(event, True)]
    journal.mark_sent([event], at)
    assert reader.pending(500) == [] and journal.counts()["sent"] == 1
