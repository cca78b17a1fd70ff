"""CSV import of customers, groups and cards: native files and the exports venues already have.

The kind of each file is read from its header (see `detect_kind`). A call is all or nothing:
every row of every file goes into one new snapshot file, which replaces the live one only when
all of them were good; a bad row is reported with its file and line number and nothing is
imported. Rows are read strictly: a row with more or fewer fields than the header, a quote that
is never closed, or an id that an earlier row of the same call already used (ids match whatever
their case) is an error. Every record then passes the same checks as the upstream's
(`records.check_*`: caps, no control or bidi-override characters).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from .credential import card_key, customer_key
from .errors import ImportRejected, SnapshotError
from .records import (MAX_EMAIL, MAX_ID, MAX_ITEMS, MAX_NAME, MAX_POSTCODE, MAX_TAG, RecordError, check_customer,
                      checked_list, json_list, normalise_postcode)
from .snapshot import LoadResult, SnapshotBuilder, SnapshotStore
from .sqlfiles import is_corrupt
from .text import has_unsafe, safe_text

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

csv.field_size_limit(1 << 20)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Column aliases, by normalised header name -> our field. Native names first.
CUSTOMER_COLUMNS = {
    "id": "id", "customerid": "id", "customerno": "id", "customernumber": "id", "clientid": "id", "relationid": "id",
    "kind": "kind", "type": "kind", "customertype": "kind",
    "firstname": "first_name", "forename": "first_name", "givenname": "first_name", "voornaam": "first_name",
    "lastname": "last_name", "surname": "last_name", "familyname": "last_name", "achternaam": "last_name",
    "name": "name", "fullname": "name", "organisation": "name", "organization": "name", "company": "name",
    "companyname": "name", "customername": "name", "naam": "name",
    "active": "active", "status": "active", "inactive": "inactive",
    "groups": "groups", "customergroups": "groups", "group": "groups", "membership": "groups",
    "validfrom": "valid_from", "memberfrom": "valid_from", "startdate": "valid_from",
    "validuntil": "valid_until", "validto": "valid_until", "expiry": "valid_until", "expirydate": "valid_until",
    "expires": "valid_until", "enddate": "valid_until", "membershipexpiry": "valid_until",
    "email": "email", "emailaddress": "email", "e-mail": "email",
    "postcode": "postcode", "zipcode": "postcode", "zip": "postcode", "postalcode": "postcode",
    "phonenumber": "phone", "phone": "phone", "telephone": "phone", "mobile": "phone", "address": "address",
    "tags": "tags",
}
GROUP_COLUMNS = {"id": "id", "groupid": "id", "name": "name", "groupname": "name", "scannable": "scannable",
                 "visible": "scannable"}
CARD_COLUMNS = {
    "code": "code", "uuid": "code", "cardid": "code", "cardcode": "code", "cardnumber": "code", "url": "url",
    "cardurl": "url", "link": "url",
    "customerid": "customer_id", "assignedto": "customer_id", "customer": "customer_id",
    "cardtype": "card_type", "type": "card_type", "revoked": "revoked", "status": "revoked", "batch": "batch",
    "batchname": "batch", "entries": "entries", "punches": "entries", "entriesat": "entries_at",
}


@dataclass
class ImportSummary:
    files: list[str]
    result: LoadResult
    groups_created: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    replace: bool = False

    def __str__(self) -> str:
        r = self.result
        made = f" ({len(self.groups_created)} created from customers' groups: {', '.join(self.groups_created)})" \
            if self.groups_created else ""
        kinds = ", ".join(f"{Path(f).name} ({k})" for f, k in self.kinds.items())
        totals = ", ".join(f"{n} {t}" for t, n in self.totals.items())
        how = "replaced the snapshot with" if self.replace else "merged"
        return (f"{how} {r.customers} customers, {r.groups} groups{made}, {r.cards} cards from {kinds}\n"
                f"snapshot now holds {totals}")


# How a header tells its kind, by the fields its columns map to (aliases above). Cards and groups
# have columns no other kind has; a customers file is any other file with an id, email or name.
_CARD_SIGN = {"code", "uuid", "cardid", "cardcode", "cardnumber", "url", "cardurl"}
_PERSON = {"firstname", "lastname", "email"}  # a customers export may carry a card number as well
_GROUP_SIGN = {"scannable", "visible", "groupid", "groupname"}
_CUSTOMER_SIGN = {"id", "email", "first_name", "last_name", "name"}
KIND_RULES = {
    "customers": "an id, email or name column (id, customer_id, email, first_name, last_name, name, ...)",
    "groups": "an id (or group_id) column and scannable, visible, group_id or group_name "
              "(a plain id,name file is customers)",
    "cards": "a code or url column (code, uuid, card_id, card_number, url, ...) and no "
             "first_name, last_name or email",
}


def detect_kind(header: list[str]) -> str:
    """customers, groups or cards, from a file's header; ValueError naming every kind's rule otherwise."""
    cols = {_norm(h) for h in header}
    candidates = []
    if cols & _CARD_SIGN and not cols & _PERSON:
        candidates.append("cards")
    if cols & _GROUP_SIGN:
        if not {GROUP_COLUMNS.get(c) for c in cols} & {"id"}:
            raise ValueError(f"a groups file needs {KIND_RULES['groups']}")
        candidates.append("groups")
    if len(candidates) > 1:
        raise ValueError("this header fits both " + " and ".join(candidates) + "; put each kind in its own file: "
                         + "; ".join(f"{k} need {KIND_RULES[k]}" for k in candidates))
    if candidates:
        return candidates[0]
    if {CUSTOMER_COLUMNS.get(c) for c in cols} & _CUSTOMER_SIGN:
        return "customers"
    raise ValueError("cannot tell what this file holds from its header; "
                     + "; ".join(f"{k} need {rule}" for k, rule in KIND_RULES.items()))


def _shown(value: str) -> str:
    """A cell as an error message may quote it: printable and short (a cell may hold a megabyte)."""
    return safe_text(repr(value), 60)


def _bool(value: str, default: bool, column: str) -> bool:
    v = value.strip().lower()
    if not v:
        return default
    if v in ("true", "yes", "y", "1", "active", "ja", "waar", "valid"):
        return True
    if v in ("false", "no", "n", "0", "inactive", "nee", "onwaar", "revoked", "disabled", "blocked"):
        return False
    raise RecordError(f"{column!r} must be true or false (or yes/no, 1/0), got {_shown(value)}")


def _date(value: str, column: str) -> str | None:
    v = value.strip()
    if not v:
        return None
    if len(v) == 10 and v[4] == "-":
        try:
            return date.fromisoformat(v).isoformat()
        except ValueError:
            pass
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d"):
        try:
            return datetime.strptime(v[:10], fmt).date().isoformat()
        except ValueError:
            continue
    raise RecordError(f"{column!r} must be a date such as 2027-01-31 or 31/01/2027, got {_shown(value)}")


def _split_name(full: str) -> tuple[str, str]:
    full = " ".join(full.split())
    if "," in full:  # "Smith, Jane"
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.rpartition(" ")
    return (first, last) if first else ("", full)


_KINDS = {"i": "individual", "person": "individual", "o": "organisation", "organization": "organisation",
          "company": "organisation"}


def _customer(row: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {"type": "customer"}
    cid = row.get("id", "").strip()
    if not cid:
        # A POS export has no customer id: derive a stable one, so a re-import updates, not duplicates.
        basis = (row.get("email") or "").strip().lower() or "|".join(
            (row.get("name", ""), row.get("first_name", ""), row.get("last_name", ""), row.get("phone", ""))).lower()
        if not basis.strip("|"):
            raise RecordError("row has no customer id, email or name")
        cid = "I-" + hashlib.sha1(basis.encode()).hexdigest()[:10].upper()
    rec["id"] = cid
    kind = row.get("kind", "").strip().lower()
    rec["kind"] = _KINDS.get(kind, kind) or ("organisation" if cid[0] in "Oo" else "individual")
    first, last, name = row.get("first_name", "").strip(), row.get("last_name", "").strip(), row.get("name", "").strip()
    if name and not (first or last) and rec["kind"] == "individual":
        first, last = _split_name(name)
        name = ""
    rec.update(first_name=first, last_name=last, name=name)
    if "inactive" in row:
        rec["active"] = not _bool(row["inactive"], False, "inactive")
    else:
        rec["active"] = _bool(row.get("active", ""), True, "active")
    rec["groups"] = _list(row.get("groups", ""))
    rec["valid_from"] = _date(row.get("valid_from", ""), "valid_from")
    rec["valid_until"] = _date(row.get("valid_until", ""), "valid_until")
    rec["email"] = row.get("email", "").strip()
    rec["postcode"] = row.get("postcode", "").strip()
    rec["tags"] = _list(row.get("tags", ""))
    return rec


def _list(cell: str) -> list[str]:
    """A cell holding several values separated by ; (or |)."""
    if not cell:
        return []
    return [v.strip() for v in cell.replace("|", ";").split(";") if v.strip()]


def _group(row: dict[str, str]) -> dict[str, Any]:
    return {"type": "group", "id": row.get("id", "").strip(), "name": row.get("name", "").strip(),
            "scannable": _bool(row.get("scannable", ""), True, "scannable")}


def _card(row: dict[str, str]) -> dict[str, Any]:
    code = row.get("code", "").strip()
    url = row.get("url", "").strip()
    if not code and url:
        code = card_key(url)
        if code == url:
            raise RecordError(f"no card UUID found in the URL {_shown(url)}")
    if not code:
        raise RecordError("row has no card code or URL")
    revoked = row.get("revoked", "").strip().lower()
    is_revoked = revoked in ("revoked", "blocked", "disabled") or (
        revoked not in ("active", "valid", "assigned", "unassigned", "") and _bool(revoked, False, "revoked"))
    owner = row.get("customer_id", "").strip() or None
    return {"type": "card", "code": code, "customer_id": owner, "card_type": row.get("card_type", "").strip() or "ID",
            "revoked": is_revoked, "batch": row.get("batch", "").strip(), "entries": row.get("entries", "").strip(),
            "entries_at": row.get("entries_at", "").strip()}


_BUILDERS: dict[str, tuple[dict[str, str], Callable[[dict[str, str]], dict[str, Any]]]] = {
    "customers": (CUSTOMER_COLUMNS, _customer), "groups": (GROUP_COLUMNS, _group), "cards": (CARD_COLUMNS, _card),
}


# -- customers straight to the store's row -------------------------------------------------------------
# A million-row load spends most of its time in Python per row. The common row (an id, plain text within
# the caps, a known kind and active flag, dates and lists seen before) goes from the CSV's list of values
# to the store's tuple with the same checks as `_customer` + `records.check_customer`, without a dict;
# anything else returns None and takes that checked path, which names the fault. Rows are judged 512 at a
# time: `_fast_customer_chunk` takes a chunk of plain rows column by column, with one C call per column
# where `_fast_customer_row` makes one Python call per cell; a chunk it refuses goes row by row.

_TEXT_FIELDS = ("id", "first_name", "last_name", "name", "email", "postcode")
_CELL_FIELDS = ("kind", "active", "groups", "valid_from", "valid_until", "tags")
_TRUE = ("true", "yes", "y", "1", "active", "ja", "waar", "valid")
# The text fields, stripped and joined: one search for unsafe characters, and the caps checked one by one only
# when the whole is long enough to break one.
_CAPS = (MAX_ID, MAX_NAME, MAX_NAME, MAX_NAME, MAX_EMAIL, MAX_POSTCODE)
_SHORT = min(_CAPS[:-1])  # a joined text no longer than this keeps every cap but the postcode's
_CELLS_HELD = 65536  # distinct (kind, active, groups, dates, tags) cells remembered; dates make most of them


def _cells(kind: str, active: str, groups: str, valid_from: str, valid_until: str, tags: str) -> tuple | None:
    """(kind or "", valid_from, valid_until, groups JSON, tags JSON) as the store keeps them, from a row's
    cells, with `_customer` + `records.check_customer`'s checks; None if the checked path must judge them
    (an inactive customer, a bad cell)."""
    kind = kind.strip().lower()
    kind = _KINDS.get(kind, kind)
    flag = active.strip().lower()
    if kind not in ("", "individual", "organisation") or (flag and flag not in _TRUE):
        return None
    try:
        # ISO days, as records' check keeps them
        from_day, until_day = _date(valid_from, ""), _date(valid_until, "")
        group_items, tag_items = tuple(_list(groups)), tuple(_list(tags))
        if len(group_items) > MAX_ITEMS or len(tag_items) > MAX_ITEMS \
                or (from_day and until_day and from_day > until_day):
            return None
        return (kind, from_day, until_day, json_list(checked_list("", MAX_ID, group_items)),
                json_list(checked_list("", MAX_TAG, tag_items)))
    except RecordError:
        return None


def _fast_customer_row(fields: list[str | None], group_lists: set[str]) -> Callable[[list[str]], tuple | None] | None:
    """A function from a customers row's values to the store's row, or None for the checked path; None
    when the header has no id column (ids are then derived) or an `inactive` column. Each group list it
    stores is added to `group_lists` (as JSON)."""
    where = {f: i for i, f in enumerate(fields) if f}  # the last of two columns for one field wins, as in a record
    if "id" not in where or "inactive" in where:
        return None
    absent = len(fields)  # index of a "" after the row's values, for a column the file does not have
    texts = itemgetter(*(where.get(f, absent) for f in _TEXT_FIELDS))
    cells = itemgetter(*(where.get(f, absent) for f in _CELL_FIELDS))
    pad = not all(f in where for f in _TEXT_FIELDS + _CELL_FIELDS)
    held: dict[tuple, tuple | None] = {}
    postcodes: dict[str, str] = {}

    def row(values: list[str]) -> tuple | None:
        if pad:
            values = values + [""]
        cid, first, last, name, email, postcode = texts(values)
        cid, first, last, name, email, postcode = \
            cid.strip(), first.strip(), last.strip(), name.strip(), email.strip(), postcode.strip()
        joined = "".join((cid, first, last, name, email, postcode))
        # the postcode's cap, the last of _CAPS, is checked on its own: zip stops before it
        if not cid or cid[0] not in "IiOo" or (name and not (first or last)) or len(postcode) > MAX_POSTCODE \
                or (not joined.isprintable() and has_unsafe(joined)) \
                or (len(joined) > _SHORT
                    and any(len(t) > cap for t, cap in zip((cid, first, last, name, email), _CAPS, strict=False))):
            return None
        key = cells(values)
        known = held.get(key, held)
        if known is held:
            if len(held) >= _CELLS_HELD:
                held.clear()
            known = held[key] = _cells(*key)
            if known is not None:
                group_lists.add(known[3])
        if known is None:
            return None
        kind, from_day, until_day, group_list, tag_list = known
        postcode_norm = postcodes.get(postcode)
        if postcode_norm is None:  # postcodes repeat across customers (a town's streets): each normalised once
            if len(postcodes) >= _CELLS_HELD:
                postcodes.clear()
            postcode_norm = postcodes[postcode] = normalise_postcode(postcode)
        # customer_key(cid) inline: one call fewer per row
        return (cid.upper(), cid, kind or ("organisation" if cid[0] in "Oo" else "individual"), first, last, name, 1,
                group_list, from_day, until_day, email, postcode, "", tag_list, (last or name).casefold(),
                first.casefold(), email.casefold(), postcode_norm)

    return row


_ID_STARTS = ("I", "i", "O", "o")
_ASCII_CONTROLS = bytes(range(32)) + b"\x7f"  # text.has_unsafe's characters below U+0080
_CHUNK = 512  # rows judged together by `_fast_customer_chunk`


# A chunk's column of checked text cells (no line breaks: they are control characters) changed at once: an ASCII
# column joined by line breaks, changed by one C call and split again, costs less than one call per cell.

def _casefolded(column: tuple[str, ...]) -> Iterable[str]:
    joined = "\n".join(column)
    return joined.lower().split("\n") if joined.isascii() else map(str.casefold, column)  # ASCII: the same


def _uppercased(column: tuple[str, ...]) -> Iterable[str]:
    joined = "\n".join(column)
    return joined.upper().split("\n") if joined.isascii() else map(str.upper, column)


def _postcode_keys(column: tuple[str, ...]) -> Iterable[str]:
    """`normalise_postcode` of each cell: in ASCII cells free of controls, a space is the only white space."""
    joined = "\n".join(column)
    return joined.replace(" ", "").upper().split("\n") if joined.isascii() else map(normalise_postcode, column)


def _fast_customer_chunk(fields: list[str | None], group_lists: set[str]
                         ) -> Callable[[list[list[str]]], list[tuple] | None] | None:
    """A function from a chunk of customers rows (lists of the header's length) to the store's rows, with
    `_fast_customer_row`'s checks made column by column in C (`map`, `zip`, `str.join`), or None when any
    row of the chunk is not plain: the chunk then goes row by row. None for the same headers as
    `_fast_customer_row`. Each group list it stores is added to `group_lists` (as JSON)."""
    where = {f: i for i, f in enumerate(fields) if f}  # the last of two columns for one field wins, as in a record
    if "id" not in where or "inactive" in where:
        return None
    text_at = [where.get(f) for f in _TEXT_FIELDS]
    cell_at = [where.get(f) for f in _CELL_FIELDS]
    held: dict[tuple, tuple] = {}  # a chunk's cells -> their stored values (`_cells`), each judged once
    bad: set[tuple] = set()  # cells `_cells` defers to the checked path

    def judge(keys: list[tuple]) -> bool:
        """Fill `held` for the cells not seen yet; False if one of them must take the checked path."""
        if len(held) + len(bad) + len(keys) > _CELLS_HELD:  # cleared before, never while, a chunk is judged
            held.clear()
            bad.clear()
        for key in keys:
            if key not in held:
                if key in bad:
                    return False
                known = _cells(*key)
                if known is None:
                    bad.add(key)
                    return False
                held[key] = known
                group_lists.add(known[3])
        return True

    def chunk(rows: list[list[str]]) -> list[tuple] | None:
        try:
            columns = list(zip(*rows, strict=True))
        except ValueError:  # rows of different lengths
            return None
        if len(columns) != len(fields):
            return None
        blank = ("",) * len(rows)  # a column the file does not have
        raw = [blank if i is None else columns[i] for i in text_at]
        # every text cell of the chunk, one a line (joined a column at a time: a tuple joins without an iterator)
        joined = "\n".join(["\n".join(column) for column in raw])
        if joined.isascii():
            # ASCII: the unsafe characters are the controls, and the only ones here must be the "\n" joining
            # the cells (a control a strip would remove makes the chunk go row by row)
            if len(joined) - len(joined.encode().translate(None, _ASCII_CONTROLS)) != len(raw) * len(rows) - 1:
                return None
            # so the only white space to strip is a space, at a cell's end: next to a "\n" or an end of the whole
            stripped = raw if not (joined.startswith(" ") or joined.endswith(" ") or " \n" in joined
                                   or "\n " in joined) else [tuple(map(str.strip, column)) for column in raw]
        else:
            stripped = [tuple(map(str.strip, column)) for column in raw]
            text = "".join(itertools.chain.from_iterable(stripped))
            if not text.isprintable() and has_unsafe(text):
                return None
        cids, firsts, lasts, names, emails, postcode_cells = stripped
        if not all(map(str.startswith, cids, itertools.repeat(_ID_STARTS))) \
                or max(map(len, postcode_cells)) > MAX_POSTCODE \
                or (max(map(len, itertools.chain(cids, firsts, lasts, names, emails))) > _SHORT
                    and any(max(map(len, column)) > cap
                            for column, cap in zip((cids, firsts, lasts, names, emails), _CAPS, strict=False))):
            return None
        keys = list(zip(*(blank if i is None else columns[i] for i in cell_at), strict=True))
        try:
            known = list(map(held.__getitem__, keys))
        except KeyError:
            if not judge(keys):
                return None
            known = list(map(held.__getitem__, keys))
        kinds, from_days, until_days, group_jsons, tag_jsons = zip(*known, strict=True)
        if "" in kinds:  # no kind given: the id's first letter tells
            kinds = tuple(kind or ("organisation" if cid[0] in "Oo" else "individual")
                          for kind, cid in zip(kinds, cids, strict=True))
        named = any(names)
        if named and any(name and not (first or last) and kind == "individual"
                         for name, first, last, kind in zip(names, firsts, lasts, kinds, strict=True)):
            return None  # an individual's lone name is split into first and last by `_customer`
        # the name key: the surname, or an organisation's (or single-field) name
        last_folds = _casefolded(lasts if not named else
                                 tuple(last or name for last, name in zip(lasts, names, strict=True)))
        # customer_key(cid) is cid.upper(): the ids are stripped already
        return list(zip(_uppercased(cids), cids, kinds, firsts, lasts, names, itertools.repeat(1), group_jsons,
                        from_days, until_days, emails, postcode_cells, itertools.repeat(""), tag_jsons, last_folds,
                        _casefolded(firsts), _casefolded(emails), _postcode_keys(postcode_cells), strict=False))

    return chunk


def _open_csv(path: Path) -> tuple[io.TextIOWrapper, CsvReader]:
    fh = open(path, newline="", encoding="utf-8-sig")
    sample = fh.readline()
    fh.seek(0)
    delimiter = max(",;\t", key=sample.count) if sample else ","
    # strict: a stray quote is an error, not a field that silently swallows the lines after it
    return fh, csv.reader(fh, delimiter=delimiter, strict=True)


def read_file(path: str | Path, *, group_lists: set[str] | None = None) -> tuple[str, Iterator[tuple[Any, Any]]]:
    """(kind, iterator of (line number, protocol record)). Raises ImportRejected naming file and line.

    With `group_lists`, a customers file yields chunks of the store's checked rows instead, as (the line
    each row starts on, the rows) (see `_store_chunks`), and adds each row's group list (JSON) to
    `group_lists`."""
    path = Path(path)
    try:
        fh, reader = _open_csv(path)
    except OSError as exc:
        raise ImportRejected(f"{path}: cannot open ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"{path}:1: cannot read the file ({exc}); save it as UTF-8 CSV") from None
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise ImportRejected(f"{path}: the file is empty") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        fh.close()
        raise ImportRejected(f"{path}:1: cannot read the header ({exc}); save the file as UTF-8 CSV") from None
    try:
        kind = detect_kind(header)
    except ValueError as exc:
        fh.close()
        raise ImportRejected(f"{path}:1: {exc}") from None
    aliases, build = _BUILDERS[kind]
    fields = [aliases.get(_norm(h)) for h in header]
    if kind == "customers" and "id" not in fields and not ({"email", "name", "first_name", "last_name"} & set(fields)):
        fh.close()
        raise ImportRejected(f"{path}:1: a customers file needs an id, email or name column")

    n_fields = len(header)
    if kind == "customers" and group_lists is not None:
        return kind, _store_chunks(path, fh, reader, fields, build, group_lists)

    def record(values: list[str]) -> dict[str, Any]:
        return build({f: v for f, v in zip(fields, values, strict=True) if f})

    return kind, _rows(path, fh, reader, n_fields, record)


def _rows(path: Path, fh: io.TextIOWrapper, reader: CsvReader, n_fields: int,
          judge: Callable[[list[str]], Any]) -> Iterator[tuple[int, Any]]:
    """(line, what `judge` makes of the row) for each row but blank ones; every fault an ImportRejected
    naming the file and the line the row starts on."""
    with fh:
        end = reader.line_num
        try:
            for values in reader:
                # a quoted field may span lines: a row is reported by the line it starts on
                line, end = end + 1, reader.line_num
                if not "".join(values).strip():  # a blank row (joined: one C call, not one per field)
                    continue
                if len(values) != n_fields:
                    raise RecordError(f"{len(values)} fields but the header has {n_fields}")
                yield line, judge(values)
        except RecordError as exc:
            raise ImportRejected(f"{path}:{line}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ImportRejected(f"{path}:{reader.line_num}: cannot read this line ({exc}); "
                                 "save the file as UTF-8 CSV") from None
        except csv.Error as exc:
            if "end of data" in str(exc):
                raise ImportRejected(f"{path}:{end + 1}: a quoted field in the row that starts here is never "
                                     "closed (a stray or missing \")") from None
            raise ImportRejected(f"{path}:{end + 1}: cannot read the row that starts here ({exc})") from None


def _first_lines(rows: list[list[str]], end: int) -> list[int]:
    """The line each row starts on, the first after line `end`, when a quoted field holds line breaks (the file
    is read with newline="": a \r\n, a \r or a \n ends a line, inside a quoted field as well)."""
    lines = []
    for values in rows:
        lines.append(end + 1)
        text = "".join(values)
        end += 1 + text.count("\n") + text.count("\r") - text.count("\r\n")
    return lines


def _store_chunks(path: Path, fh: io.TextIOWrapper, reader: CsvReader, fields: list[str | None],
                  build: Callable[[dict[str, str]], dict[str, Any]], group_lists: set[str]
                  ) -> Iterator[tuple[Sequence[int], list[tuple]]]:
    """A customers file as the store's checked rows, a chunk at a time, with the line each row starts on.

    A chunk of plain rows is judged column by column (`_fast_customer_chunk`); any other chunk row by row:
    each row through `_fast_customer_row`, or, when that defers, the checked `_customer` +
    `records.check_customer`, whose RecordError is reported with the file and line."""
    n_fields = len(fields)
    chunk = _fast_customer_chunk(fields, group_lists)
    fast = _fast_customer_row(fields, group_lists)

    def checked(values: list[str]) -> tuple | None:
        """The store's row, or None for a blank row."""
        if fast is not None and len(values) == n_fields:
            row = fast(values)
            if row is not None:  # (a blank row never is: it has no id)
                return row
        if not "".join(values).strip():  # a blank row (joined: one C call, not one per field)
            return None
        if len(values) != n_fields:
            raise RecordError(f"{len(values)} fields but the header has {n_fields}")
        row = check_customer(build({f: v for f, v in zip(fields, values, strict=True) if f}))
        group_lists.add(row[7])
        return row

    with fh:
        end = reader.line_num
        try:
            while read := list(itertools.islice(reader, _CHUNK)):
                start, end = end, reader.line_num
                lines: Sequence[int] = range(start + 1, end + 1) if end - start == len(read) \
                    else _first_lines(read, start)
                stored = chunk(read) if chunk is not None else None
                if stored is not None:
                    yield lines, stored
                    continue
                kept_lines, stored = [], []
                for line, values in zip(lines, read, strict=True):
                    try:
                        row = checked(values)
                    except RecordError as exc:
                        raise ImportRejected(f"{path}:{line}: {exc}") from None
                    if row is not None:
                        kept_lines.append(line)
                        stored.append(row)
                yield kept_lines, stored
            return
        except (UnicodeDecodeError, csv.Error):
            pass
    # the reader failed somewhere in the last chunk: reading the file again row by row names the first fault
    changed = ImportRejected(f"{path}: the file changed while it was read; import again")
    try:
        fh, reader = _open_csv(path)
        next(reader)
    except (OSError, UnicodeDecodeError, csv.Error, StopIteration):
        raise changed from None
    for _row in _rows(path, fh, reader, n_fields, checked):
        pass
    raise changed


