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
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .credential import card_key, customer_key
from .errors import ImportRejected, SnapshotError
from .records import RecordError, check_customer
from .snapshot import LoadResult, SnapshotBuilder, SnapshotStore
from .sqlfiles import is_corrupt
from .text import safe_text

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


def _open_csv(path: Path) -> tuple[io.TextIOBase, csv.reader]:
    fh = open(path, newline="", encoding="utf-8-sig")
    sample = fh.readline()
    fh.seek(0)
    delimiter = max(",;\t", key=sample.count) if sample else ","
    # strict: a stray quote is an error, not a field that silently swallows the lines after it
    return fh, csv.reader(fh, delimiter=delimiter, strict=True)


def read_file(path: str | Path) -> tuple[str, Iterator[tuple[int, dict[str, Any]]]]:
    """(kind, iterator of (line number, protocol record)). Raises ImportRejected naming file and line."""
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

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with fh:
            end = reader.line_num
            try:
                for values in reader:
                    # a quoted field may span lines: a row is reported by the line it starts on
                    line, end = end + 1, reader.line_num
                    if not any(v.strip() for v in values):
                        continue
                    if len(values) != len(header):
                        raise RecordError(f"{len(values)} fields but the header has {len(header)}")
                    row = {f: v for f, v in zip(fields, values) if f}
                    yield line, build(row)
            except RecordError as exc:
                raise ImportRejected(f"{path}:{line}: {exc}") from None
            except UnicodeDecodeError as exc:
                raise ImportRejected(f"{path}:{reader.line_num}: cannot read this line ({exc}); "
                                     "save the file as UTF-8 CSV") from None
            except csv.Error as exc:
                if "end of data" in str(exc):
                    raise ImportRejected(f"{path}:{end + 1}: a quoted field in the row that starts here is never closed "
                                         "(a stray or missing \")") from None
                raise ImportRejected(f"{path}:{end + 1}: cannot read the row that starts here ({exc})") from None

    return kind, rows()


_KIND_ORDER = {"groups": 0, "customers": 1, "cards": 2}


def _open_in_order(paths: Iterable[str | Path]) -> list[tuple[str, str, Iterator[tuple[int, dict[str, Any]]]]]:
    """(path, kind, rows) for every file, headers all checked before any row is read; groups first,
    so a group's name and scannable flag are known before customers name it."""
    opened = [(str(p), *read_file(p)) for p in paths]
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


def import_files(snapshot_path: str | Path, paths: Iterable[str | Path], *, replace: bool, now: datetime) -> ImportSummary:
    paths = [str(p) for p in paths]
    opened = _open_in_order(paths)
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
        named: set[str] = set()
        for file, (path, kind, rows) in enumerate(opened):
            for line, record in rows:
                try:
                    if kind == "customers":
                        row = check_customer(record)
                        builder.add_customer(row)
                        named.update(record["groups"])
                    else:
                        builder.apply(record)
                except RecordError as exc:
                    raise ImportRejected(f"{path}:{line}: {exc}") from None
                if seen is not None:
                    seen.add(_id_of(kind, record), file, line)
        if seen is not None:
            seen.check()
        elif builder.totals() != {"customers": builder.result.customers, "groups": builder.result.groups,
                                  "cards": builder.result.cards}:
            _name_duplicate(paths)
        # in a merge, groups the held snapshot defines count as defined
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
        totals = builder.totals()
        result = builder.commit(meta)
    except BaseException:
        builder.abort()
        raise
    finally:
        if seen is not None:
            seen.close()
    return ImportSummary(paths, result, created, {p: k for p, k, _ in sorted(opened, key=lambda item: paths.index(item[0]))}, totals, replace)
