"""The values that flow through the pipeline: credentials, snapshot records and decisions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .passes import Pass


class Verdict(str, enum.Enum):
    """Stable verdict codes; they are part of the journal and the upstream protocol."""

    ADMIT = "admit"
    NOT_IN_GROUP = "not_in_group"
    NOT_RECOGNISED = "not_recognised"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    CARD_REVOKED = "card_revoked"
    CARD_UNASSIGNED = "card_unassigned"
    REPEAT = "repeat"
    SNAPSHOT_STALE = "snapshot_stale"
    CODE_EXPIRED = "code_expired"  # a rotating pass showed a code outside the accepted window
    # access rules (kiosk/access.py)
    OUTSIDE_HOURS = "outside_hours"
    LIMIT_REACHED = "limit_reached"
    FULL = "full"
    ALREADY_INSIDE = "already_inside"

    def __str__(self) -> str:
        return self.value


class CredentialKind(str, enum.Enum):
    CUSTOMER_ID = "customer_id"
    CARD_UUID = "card_uuid"
    CARD_CODE = "card_code"
    INVALID = "invalid"
    SIGNED_PASS = "signed_pass"


@dataclass(frozen=True)
class Credential:
    """What a scanned text means. `value` is the normalised lookup key."""

    raw: str
    kind: CredentialKind
    value: str
    problem: str = ""
    signed_pass: "Pass | None" = None  # the decoded pass, for SIGNED_PASS (its signature not yet checked)

    @property
    def valid(self) -> bool:
        return self.kind is not CredentialKind.INVALID


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    scannable: bool = True


@dataclass(frozen=True)
class Customer:
    id: str
    kind: str  # "individual" | "organisation"
    first_name: str = ""
    last_name: str = ""
    name: str = ""
    active: bool = True
    groups: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None
    email: str = ""
    postcode: str = ""
    photo: str = ""
    tags: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        if self.kind == "organisation" or not (self.first_name or self.last_name):
            return self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or self.id
        return " ".join(p for p in (self.first_name, self.last_name) if p)


CARD_TYPES = ("ID", "VIP", "GIFT", "PUNCH")


@dataclass(frozen=True)
class Card:
    code: str
    customer_id: str | None
    card_type: str = "ID"
    revoked: bool = False
    batch: str = ""
    entries: int | None = None  # a PUNCH card's entries left, as counted upstream at `entries_at`
    entries_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """The verdict on one scan. Outputs carry it out; they never make one."""

    verdict: Verdict
    at: datetime
    raw: str = ""
    credential: str = ""
    customer_id: str | None = None
    name: str = ""
    groups: tuple[str, ...] = ()  # the customer's scannable groups, by name
    matched_groups: tuple[str, ...] = ()  # verified groups the customer is in, by name
    reason: str = ""
    card_code: str | None = None
    card_type: str | None = None
    valid_until: date | None = None
    repeat_of_s: float | None = None  # seconds since the earlier admit, for `repeat`
    stale: bool = False  # admitted on a snapshot older than the limit (stale_policy = "warn")
    cursor: str = ""
    event_id: str = ""  # the journal's id for this decision, set once it is journalled
    source: str = ""
    timings: dict = field(default_factory=dict, compare=False)
    code_key: str = ""  # a rotating pass's code and step: the gate remembers it so the code admits once
    # access rules: entries counted / people inside / punches left, the limit, and when the
    # group may enter next or the limit resets (the screen words these itself)
    count: int | None = None
    limit: int | None = None
    next_at: datetime | None = None
    guests: int = 0  # how many guests this admitted member may bring ("+1 guest")

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMIT
