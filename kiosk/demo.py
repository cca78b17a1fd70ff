"""The demo snapshot: one of every case a gate meets, for `--simulate`, screenshots and tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .access import AccessRules, parse_hours
from .counts import OCCUPANCY_SET, Counts
from .model import Verdict
from .snapshot import LoadResult, load_records

JANE_CARD = "0b6f3f0e-6a4e-4c59-9d8e-3f6b1f2d9a10"
PIET_VIP = "5d0c2a8e-1f7b-4c3e-8a9d-2b6e4f1a7c35"
REVOKED_CARD = "9a7e3c1d-4b2f-4e8a-b6c5-1d3f5a7e9b20"
UNASSIGNED_CARD = "c3e5a7b9-2d4f-4a6c-8e0b-7f9a1c3e5d42"
PUNCH_CARD = "e7b1d3f5-6a8c-4e0a-9b2d-4f6a8c0e2b64"  # a 10-visit card, every visit used


def records(today: date) -> list[dict[str, Any]]:
    expired_on = today - timedelta(days=40)
    return [
        {"type": "group", "id": "members", "name": "Members", "scannable": True},
        {"type": "group", "id": "patrons", "name": "Patrons", "scannable": True},
        {"type": "group", "id": "newsletter", "name": "Newsletter", "scannable": False},
        {"type": "customer", "id": "I-1001", "kind": "individual", "first_name": "Jane", "last_name": "Smith",
         "active": True, "groups": ["members", "newsletter"], "valid_until": (today + timedelta(days=365)).isoformat(),
         "email": "jane.smith@example.org", "postcode": "1012 AB"},
        {"type": "customer", "id": "I-1002", "kind": "individual", "first_name": "Pieter", "last_name": "de Vries",
         "active": True, "groups": ["members", "patrons"], "email": "pieter@example.nl", "postcode": "3511 LN"},
        {"type": "customer", "id": "I-1003", "kind": "individual", "first_name": "Bob", "last_name": "Jones",
         "active": True, "groups": ["newsletter"], "email": "bob@example.com", "postcode": "SW1A 1AA"},
        {"type": "customer", "id": "I-1004", "kind": "individual", "first_name": "Ann", "last_name": "Lee",
         "active": False, "groups": ["members"], "email": "ann@example.com"},
        {"type": "customer", "id": "I-1005", "kind": "individual", "first_name": "Carlos", "last_name": "Mendes",
         "active": True, "groups": ["members"], "valid_until": expired_on.isoformat()},
        {"type": "customer", "id": "O-2001", "kind": "organisation", "name": "Acme Ltd", "active": True,
         "groups": ["members"], "email": "office@acme.example"},
        {"type": "card", "code": JANE_CARD, "customer_id": "I-1001", "card_type": "ID", "revoked": False,
         "batch": "2026 members"},
        {"type": "card", "code": PIET_VIP, "customer_id": "I-1002", "card_type": "VIP", "revoked": False,
         "batch": "2026 patrons"},
        {"type": "card", "code": REVOKED_CARD, "customer_id": "I-1001", "card_type": "ID", "revoked": True,
         "batch": "2025 members"},
        {"type": "card", "code": UNASSIGNED_CARD, "customer_id": None, "card_type": "GIFT", "revoked": False,
         "batch": "2026 gift"},
    ]


# What the simulated camera shows, in turn: one of each verdict and a few ways of writing them.
SCANS = [
    "I-1001",  # admit
    f"https://members.example.org/card/{JANE_CARD}",  # admit, via the ID card's URL... then repeat
    "I-1003",  # not_in_group
    "i-1004",  # inactive (case-insensitive id)
    "I-1005",  # expired
    "O-2001",  # admit, organisation
    REVOKED_CARD.upper(),  # card_revoked
    UNASSIGNED_CARD,  # card_unassigned
    PIET_VIP,  # admit, VIP card
    "HELLO-WORLD",  # not_recognised
]


# With access rules on (config/demo.toml): an alumna outside her hours and a used-up punch card.
def rule_records(now: datetime) -> list[dict[str, Any]]:
    return [
        {"type": "group", "id": "alumni", "name": "Alumni", "scannable": True},
        {"type": "customer", "id": "I-1006", "kind": "individual", "first_name": "Eva", "last_name": "Visser",
         "active": True, "groups": ["alumni"], "email": "eva@example.nl"},
        {"type": "card", "code": PUNCH_CARD, "customer_id": "I-1002", "card_type": "PUNCH", "revoked": False,
         "batch": "10-visit cards", "entries": 0, "entries_at": now.isoformat(timespec="seconds")},
    ]


RULE_SCANS = ["I-1006", PUNCH_CARD]  # outside_hours, limit_reached; capacity 2 makes PIET_VIP `full`


def seed(path: Path, now: datetime, *, rules: bool = False) -> LoadResult:
    """Write the demo snapshot to `path`, synced `now`; `rules`: with the records the access rules demo needs."""
    extra = rule_records(now) if rules else []
    return load_records(path, records(now.date()) + extra, {"cursor": "demo-1", "source": "demo",
                                                             "synced_at": now.isoformat(timespec="seconds")},
                        mode="full")


def rule_cases(now: datetime) -> dict[Verdict, tuple[str, AccessRules, Counts]]:
    """For screenshots: a scan, rules and counts that lead to each access rule verdict at `now`."""
    opens = now.astimezone(timezone.utc) + timedelta(hours=2)  # kiosk.cli.screen decides these in UTC
    hours = AccessRules(hours=parse_hours([f"alumni: daily {opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"]))
    full = AccessRules(capacity=2)
    inside = AccessRules(passback=True)
    counts = {name: Counts(rules) for name, rules in (("full", full), ("inside", inside))}
    # the zone's count starts again at midnight (UTC here): shortly after it, the events are of today too
    today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    counts["full"].record(at=max(now - timedelta(minutes=5), today), verdict=OCCUPANCY_SET, source="staff",
                          customer_id=None, raw="2")
    counts["inside"].record(at=max(now - timedelta(minutes=20), today), verdict="admit", source="camera",
                            customer_id="I-1001")
    return {Verdict.OUTSIDE_HOURS: ("I-1006", hours, Counts(hours)),
            Verdict.LIMIT_REACHED: (PUNCH_CARD, AccessRules(), Counts(AccessRules())),
            Verdict.FULL: ("O-2001", full, counts["full"]),
            Verdict.ALREADY_INSIDE: ("I-1001", inside, counts["inside"])}
