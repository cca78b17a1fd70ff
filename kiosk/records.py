"""The shape of snapshot records (protocol lines, CSV rows and demo data all become these).

`check_*` turn a loose JSON-like dict into a row for the store, or raise RecordError with
a plain-words reason. Unknown fields are ignored, as the protocol requires. This is the one
boundary every customer, group and card passes (upstream sync, CSV import, the demo, the
reference upstream), so nothing unchecked reaches the store, a log line, a terminal or the screen.

Text fields are capped (characters, after trimming) and may not hold control characters
(C0, C1, DEL), bidi embeddings, overrides or isolates, or lone surrogates: such a record is
rejected with the field and the reason, never silently altered. The caps sit far above real
values and keep a record from carrying megabytes into a log line or the screen:

    customer id, group id, card owner id   128      email          254 (RFC 5321)
    card code                              256      postcode        16
    first_name, last_name, name, group name 200     batch          100
    photo URL                              2048     each tag        64
    groups and tags per customer           100 each
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime, timezone

from .credential import MAX_LEN as MAX_CODE
from .credential import card_key, customer_key
from .frozen import maker
from .model import CARD_TYPES, Card, Customer, Group
from .text import has_unsafe, safe_text

MAX_ID = 128
MAX_NAME = 200
MAX_EMAIL = 254
MAX_POSTCODE = 16
MAX_BATCH = 100
MAX_TAG = 64
MAX_PHOTO = 2048
MAX_ITEMS = 100  # groups, and tags, per customer


class RecordError(ValueError):
    """A record has the wrong shape; the message says which field and why."""


def _shown(value: object) -> str:
    """A rejected value as an error message may quote it: printable and short."""
    return safe_text(repr(value), 60)


def _bad_text(key: str, value: str, cap: int) -> RecordError:
    if len(value) > cap:
        return RecordError(f"{key!r} is {len(value):,} characters long; at most {cap} are allowed")
    at, char = next((i, c) for i, c in enumerate(value) if has_unsafe(c))
    return RecordError(f"{key!r} holds a control or bidi-override character (U+{ord(char):04X}) "
                       f"at position {at + 1}; remove it")


def _str(rec: dict, key: str, cap: int, *, required: bool = False, default: str = "") -> str:
    value = rec.get(key)
    if value.__class__ is str and not required:  # the common case, kept cheap for million-row loads
        value = value.strip()
        if len(value) > cap or has_unsafe(value):
            raise _bad_text(key, value, cap)
        return value
    if value is None:
        if required:
            raise RecordError(f"missing {key!r}")
        return default
    if not isinstance(value, str):
        raise RecordError(f"{key!r} must be a string, got {_shown(value)}")
    value = value.strip()
    if required and not value:
        raise RecordError(f"{key!r} must not be empty")
    if len(value) > cap or has_unsafe(value):
        raise _bad_text(key, value, cap)
    return value


def _bool(rec: dict, key: str, default: bool) -> bool:
    value = rec.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RecordError(f"{key!r} must be true or false, got {_shown(value)}")
    return value


def _date(rec: dict, key: str) -> str | None:
    value = rec.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 40:  # the longest ISO date-time with an offset is 32
        raise RecordError(f"{key!r} must be an ISO date such as 2027-01-31, got {_shown(value)}")
    day = _iso_day(value)
    if day is None:
        raise RecordError(f"{key!r} must be an ISO date such as 2027-01-31, got {_shown(value)}")
    return day


@functools.lru_cache(maxsize=4096)
def _iso_day(value: str) -> str | None:
    """Dates repeat across customers (an expiry per season): each distinct one is parsed once."""
    for text in (value, value.strip()[:10]):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            continue
    return None


def _strings(rec: dict, key: str, cap: int) -> tuple[str, ...]:
    value = rec.get(key)
    if value is None or value == []:
        return ()
    if not isinstance(value, list):
        raise RecordError(f"{key!r} must be a list of strings, got {_shown(value)}")
    if len(value) > MAX_ITEMS:
        raise RecordError(f"{key!r} holds {len(value):,} entries; at most {MAX_ITEMS} are allowed")
    try:
        return checked_list(key, cap, tuple(item.strip() for item in value))
    except (AttributeError, TypeError):  # an entry that is no string (a number, a list, an object)
        raise RecordError(f"{key!r} must be a list of strings, got {_shown(value)}") from None


@functools.lru_cache(maxsize=4096)
def checked_list(key: str, cap: int, items: tuple) -> tuple[str, ...]:
    """Group and tag lists repeat across customers: check each distinct (trimmed) one once."""
    for item in items:
        if item.__class__ is not str:
            raise RecordError(f"{key!r} must be a list of strings, got an entry {_shown(item)}")
        if len(item) > cap or has_unsafe(item):
            raise _bad_text(f"{key} entry", item, cap)
    return tuple(item for item in items if item)


def check_group(rec: dict) -> tuple:
    gid = _str(rec, "id", MAX_ID, required=True)
    return (gid, _str(rec, "name", MAX_NAME) or gid, 1 if _bool(rec, "scannable", True) else 0)


@functools.lru_cache(maxsize=4096)
def json_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))


def check_customer(rec: dict) -> tuple:
    """The store's row for a customer record."""
    get = rec.get
    try:  # the common case, kept cheap for million-row loads: every text field checked with one search
        cid, kind = get("id", "").strip(), get("kind", "").strip()
        first, last, name = get("first_name", "").strip(), get("last_name", "").strip(), get("name", "").strip()
        email, postcode, photo = get("email", "").strip(), get("postcode", "").strip(), get("photo", "").strip()
        fast = bool(cid) and len(cid) <= MAX_ID and len(kind) <= MAX_ID and len(first) <= MAX_NAME \
            and len(last) <= MAX_NAME and len(name) <= MAX_NAME and len(email) <= MAX_EMAIL \
            and len(postcode) <= MAX_POSTCODE and len(photo) <= MAX_PHOTO \
            and not has_unsafe(cid + kind + first + last + name + email + postcode + photo)
    except (AttributeError, TypeError):  # a field that is no string (or null): the checks below say which
        fast = False
    if not fast:  # field by field, so that the error names the one at fault
        cid, kind = _str(rec, "id", MAX_ID, required=True), _str(rec, "kind", MAX_ID)
        first, last = _str(rec, "first_name", MAX_NAME), _str(rec, "last_name", MAX_NAME)
        name, email = _str(rec, "name", MAX_NAME), _str(rec, "email", MAX_EMAIL)
        postcode, photo = _str(rec, "postcode", MAX_POSTCODE), _str(rec, "photo", MAX_PHOTO)
    if cid[0] not in "IiOo":
        raise RecordError(f"customer id {cid!r} must start with I (individual) or O (organisation)")
    kind = kind or ("organisation" if cid[0] in "Oo" else "individual")
    if kind not in ("individual", "organisation"):
        raise RecordError(f"'kind' must be 'individual' or 'organisation', got {kind!r}")
    valid_from, valid_until = _date(rec, "valid_from"), _date(rec, "valid_until")
    if valid_from and valid_until and valid_from > valid_until:
        raise RecordError(f"'valid_from' {valid_from} is after 'valid_until' {valid_until}")
    return (
        customer_key(cid), cid, kind, first, last, name, 1 if _bool(rec, "active", True) else 0,
        json_list(_strings(rec, "groups", MAX_ID)), valid_from, valid_until, email, postcode,
        photo, json_list(_strings(rec, "tags", MAX_TAG)),
        # the name key `find` searches: the surname, or an organisation's (or single-field) name
        (last or name).casefold(), first.casefold(), email.casefold(), normalise_postcode(postcode),
    )


