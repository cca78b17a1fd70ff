"""The shape of snapshot records (protocol lines, CSV rows and demo data all become these).

`check_*` turn a loose JSON-like dict into a row for the store, or raise RecordError with
a plain-words reason. Unknown fields are ignored, as the protocol requires.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime, timezone

from .credential import card_key, customer_key
from .model import CARD_TYPES, Card, Customer, Group


class RecordError(ValueError):
    """A record has the wrong shape; the message says which field and why."""


def _str(rec: dict, key: str, *, required: bool = False, default: str = "") -> str:
    value = rec.get(key)
    if value.__class__ is str and not required:  # the common case, kept cheap for million-row loads
        return value.strip()
    if value is None:
        if required:
            raise RecordError(f"missing {key!r}")
        return default
    if not isinstance(value, str):
        raise RecordError(f"{key!r} must be a string, got {value!r}")
    value = value.strip()
    if required and not value:
        raise RecordError(f"{key!r} must not be empty")
    return value


def _bool(rec: dict, key: str, default: bool) -> bool:
    value = rec.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RecordError(f"{key!r} must be true or false, got {value!r}")
    return value


def _date(rec: dict, key: str) -> str | None:
    value = rec.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key!r} must be an ISO date such as 2027-01-31, got {value!r}")
    if len(value) == 10:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        raise RecordError(f"{key!r} must be an ISO date such as 2027-01-31, got {value!r}") from None


def _strings(rec: dict, key: str) -> list[str]:
    value = rec.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"{key!r} must be a list of strings, got {value!r}")
    return [v.strip() for v in value if v.strip()]


def check_group(rec: dict) -> tuple:
    gid = _str(rec, "id", required=True)
    return (gid, _str(rec, "name") or gid, 1 if _bool(rec, "scannable", True) else 0)


def check_customer(rec: dict) -> tuple:
    cid = _str(rec, "id", required=True)
    if cid[0] not in "IiOo":
        raise RecordError(f"customer id {cid!r} must start with I (individual) or O (organisation)")
    kind = _str(rec, "kind") or ("organisation" if cid[0] in "Oo" else "individual")
    if kind not in ("individual", "organisation"):
        raise RecordError(f"'kind' must be 'individual' or 'organisation', got {kind!r}")
    first, last, name = _str(rec, "first_name"), _str(rec, "last_name"), _str(rec, "name")
    valid_from, valid_until = _date(rec, "valid_from"), _date(rec, "valid_until")
    if valid_from and valid_until and valid_from > valid_until:
        raise RecordError(f"'valid_from' {valid_from} is after 'valid_until' {valid_until}")
    return customer_row({
        "id": cid, "kind": kind, "first_name": first, "last_name": last, "name": name,
        "active": _bool(rec, "active", True), "groups": _strings(rec, "groups"), "valid_from": valid_from,
        "valid_until": valid_until, "email": _str(rec, "email"), "postcode": _str(rec, "postcode"),
        "photo": _str(rec, "photo"), "tags": _strings(rec, "tags")})


@functools.lru_cache(maxsize=4096)
def _json_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))


def customer_row(rec: dict) -> tuple:
    """The store's row for a customer record whose fields are already checked (see check_customer)."""
    cid, first, last, email, postcode = rec["id"], rec["first_name"], rec["last_name"], rec["email"], rec["postcode"]
    return (
        customer_key(cid), cid, rec["kind"], first, last, rec["name"], 1 if rec["active"] else 0,
        _json_list(tuple(rec["groups"])), rec["valid_from"], rec["valid_until"], email, postcode,
        rec.get("photo", ""), _json_list(tuple(rec.get("tags", ()))),
        last.casefold(), first.casefold(), email.casefold(), normalise_postcode(postcode),
    )


def check_card(rec: dict) -> tuple:
    code = _str(rec, "code", required=True)
    owner = rec.get("customer_id")
    if owner is not None and not isinstance(owner, str):
        raise RecordError(f"'customer_id' must be a string or null, got {owner!r}")
    owner = customer_key(owner) if owner and owner.strip() else None
    card_type = (_str(rec, "card_type") or "ID").upper()
    if card_type not in CARD_TYPES:
        raise RecordError(f"'card_type' must be one of {', '.join(CARD_TYPES)}, got {card_type!r}")
    return (card_key(code), code, owner, card_type, 1 if _bool(rec, "revoked", False) else 0, _str(rec, "batch"),
            *_punch_balance(rec))


def _punch_balance(rec: dict) -> tuple[int | None, str | None]:
    """A PUNCH card's `entries` left, as counted upstream at `entries_at` (uses after it are the kiosk's)."""
    entries, at = rec.get("entries"), rec.get("entries_at")
    if entries in (None, ""):
        return None, None
    if isinstance(entries, str) and entries.strip().isdigit():
        entries = int(entries)
    if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
        raise RecordError(f"'entries' must be a whole number of at least 0, got {entries!r}")
    if at in (None, ""):
        return entries, None
    try:
        moment = datetime.fromisoformat(at.strip().replace("Z", "+00:00")) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise RecordError(f"'entries_at' must be an ISO time such as 2026-11-28T10:00:00Z, got {at!r}")
    return entries, (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def check_delete(rec: dict) -> tuple[str, str]:
    entity = _str(rec, "entity", required=True)
    if entity not in ("customer", "card", "group"):
        raise RecordError(f"'entity' must be customer, card or group, got {entity!r}")
    ident = _str(rec, "id", required=True)
    key = {"customer": customer_key, "card": card_key, "group": lambda g: g}[entity](ident)
    return entity, key


def normalise_postcode(postcode: str) -> str:
    return "".join(postcode.split()).upper()


@functools.lru_cache(maxsize=4096)
def _tuple_of(json_list: str) -> tuple[str, ...]:
    """Group lists repeat across customers: parse each distinct one once."""
    return tuple(json.loads(json_list))


def customer_from_row(row: tuple) -> Customer:
    (_key, cid, kind, first, last, name, active, groups, vf, vu, email, postcode, photo, tags) = row[:14]
    return Customer(
        id=cid, kind=kind, first_name=first, last_name=last, name=name, active=bool(active),
        groups=_tuple_of(groups), valid_from=date.fromisoformat(vf) if vf else None,
        valid_until=date.fromisoformat(vu) if vu else None, email=email, postcode=postcode,
        photo=photo, tags=_tuple_of(tags),
    )


def card_from_row(row: tuple) -> Card:
    _key, code, owner, card_type, revoked, batch, entries, entries_at = row
    return Card(code=code, customer_id=owner, card_type=card_type, revoked=bool(revoked), batch=batch,
                entries=entries, entries_at=datetime.fromisoformat(entries_at) if entries_at else None)


def group_from_row(row: tuple) -> Group:
    gid, name, scannable = row
    return Group(id=gid, name=name, scannable=bool(scannable))
