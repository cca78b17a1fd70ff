"""The venue's messages: topics, the versioned JSON payloads, and the checks every peer message passes.

A peer's message is input like a scan: size-capped before it is parsed, every field typed and
bounded, anything else dropped. docs/venue.md documents the payloads.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

VERSION = 1
MAX_MESSAGE_BYTES = 4096  # an event is ~300 bytes; a heartbeat with a few faults well under 2 KiB
DIRECTIONS = ("in", "out", "none")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")


class BadMessage(ValueError):
    """A peer's message that fails the checks; `kind` groups them for the log (logged once per kind)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def disconnect(client: mqtt.Client) -> None:
    """Disconnect and stop paho's network thread. After a disconnect that thread ends by itself and clears
    paho's handle on it, which can fall between loop_stop's check and its join (paho 2.x): then it has ended."""
    client.disconnect()
    try:
        client.loop_stop()
    except AttributeError:
        pass


def root(venue: str) -> str:
    return f"kiosk/{venue}/gate"


def topic(venue: str, gate: str, kind: str) -> str:
    """kind: event | status | heartbeat | want | open."""
    return f"{root(venue)}/{gate}/{kind}"


def split_topic(venue: str, name: str) -> tuple[str, str] | None:
    """(gate, kind) of a topic under this venue's root, or None."""
    head = root(venue) + "/"
    if not name.startswith(head):
        return None
    parts = name[len(head):].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 and parts[0] else None


def event_payload(row: dict[str, Any], *, prev: int, zone: str, direction: str) -> bytes:
    """One journal event as published: compact keys, only what the peers' counts and the fleet need."""
    body = {"v": VERSION, "id": row["id"], "seq": row["seq"], "prev": prev, "gate": row["gate"], "zone": zone,
            "dir": direction, "at": row["at"], "verdict": row["verdict"], "source": row["source"],
            "customer": row["customer_id"], "card": row["credential"] or None, "passed": row["passed"]}
    if row.get("value"):
        body["value"] = row["value"]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


Payload = bytes | bytearray  # what paho hands over


def _load(payload: Payload) -> dict[str, Any]:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise BadMessage("oversized", f"{len(payload)} bytes, more than {MAX_MESSAGE_BYTES}")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: [[[[... past the stack
        raise BadMessage("not_json", str(exc)[:100]) from None
    if not isinstance(body, dict):
        raise BadMessage("malformed", "not a JSON object")
    if body.get("v") != VERSION:
        raise BadMessage("version", f"version {str(body.get('v'))[:20]!r}, this kiosk reads {VERSION}")
    return body


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise BadMessage("malformed", f"{key} must be printable text of 1 to {limit} characters")
    return value


def _maybe_text(body: dict[str, Any], key: str, limit: int) -> str | None:
    return None if body.get(key) is None else _text(body, key, limit)


def _count(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise BadMessage("malformed", f"{key} must be a whole number >= 0")
    return value


def _time(body: dict[str, Any], key: str) -> str:
    text = _text(body, key, 40)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadMessage("malformed", f"{key} must be an ISO time") from None
    if moment.tzinfo is None:
        raise BadMessage("malformed", f"{key} must carry its UTC offset")
    return text


def _maybe_time(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _time(body, key)


def parse_event(payload: Payload, gate: str) -> dict[str, Any]:
    """A peer's event, checked; raises BadMessage. `gate` is the topic's gate: a peer speaks only for itself."""
    body = _load(payload)
    event_id, seq, prev = _text(body, "id", 64), _count(body, "seq"), _count(body, "prev")
    sender, zone, direction, at = _text(body, "gate", 64), _text(body, "zone", 64), body.get("dir"), _time(body, "at")
    verdict, source, passed = _text(body, "verdict", 40), _text(body, "source", 40), body.get("passed")
    if sender != gate:
        raise BadMessage("malformed", "the event's gate is not the topic's gate")
    if prev >= seq:
        raise BadMessage("malformed", "prev must be below seq")
    if direction not in DIRECTIONS:
        raise BadMessage("malformed", f"dir must be one of {', '.join(DIRECTIONS)}")
    if not _CODE.fullmatch(verdict) or not _CODE.fullmatch(source):
        raise BadMessage("malformed", "verdict and source must be lower-case codes")
    if passed not in (None, True, False):
        raise BadMessage("malformed", "passed must be true, false or null")
    return {"id": event_id, "seq": seq, "prev": prev, "gate": sender, "zone": zone, "dir": direction, "at": at,
            "verdict": verdict, "source": source, "customer": _maybe_text(body, "customer", 200),
            "card": _maybe_text(body, "card", 500), "passed": passed, "value": _maybe_text(body, "value", 20)}


def parse_heartbeat(payload: Payload, gate: str) -> dict[str, Any]:
    """A peer's retained heartbeat: only the fields the fleet view shows, each bounded."""
    body = _load(payload)
    faults = body.get("faults") or {}
    occupancy = body.get("occupancy") or {}
    if not isinstance(faults, dict) or len(faults) > 20 or not isinstance(occupancy, dict) or len(occupancy) > 20:
        raise BadMessage("malformed", "faults and occupancy must be small objects")
    shown_faults: dict[str, str] = {}
    shown_occupancy: dict[str, int] = {}
    beat: dict[str, Any] = {
        "gate": gate, "online": body.get("online") is True, "at": _time(body, "at"),
        "zone": _text(body, "zone", 64), "dir": body.get("dir") if body.get("dir") in DIRECTIONS else "none",
        "snapshot_age_s": body.get("snapshot_age_s") if isinstance(body.get("snapshot_age_s"), int) else None,
        "unreported": _count(body, "unreported"), "last_seq": _count(body, "last_seq"),
        "last_scan_at": _maybe_time(body, "last_scan_at"),
        "faults": shown_faults, "occupancy": shown_occupancy,
    }
    for name, text in faults.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise BadMessage("malformed", "faults must map names to texts")
        shown_faults[name[:40]] = text[:200]
    for zone, inside in occupancy.items():
        if not isinstance(zone, str) or not isinstance(inside, int) or isinstance(inside, bool) or inside < 0:
            raise BadMessage("malformed", "occupancy must map zones to whole numbers")
        shown_occupancy[zone[:64]] = inside
    return beat


def parse_status(payload: Payload) -> bool:
    """The retained online/offline status (also the last will): True when online."""
    body = _load(payload)
    if body.get("state") not in ("online", "offline"):
        raise BadMessage("malformed", "state must be online or offline")
    return body["state"] == "online"


def status_payload(online: bool, at: str) -> bytes:
    return json.dumps({"v": VERSION, "state": "online" if online else "offline", "at": at},
                      separators=(",", ":")).encode()


def parse_want(payload: Payload) -> tuple[str, int]:
    """A peer asks for our events after its cursor: (peer gate, cursor)."""
    body = _load(payload)
    return _text(body, "from", 64), _count(body, "after")


def want_payload(gate: str, after: int) -> bytes:
    return json.dumps({"v": VERSION, "from": gate, "after": after}, separators=(",", ":")).encode()


def parse_open(payload: Payload) -> str:
    """A remote "open once": who asked (shown in the journal's reason)."""
    body = _load(payload)
    return _text(body, "by", 64)
