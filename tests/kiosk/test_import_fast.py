"""The import's row fast path (issue 15): the same checks and the same rows as the checked path, no dict per row."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import importer
from kiosk.errors import ImportRejected
from kiosk.importer import CUSTOMER_COLUMNS, _customer, _fast_customer_row, import_files
from kiosk.records import RecordError, check_customer
from kiosk.snapshot import SnapshotStore

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
HEADER = ["id", "kind", "first_name", "last_name", "name", "active", "groups", "valid_from", "valid_until", "email",
          "postcode", "tags"]

# cells that hit every branch: blanks, padding, control and bidi characters, caps, odd dates and lists
TEXT = st.sampled_from(["", " ", "Jane", " Smith ", "Ann\u202eE", "x\x00y", "a\tb", "A" * 201, "Ünïcødé", "O'Hara"])
ID = st.sampled_from(["I-1001", " i-7 ", "O-2001", "X-1", "", "I-" + "9" * 127, "I-" + "9" * 130, "I-\u202e1"])
KIND = st.sampled_from(["", "individual", "Organisation", "company", "person", "robot", " I "])
ACTIVE = st.sampled_from(["", "true", "yes", "no", "0", "maybe", " Active "])
GROUPS = st.sampled_from(["", "members", "members;patrons", " a | b ;", ";".join(["g"] * 101), "x" * 129, "bad\x07"])
DATE = st.sampled_from(["", "2027-12-31", "31/12/2027", "2027-02-30", "2020-01-01", "soon", " 2026-01-01 "])
EMAIL = st.sampled_from(["", "m@example.org", " M@Example.ORG ", "e" * 255])
POSTCODE = st.sampled_from(["", "1234 AB", "1234ab", "9" * 17])


@settings(max_examples=500, deadline=None)
@given(st.tuples(ID, KIND, TEXT, TEXT, TEXT, ACTIVE, GROUPS, DATE, DATE, EMAIL, POSTCODE, GROUPS),
       st.sets(st.integers(1, len(HEADER) - 1)))
def test_fast_row_is_the_checked_row_or_defers_to_it(values, dropped):
    """Any cells, with any columns but the id missing from the file."""
    kept = [i for i in range(len(HEADER)) if i not in dropped]
    fields = [CUSTOMER_COLUMNS[HEADER[i].replace("_", "")] for i in kept]
    values = tuple(values[i] for i in kept)
    try:
        checked = check_customer(_customer(dict(zip(fields, values, strict=True))))
    except RecordError:
        checked = None
    fast = _fast_customer_row(fields, set())(list(values))
    # None: the checked path decides (and names the fault); otherwise exactly its row
    assert fast is None or fast == checked


def write(tmp_path, rows: list[str]):
    path = tmp_path / "customers.csv"
    path.write_text(",".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_plain_rows_make_no_record_dict_and_others_take_the_checked_path(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(importer._BUILDERS, "customers",
                        (CUSTOMER_COLUMNS, lambda row: calls.append(row) or _customer(row)))
    plain = [f"I-{i},,First{i},Last{i},,true,members,,2027-12-31,m{i}@example.org,{1000 + i} AB," for i in range(500)]
    inactive = "I-9999,,Old,Member,,no,alumni,,,,,"
    summary = import_files(tmp_path / "snapshot.sqlite", [write(tmp_path, plain + [inactive])], replace=True, now=NOW)
    assert sorted(summary.groups_created) == ["alumni", "members"]  # named by fast and checked rows alike
    assert [row["id"] for row in calls] == ["I-9999"]  # one dict, for the row the fast path defers
    store = SnapshotStore(tmp_path / "snapshot.sqlite")
    try:
        assert store.counts()["customers"] == 501
        assert store.customer("i-42").display_name == "First42 Last42"
        assert store.customer("I-42").valid_until.isoformat() == "2027-12-31"
        assert store.customer("I-9999").active is False
    finally:
        store.close()


@pytest.mark.parametrize("row, fragment", [
    ("I-1,,Ann\u202eE,Smith,,true,members,,,,,", "bidi"),
    ("I-2,,Ann,Smith,,true,members,2027-01-01,2026-01-01,,,", "after 'valid_until'"),
    ("X-3,,Ann,Smith,,true,members,,,,,", "must start with I"),
])
def test_a_bad_row_after_plain_ones_is_named_by_line_and_nothing_is_imported(tmp_path, row, fragment):
    plain = [f"I-{i},,F,L,,true,members,,,,," for i in range(100, 110)]
    with pytest.raises(ImportRejected) as err:
        import_files(tmp_path / "snapshot.sqlite", [write(tmp_path, plain + [row])], replace=True, now=NOW)
    assert "customers.csv:12:" in str(err.value) and fragment in str(err.value)
    assert not (tmp_path / "snapshot.sqlite").exists()
