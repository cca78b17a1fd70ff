"""What a scanned text means: a customer id, a card UUID, another card code, or nothing usable."""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote, urlsplit

from . import passes
from .frozen import maker
from .model import Credential, CredentialKind

MAX_LEN = 256
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BARE_UUID = re.compile(r"(?:urn:uuid:)?\{?(" + _UUID.pattern + r")\}?", re.IGNORECASE)
# I-1001, O-2001, I1001, i_1001: a letter I or O, an optional separator, then an identifier
# with at least one digit (so a word such as "Inkoop" stays an ordinary card code).
_CUSTOMER_ID = re.compile(r"[IiOo][-_]?(?=[0-9A-Za-z-]*[0-9])[0-9A-Za-z][0-9A-Za-z-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates (a str from a bad decoder) cannot be stored or shown as UTF-8. One regex search runs at
# C speed: walking the characters in Python cost 17 % of parse + decide() on a card hit (issue 15).
_SURROGATE = re.compile("[\ud800-\udfff]")
_TRAILING = "\r\n\t"
# http(s)://host[:port] followed by a path, query or fragment, with a host urlsplit takes as it is
_PLAIN_URL = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.:-]*(?=[/?#])")
_credential = maker(Credential)  # a Credential without the frozen __init__'s per-field cost (kiosk/frozen.py)


def printable(text: str, limit: int = MAX_LEN) -> str:
    """The scanned text as it may be stored and shown: cut, control characters replaced."""
    return _CONTROL.sub("\ufffd", text[:limit]).replace("\n", "\ufffd").replace("\t", "\ufffd").replace("\r", "\ufffd")


def _invalid(raw: str, problem: str) -> Credential:
    return Credential(raw=printable(raw), kind=CredentialKind.INVALID, value="", problem=problem)


def parse(scanned: str | bytes, id_patterns: Iterable[re.Pattern[str] | str] = ()) -> Credential:
    """Parse one scanned text. Never raises: anything unusable is an INVALID credential with a reason."""
    if isinstance(scanned, (bytes, bytearray, memoryview)):
        try:
            text = bytes(scanned).decode("utf-8")
        except UnicodeDecodeError:
            return _invalid(bytes(scanned).decode("utf-8", "replace"), "the code is not valid UTF-8 text")
    else:
        text = scanned
        # isascii() reads a flag of the string (O(1)): only other text can hold a surrogate
        if not text.isascii() and _SURROGATE.search(text):
            return _invalid(text.encode("utf-8", "replace").decode("utf-8"), "the code is not valid UTF-8 text")
    body = text.rstrip(_TRAILING).strip()
    if not body:
        return _invalid(text, "the code is empty")
    if len(body) > MAX_LEN:
        return _invalid(text, f"the code is longer than {MAX_LEN} characters")
    # printable ASCII (a card URL, an id) holds no control character; isprintable() is one C loop
    if not (body.isascii() and body.isprintable()) and (
            _CONTROL.search(body) or "\n" in body or "\r" in body or "\t" in body):
        return _invalid(text, "the code contains control characters")
    if passes.looks_like_pass(body):  # signed member passes: decoded in kiosk/passes.py
        return passes.credential(body)
    for pattern in id_patterns:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        match = compiled.search(body)
        if match and match.group(1):
            inner = _classify(match.group(1).strip(), body)
            if inner is not None:
                return inner
    result = _classify(body, body)
    return result if result is not None else Credential(raw=body, kind=CredentialKind.CARD_CODE, value=body)


def _classify(candidate: str, raw: str) -> Credential | None:
    bare = _BARE_UUID.fullmatch(candidate)
    if bare:
        return _credential(raw=raw, kind=CredentialKind.CARD_UUID, value=bare.group(1).lower())
    if _CUSTOMER_ID.fullmatch(candidate):
        return _credential(raw=raw, kind=CredentialKind.CUSTOMER_ID, value=candidate.upper())
    if "://" in candidate or candidate.lower().startswith(("www.", "urn:")):
        found = _uuid_in_url(candidate)
        if found:
            return _credential(raw=raw, kind=CredentialKind.CARD_UUID, value=found)
    return None


def _uuid_in_url(url: str) -> str | None:
    """ID cards print a URL such as https://venue.example/card/<uuid> or ...?card=<uuid>."""
    plain = _PLAIN_URL.match(url)
    if plain and "%" not in url:
        # Nothing to unquote, and a UUID cannot span a ? or #: the first one after the host is the one
        # urlsplit's path, query and fragment would give, without splitting (every card URL is new to its cache).
        match = _UUID.search(url, plain.end())
        return match.group(0).lower() if match else None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    for piece in (unquote(parts.path), unquote(parts.query), unquote(parts.fragment)):
        match = _UUID.search(piece)
        if match:
            return match.group(0).lower()
    return None


def customer_key(customer_id: str) -> str:
    """The key a customer id is stored and looked up under (ids match case-insensitively)."""
    return customer_id.strip().upper()


def card_key(code: str) -> str:
    """Card UUIDs match in any case; other card codes match exactly after trimming."""
    code = code.strip()
    bare = _BARE_UUID.fullmatch(code)
    if bare:
        return bare.group(1).lower()
    found = _uuid_in_url(code) if "://" in code else None
    return found or code