def check_card(rec: dict) -> tuple:
    code = _str(rec, "code", MAX_CODE, required=True)
    owner = _str(rec, "customer_id", MAX_ID)  # null or empty: an unassigned card
    card_type = (_str(rec, "card_type", MAX_ID) or "ID").upper()
    if card_type not in CARD_TYPES:
        raise RecordError(f"'card_type' must be one of {', '.join(CARD_TYPES)}, got {card_type!r}")
    return (card_key(code), code, customer_key(owner) if owner else None, card_type,
            1 if _bool(rec, "revoked", False) else 0, _str(rec, "batch", MAX_BATCH), *_punch_balance(rec))


def _punch_balance(rec: dict) -> tuple[int | None, str | None]:
    """A PUNCH card's `entries` left, as counted upstream at `entries_at` (uses after it are the kiosk's)."""
    entries, at = rec.get("entries"), rec.get("entries_at")
    if entries in (None, ""):
        return None, None
    if isinstance(entries, str) and entries.strip().isdigit():
        entries = int(entries)
    if isinstance(entries, bool) or not isinstance(entries, int) or not 0 <= entries <= 1_000_000:
        raise RecordError(f"'entries' must be a whole number from 0 to 1000000, got {safe_text(repr(entries), 40)}")
    if at in (None, ""):
        return entries, None
    try:
        moment = datetime.fromisoformat(at.strip().replace("Z", "+00:00")) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise RecordError(f"'entries_at' must be an ISO time such as 2026-11-28T10:00:00Z, got "
                          f"{safe_text(repr(at), 40)}")
    return entries, (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def check_delete(rec: dict) -> tuple[str, str]:
    entity = _str(rec, "entity", MAX_ID, required=True)
    if entity not in ("customer", "card", "group"):
        raise RecordError(f"'entity' must be customer, card or group, got {entity!r}")
    ident = _str(rec, "id", MAX_CODE if entity == "card" else MAX_ID, required=True)
    key = {"customer": customer_key, "card": card_key, "group": lambda g: g}[entity](ident)
    return entity, key


def normalise_postcode(postcode: str) -> str:
    return "".join(postcode.split()).upper()


@functools.lru_cache(maxsize=4096)
def _tuple_of(json_list: str) -> tuple[str, ...]:
    """Group lists repeat across customers: parse each distinct one once."""
    return tuple(json.loads(json_list))


# a snapshot read builds one of each per card scan: without the frozen __init__'s per-field cost (kiosk/frozen.py)
_customer = maker(Customer)
_card = maker(Card)


def customer_from_row(row: tuple) -> Customer:
    (_key, cid, kind, first, last, name, active, groups, vf, vu, email, postcode, photo, tags) = row[:14]
    return _customer(
        id=cid, kind=kind, first_name=first, last_name=last, name=name, active=bool(active),
        groups=_tuple_of(groups), valid_from=date.fromisoformat(vf) if vf else None,
        valid_until=date.fromisoformat(vu) if vu else None, email=email, postcode=postcode,
        photo=photo, tags=_tuple_of(tags),
    )


def card_from_row(row: tuple) -> Card:
    _key, code, owner, card_type, revoked, batch, entries, entries_at = row
    return _card(code=code, customer_id=owner, card_type=card_type, revoked=bool(revoked), batch=batch,
                entries=entries, entries_at=datetime.fromisoformat(entries_at) if entries_at else None)


def group_from_row(row: tuple) -> Group:
    gid, name, scannable = row
    return Group(id=gid, name=name, scannable=bool(scannable))
