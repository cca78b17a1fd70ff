"""`kiosk find` / SnapshotStore.find: names in either order, organisations, surname prefixes, all on indexes."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone

import pytest

from kiosk.snapshot import SnapshotStore, find_queries, load_records

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
PEOPLE = [("I-1", "Jane", "Smith"), ("I-2", "John", "Smith"), ("I-3", "Ann", "Smithson"), ("I-4", "Pieter", "de Vries"),
          ("I-5", "Wei", "Li"), ("I-6", "Zoë", "Ångström"), ("I-7", "Anna Maria", "Jansen")]
ORGS = [("O-1", "Acme Ltd"), ("O-2", "Acme Holdings"), ("O-3", "Stichting De Kade")]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("find") / "snapshot.sqlite"
    records = [{"type": "customer", "id": cid, "first_name": f, "last_name": last, "email": f"{cid}@example.org",
                "postcode": "1012 AB" if cid == "I-1" else ""} for cid, f, last in PEOPLE]
    records += [{"type": "customer", "id": cid, "name": name} for cid, name in ORGS]
    # filler, so that the planner has a table worth avoiding
    records += [{"type": "customer", "id": f"I-9{i:05}", "first_name": f"F{i}", "last_name": f"L{i % 997}"}
                for i in range(3000)]
    records.append({"type": "card", "code": "CARD-7", "customer_id": "I-7"})
    load_records(path, records, {"cursor": "c"})
    s = SnapshotStore(path)
    yield s
    s.close()


@pytest.mark.parametrize("query, ids", [
    ("Jane Smith", ["I-1"]), ("Smith, Jane", ["I-1"]), ("Smith Jane", ["I-1"]), ("  jane   SMITH ", ["I-1"]),
    ("Smith, J", ["I-1", "I-2"]), ("Smith", ["I-1", "I-2", "I-3"]), ("smi", ["I-1", "I-2", "I-3"]),
    ("Smiths", ["I-3"]), ("Pieter de Vries", ["I-4"]), ("de vries", ["I-4"]), ("Anna Maria Jansen", ["I-7"]),
    ("Anna Jansen", ["I-7"]), ("Li", ["I-5"]), ("Zoë Ångström", ["I-6"]), ("ÅNGSTRÖM", ["I-6"]),
    ("Acme Ltd", ["O-1"]), ("acme", ["O-2", "O-1"]), ("Stichting de kade", ["O-3"]), ("sti", ["O-3"]),
    ("i-4", ["I-4"]), ("I-1@example.org", ["I-1"]), ("1012ab", ["I-1"]), ("CARD-7", ["I-7"]),
])
def test_find(store, query, ids):
    assert [c.id for c in store.find(query)] == ids


@pytest.mark.parametrize("query", ["Sm", "Jane Smithers", "Nobody, N", "", "   ", "zz"])
def test_no_match(store, query):
    assert store.find(query) == []


def test_limit_holds_across_the_kinds_of_match(store):
    assert len(store.find("l12", limit=5)) == 5


@pytest.mark.parametrize("query", ["Jane Smith", "Smith, Jane", "smi", "Li", "Acme Ltd", "I-1@example.org", "1012 AB",
                                   "I-1", "CARD-7", "a b c d e f", "Pieter de Vries"])
def test_every_query_reads_an_index_never_the_whole_customers_table(store, query):
    # without ANALYZE (the builder runs none) SQLite plans the same for ten rows as for a million
    db = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        queries = find_queries(query, 20)
        assert queries
        for sql, params in queries:
            plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
            assert not [step for step in plan if re.match(r"SCAN customers\b", step)], (sql, plan)
            assert any(step.startswith("SEARCH customers") for step in plan), (sql, plan)
    finally:
        db.close()


def test_the_find_help_names_every_kind_of_query_it_answers():
    from kiosk.cli import build_parser

    sub = next(a for a in build_parser()._subparsers._group_actions if a.choices)
    text = " ".join(sub.choices["find"].format_help().split())
    for kind in ("id", "card code", "email", "postcode", '"Surname, First"', '"First Surname"', "organisation",
                 "three or more letters"):
        assert kind in text, kind
