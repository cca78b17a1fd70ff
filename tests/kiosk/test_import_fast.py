"""The import's row fast path (issue 15): the same checks and the same rows as the checked path, no dict per row."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import importer
from kiosk.errors import ImportRejected
from kiosk.importer import CUSTOMER_COLUMNS, _customer, _fast_customer_chunk, _fast_customer_row, import_files
from kiosk.records import RecordError, check_customer
from kiosk.snapshot import SnapshotStore

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
HEADER = ["id", "kind", "first_name", "last_name", "name", "active", "groups", "valid_from", "valid_until", "email",
          "postcode", "tags"]



def cells(plain: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """A plain value half the time (so that whole rows and chunks are often plain), any value otherwise."""
    return st.sampled_from(plain) | st.sampled_from(plain + odd)


# cells that hit every branch: blanks, padding, control and bidi characters, caps, odd dates and lists;
# a lone name (first and last empty) is a case of its own
TEXT = cells(["", "Jane", "Zoë"], [" ", " Smith ", "Ann\u202eE", "x\x00y", "a\tb", "A" * 201, "Ünïcødé", "O'Hara",
                                  "Jane\t", "\u00a0Ann", "Ann\u200d", "Smith, Jr", "x\n", "Ann\x85", "Zoë\x7f"])
ID = cells(["I-1001", "O-2001"], [" i-7 ", "X-1", "", "I-" + "9" * 127, "I-" + "9" * 130, "I-\u202e1"])
KIND = cells(["", "individual"], ["Organisation", "company", "person", "robot", " I "])
ACTIVE = cells(["", "true"], ["yes", "no", "0", "maybe", " Active "])
GROUPS = cells(["", "members"], ["members;patrons", " a | b ;", ";".join(["g"] * 101), "x" * 129, "bad\x07"])
DATE = cells(["", "2027-12-31"], ["31/12/2027", "2027-02-30", "2020-01-01", "soon", " 2026-01-01 "])
EMAIL = cells(["", "m@example.org"], [" M@Example.ORG ", "e" * 255])
POSTCODE = cells(["", "1234 AB"], ["1234ab", "9" * 17, " 12 34 ab ", "1234\u00a0AB", "12\x1f34"])


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


ROW = st.tuples(ID, KIND, TEXT, TEXT, TEXT, ACTIVE, GROUPS, DATE, DATE, EMAIL, POSTCODE, GROUPS)


def checked_row(fields, values):
    try:
        return check_customer(_customer(dict(zip(fields, values, strict=True))))
    except RecordError:
        return None


@settings(max_examples=500, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=6), st.sets(st.integers(1, len(HEADER) - 1)))
def test_a_fast_chunk_is_the_checked_rows_or_defers_to_them(rows, dropped):
    """Any cells in a chunk of rows: either every row passes the checked path and the chunk is exactly its
    rows, or the chunk goes row by row. Each row alone as well, through the same function (its cells and
    postcodes remembered from the chunk before)."""
    kept = [i for i in range(len(HEADER)) if i not in dropped]
    fields = [CUSTOMER_COLUMNS[HEADER[i].replace("_", "")] for i in kept]
    chunk = _fast_customer_chunk(fields, set())
    values = [[row[i] for i in kept] for row in rows]
    for tried in [values, *([one] for one in values)]:
        expected = [checked_row(fields, one) for one in tried]
        fast = chunk([list(one) for one in tried])
        assert fast is None or (None not in expected and fast == expected)


@pytest.mark.parametrize("row", [0, 2], ids=["first row", "last row"])
@pytest.mark.parametrize("column", [0, 2, 3, 4, 9, 10], ids=lambda i: HEADER[i])
@pytest.mark.parametrize("pad", [" {}", "{} ", "\u00a0{}\u00a0"], ids=["leading", "trailing", "nbsp"])
def test_a_fast_chunk_strips_every_text_cell_wherever_it_stands(row, column, pad):
    """A space (or another white space) at either end of any text cell, in the first or last row: stripped."""
    fields = [CUSTOMER_COLUMNS[h.replace("_", "")] for h in HEADER]
    rows = [[f"I-{i}", "", "Ann", "Lee", "", "", "members", "", "", "a@b.org", "1234 AB", ""] for i in range(3)]
    rows[row][column] = pad.format(rows[row][column])
    assert _fast_customer_chunk(fields, set())([list(r) for r in rows]) == [checked_row(fields, r) for r in rows]


def test_a_fast_chunk_leaves_an_individuals_lone_name_to_the_checked_path():
    """`_customer` splits an individual's lone name into first and last: the chunk must not store it whole."""
    fields = [CUSTOMER_COLUMNS[h.replace("_", "")] for h in HEADER]
    rows = [["I-1", "", "", "", "Jane Doe", "", "", "", "", "", "", ""],
            ["O-2", "", "", "", "Acme", "", "", "", "", "", "", ""]]
    fast = _fast_customer_chunk(fields, set())([list(r) for r in rows])
    assert fast is None or fast == [checked_row(fields, r) for r in rows]
    assert checked_row(fields, rows[0])[3:6] == ("Jane", "Doe", "")


def test_a_fast_chunk_takes_plain_rows_ascii_or_not():
    """The chunk path does take plain rows (so the property above is not met by always deferring)."""
    fields = [CUSTOMER_COLUMNS[h.replace("_", "")] for h in HEADER]
    for first in ("Jane", "Zoë", " Ann "):
        rows = [["I-1", "", first, "Lee", "", "yes", "members", "", "2027-01-01", "A@B.org", "12 34 ab", ""],
                ["o-2", "company", "", "", "Acme", "", "", "2026-01-01", "", "", "", "vip"]]
        assert _fast_customer_chunk(fields, set())([list(r) for r in rows]) == [checked_row(fields, r) for r in rows]


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


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("fault, fragment", [
    ("I-2,,Ann\u202eE,Smith,,true,members,,,,,", "bidi"),
    ('I-2,,"Ann,Smith,,true,members,,,,,', "never closed"),
    ("I-2,,Ann,Smith,,true", "6 fields but the header has 12"),
])
def test_a_fault_after_chunks_with_multi_line_cells_is_named_by_its_line(tmp_path, newline, fault, fragment):
    """Quoted cells holding line breaks move every later row's line; chunks of plain rows before and after."""
    plain = [f"I-{i},,F,L,,true,members,,,,," for i in range(1000, 1700)]
    # a line break is a control character in a name, but white space around a list's items
    spanning = [f'I-{i},,F,L,,true,"members;{newline}patrons",,,,,' for i in range(2000, 2300)]
    text = newline.join([",".join(HEADER), *plain, *spanning, *plain[:5], fault, *plain[5:]]) + newline
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode())
    with pytest.raises(ImportRejected) as err:
        import_files(tmp_path / "snapshot.sqlite", [path], replace=True, now=NOW)
    line = 1 + len(plain) + 2 * len(spanning) + 5 + 1
    assert f"customers.csv:{line}:" in str(err.value) and fragment in str(err.value)
    assert not (tmp_path / "snapshot.sqlite").exists()
