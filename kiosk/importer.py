"""CSV import of customers, groups and cards: native files and the exports venues already have.

The kind of each file is read from its header. A call is all or nothing: every row of every
file goes into one new snapshot file, which replaces the live one only when all of them
were good; a bad row is reported with its file and line number and nothing is imported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .credential import card_key
from .errors import ImportRejected
from .records import RecordError, customer_row
from .snapshot import LoadResult, SnapshotBuilder, SnapshotStore

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


def detect_kind(header: list[str]) -> str:
    """customers, groups or cards, from a file's header; ImportRejected with what we expected otherwise."""
    cols = {_norm(h) for h in header}
    if {"code", "uuid", "cardid", "cardcode", "url", "cardurl", "cardnumber"} & cols and not (
            {"firstname", "lastname", "email"} & cols):
        return "cards"
    if "scannable" in cols or "visible" in cols or cols in ({"id", "name"}, {"groupid", "groupname"}):
        return "groups"
    if {"id", "customerid", "firstname", "lastname", "name", "email", "customerno", "fullname"} & cols:
        return "customers"
    raise ValueError("cannot tell what this file holds from its header; expected customers "
                     "(id,kind,first_name,last_name,...), groups (id,name,scannable) or cards "
                     "(code,customer_id,card_type,revoked,batch)")


def _bool(value: str, default: bool, column: str) -> bool:
    v = value.strip().lower()
    if not v:
        return default
    if v in ("true", "yes", "y", "1", "active", "ja", "waar", "valid"):
        return True
    if v in ("false", "no", "n", "0", "inactive", "nee", "onwaar", "revoked", "disabled", "blocked"):
        return False
    raise RecordError(f"{column!r} must be true or false (or yes/no, 1/0), got {value!r}")


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
    raise RecordError(f"{column!r} must be a date such as 2027-01-31 or 31/01/2027, got {value!r}")


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
    elif cid[0] not in "IiOo":
        raise RecordError(f"customer id {cid!r} must start with I (individual) or O (organisation)")
    rec["id"] = cid
    kind = row.get("kind", "").strip().lower()
    rec["kind"] = _KINDS.get(kind, kind) or ("organisation" if cid[0] in "Oo" else "individual")
    if rec["kind"] not in ("individual", "organisation"):
        raise RecordError(f"'kind' must be individual or organisation, got {kind!r}")
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
    if rec["valid_from"] and rec["valid_until"] and rec["valid_from"] > rec["valid_until"]:
        raise RecordError(f"'valid_from' {rec['valid_from']} is after 'valid_until' {rec['valid_until']}")
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
            raise RecordError(f"no card UUID found in the URL {url!r}")
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
    return fh, csv.reader(fh, delimiter=delimiter)


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
            line = 1
            try:
                for values in reader:
                    line = reader.line_num
                    if not any(v.strip() for v in values):
                        continue
                    if len(values) > len(header):
                        raise RecordError(f"{len(values)} fields but the header has {len(header)}")
                    row = {f: v for f, v in zip(fields, values) if f}
                    yield line, build(row)
            except RecordError as exc:
                raise ImportRejected(f"{path}:{line}: {exc}") from None
            except (UnicodeDecodeError, csv.Error) as exc:
                raise ImportRejected(f"{path}:{reader.line_num}: cannot read this line ({exc}); "
                                     "save the file as UTF-8 CSV") from None

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


def import_files(snapshot_path: str | Path, paths: Iterable[str | Path], *, replace: bool, now: datetime) -> ImportSummary:
    paths = [str(p) for p in paths]
    opened = _open_in_order(paths)
    builder = SnapshotBuilder(snapshot_path, "full" if replace else "merge")
    created: list[str] = []
    try:
        named: set[str] = set()
        for path, kind, rows in opened:
            for line, record in rows:
                try:
                    if kind == "customers":  # already checked field by field while read: skip a second check
                        builder.add_customer(customer_row(record))
                        named.update(record["groups"])
                    else:
                        builder.apply(record)
                except RecordError as exc:
                    raise ImportRejected(f"{path}:{line}: {exc}") from None
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
    return ImportSummary(paths, result, created, {p: k for p, k, _ in sorted(opened, key=lambda item: paths.index(item[0]))}, totals, replace)