_KIND_ORDER = {"groups": 0, "customers": 1, "cards": 2}


def _open_in_order(paths: Iterable[str | Path], group_lists: set[str] | None = None
                   ) -> list[tuple[str, str, Iterator[tuple[Any, Any]]]]:
    """(path, kind, rows) for every file, headers all checked before any row is read; groups first,
    so a group's name and scannable flag are known before customers name it."""
    opened = [(str(p), *read_file(p, group_lists=group_lists)) for p in paths]
    return sorted(opened, key=lambda item: _KIND_ORDER[item[1]])


def named_group(group_id: str) -> dict[str, Any]:
    """A group that customers name but no groups file defines: created scannable, named after its id."""
    return {"type": "group", "id": group_id, "name": group_id.replace("_", " ").replace("-", " ").title(),
            "scannable": True}


def records_from_files(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Every file's protocol records, groups first, plus the groups customers name but no file defines.

    The reference upstream serves a snapshot from these; `import_files` loads them.
    """
    defined: set[str] = set()
    named: dict[str, None] = {}
    for _path, kind, rows in _open_in_order(paths):
        for _line, record in rows:
            if kind == "groups":
                defined.add(record["id"])
            elif kind == "customers":
                named.update(dict.fromkeys(record["groups"]))
            yield record
    for g in named:
        if g not in defined:
            yield named_group(g)


class _Seen:
    """Where each id of this call was first read, so that a duplicate names both lines.

    Kept in a private temporary SQLite database rather than a dict: a million ids stay on disk,
    not in the importer's memory. Ids are checked in batches; an error names the later line.
    """

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute("PRAGMA cache_size=-8000")
        self.db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, file INTEGER NOT NULL, line INTEGER NOT NULL) "
                        "WITHOUT ROWID")
        self.db.execute("BEGIN")
        self.pending: list[tuple[str, int, int]] = []

    def add(self, key: str, file: int, line: int) -> None:
        self.pending.append((key, file, line))
        if len(self.pending) >= 5000:
            self.check()

    def check(self) -> None:
        """Raise ImportRejected for the first id that an earlier row already used."""
        try:
            self.db.executemany("INSERT INTO seen VALUES (?, ?, ?)", self.pending)
        except sqlite3.IntegrityError:
            # rare: find which row it was; the rows before it are already in, and find themselves
            for key, file, line in self.pending:
                first = self.db.execute("SELECT file, line FROM seen WHERE key = ?", (key,)).fetchone()
                if first is None:
                    self.db.execute("INSERT INTO seen VALUES (?, ?, ?)", (key, file, line))
                elif first != (file, line):
                    kind, _, ident = key.partition(":")
                    raise ImportRejected(
                        f"{self.paths[file]}:{line}: {kind} {ident!r} is already on {self.paths[first[0]]}:{first[1]} "
                        "(ids match whatever their case); keep one of the two rows") from None
        self.pending.clear()

    def close(self) -> None:
        self.db.close()


def _id_of(kind: str, record: dict[str, Any]) -> str:
    """The key a record is stored under, as _Seen files it (ids match whatever their case)."""
    if kind == "customers":
        return "customer:" + customer_key(record["id"])
    if kind == "cards":
        return "card:" + card_key(record["code"])
    return "group:" + record["id"].strip()


def _name_duplicate(paths: list[str]) -> None:
    """Read the files again to name the lines of an id read twice (runs only when the counts said so)."""
    opened = _open_in_order(paths)
    seen = _Seen([path for path, _, _ in opened])
    try:
        for file, (_path, kind, rows) in enumerate(opened):
            for line, record in rows:
                seen.add(_id_of(kind, record), file, line)
        seen.check()
    finally:
        seen.close()
    raise ImportRejected("the files hold an id twice, but a second reading found none; did a file change "
                         "during the import? Import again")


_ROWS = itemgetter(1)


def _filed(chunks: Iterator[tuple[Sequence[int], list[tuple]]], file: int, seen: _Seen) -> Iterator[tuple]:
    """The store's customer rows, filing each id and line on the way (a merge)."""
    for lines, rows in chunks:
        for line, row in zip(lines, rows, strict=True):
            seen.add("customer:" + row[0], file, line)
        yield from rows


def import_files(snapshot_path: str | Path, files: Iterable[str | Path], *, replace: bool,
                 now: datetime) -> ImportSummary:
    paths = [str(p) for p in files]
    group_lists: set[str] = set()  # the customers' group lists as stored (JSON): few distinct ones
    opened = _open_in_order(paths, group_lists)
    try:
        builder = SnapshotBuilder(snapshot_path, "full" if replace else "merge")
    except SnapshotError as exc:  # the builder maps sqlite3's errors; the cause says what was wrong
        # --replace helps only with a damaged file: not with a full disk or a path that cannot be written
        hint = "; import with --replace to start a new one" if is_corrupt(exc.__cause__) and not replace else ""
        raise ImportRejected(f"{snapshot_path}: cannot {'replace' if replace else 'merge into'} the snapshot held "
                             f"({exc.__cause__ or exc}){hint}") from None
    # A replace starts from empty tables, so an id read twice shows as a row count short of the rows
    # read: checked once at the end for free. A merge updates rows already held, so it files each id.
    seen = None if replace else _Seen([path for path, _, _ in opened])
    created: list[str] = []
    try:
        for file, (path, kind, rows) in enumerate(opened):
            if kind == "customers":  # chunks of the store's checked rows (read_file's group_lists)
                # a replace streams the rows straight in (no Python call per row); a merge files each id
                builder.add_customers(itertools.chain.from_iterable(map(_ROWS, rows)) if seen is None
                                      else _filed(rows, file, seen))
                continue
            for line, record in rows:
                try:
                    builder.apply(record)
                except RecordError as exc:
                    raise ImportRejected(f"{path}:{line}: {exc}") from None
                if seen is not None:
                    seen.add(_id_of(kind, record), file, line)
        totals: dict[str, int] | None = None
        if seen is not None:
            seen.check()
        else:
            totals = builder.totals()
            if totals != {"customers": builder.result.customers, "groups": builder.result.groups,
                          "cards": builder.result.cards}:
                _name_duplicate(paths)
        # in a merge, groups the held snapshot defines count as defined
        named = {g for groups in group_lists for g in json.loads(groups)}
        for g in sorted(named - builder.group_ids()):
            builder.apply(named_group(g))
            created.append(g)
        meta: dict[str, str] = {}
        if not replace:
            held = SnapshotStore(snapshot_path)
            meta = held.meta()
            held.close()
        meta.update(synced_at=now.isoformat(timespec="seconds"), source="import",
                    imported_files=";".join(Path(p).name for p in paths))
        meta.setdefault("cursor", "")
        if totals is None:
            totals = builder.totals()
        else:  # counting a million rows once is enough: the groups just created are all that changed
            totals["groups"] += len(created)
        result = builder.commit(meta)
    except BaseException:
        builder.abort()
        raise
    finally:
        if seen is not None:
            seen.close()
    kinds = {p: k for p, k, _ in sorted(opened, key=lambda item: paths.index(item[0]))}
    return ImportSummary(paths, result, created, kinds, totals, replace)
