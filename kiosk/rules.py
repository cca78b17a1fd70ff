"""The gate's rules: one pure function from (credential, snapshot, policy, now) to a Decision.

Time is passed in, never read here, and so is the memory of recent admits; every rule is
testable without sleeping and is the same online and offline.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Iterable, Mapping, Protocol

from . import access, passes
from .counts import Counts
from .frozen import maker
from .model import Card, Credential, CredentialKind, Customer, Decision, Group, Verdict
from .pass_keys import PassSettings


class SnapshotView(Protocol):
    """What the rules read of a snapshot (SnapshotStore implements it)."""

    def customer(self, customer_id: str) -> Customer | None: ...

    def card(self, code: str) -> Card | None: ...

    def groups(self) -> dict[str, Group]: ...

    def meta(self) -> dict[str, str]: ...

    def pass_keys(self) -> dict[int, bytes]: ...

    def pass_revoked(self, customer_id: str, serial: int) -> bool: ...


@dataclass(frozen=True)
class Policy:
    mode: str = "verify_groups"  # or "any_customer"
    groups: tuple[str, ...] | str = ("members",)  # group ids to verify, or "all"
    repeat_window_s: float = 5.0
    max_snapshot_age_h: float = 72.0
    stale_policy: str = "warn"  # or "deny"
    id_patterns: tuple[re.Pattern[str], ...] = field(default=())
    tz: tzinfo | None = None  # where validity dates are read; None is the system's zone
    passes: PassSettings = field(default_factory=PassSettings)
    access: access.AccessRules = field(default_factory=access.AccessRules)  # [rules]: hours, limits, capacity...

    @classmethod
    def from_config(cls, gate: Any, passes: PassSettings | None = None) -> "Policy":
        from zoneinfo import ZoneInfo

        groups = gate.groups if isinstance(gate.groups, str) else tuple(gate.groups)
        return cls(mode=gate.mode, groups=groups, repeat_window_s=float(gate.repeat_window_s),
                   max_snapshot_age_h=float(gate.max_snapshot_age_h), stale_policy=gate.stale_policy,
                   id_patterns=tuple(re.compile(p) for p in gate.id_patterns),
                   tz=ZoneInfo(gate.timezone) if gate.timezone else None, passes=passes or PassSettings())


_NO_COUNTS = Counts(access.AccessRules())  # nothing counted: every view method answers zero/none


def repeat_key(decision: Decision) -> str:
    """What "the same credential again" means: the same customer, whichever card or code they showed."""
    return decision.customer_id or decision.card_code or decision.credential


def snapshot_age(meta: Mapping[str, str], now: datetime) -> timedelta | None:
    synced = _synced_at(meta.get("synced_at"))
    return None if synced is None else now - synced


@functools.lru_cache(maxsize=8)
def _synced_at(text: object) -> datetime | None:
    """The snapshot's sync time; every scan reads the same few texts, so each is parsed once."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


_decision = maker(Decision)  # the admit on the hot path (see kiosk/frozen.py)


def decide(credential: Credential, snapshot: SnapshotView, policy: Policy, now: datetime,
           recent_admits: Mapping[str, datetime] | None = None, counts: access.CountsView | None = None) -> Decision:
    """The verdict on one credential. `recent_admits` maps repeat keys to the time of their last admit;
    `counts` are the entries, occupancy and punch uses the access rules read (none given: all zero)."""
    counts = _NO_COUNTS if counts is None else counts
    meta = snapshot.meta()
    base: dict[str, Any] = {"at": now, "raw": credential.raw, "credential": credential.value,
                            "cursor": meta.get("cursor", "")}

    if not credential.valid:
        return Decision(Verdict.NOT_RECOGNISED, reason=f"Barcode not recognised: {credential.problem}", **base)
    if credential.kind is CredentialKind.SIGNED_PASS:
        return decide_pass(credential, snapshot, policy, now, recent_admits, meta, base, counts)

    card: Card | None = None
    customer: Customer | None = None
    if credential.kind is CredentialKind.CUSTOMER_ID:
        customer = snapshot.customer(credential.value)
        if customer is None:
            card = snapshot.card(credential.raw)
    else:
        card = snapshot.card(credential.value)
    if card is None and customer is None:
        return Decision(Verdict.NOT_RECOGNISED, reason="Barcode not recognised: no customer or card with this code",
                        **base)

    card_fields: dict[str, Any] = {"card_code": card.code, "card_type": card.card_type} if card else {}
    if card is not None:
        if card.revoked:
            return Decision(Verdict.CARD_REVOKED, customer_id=card.customer_id, reason="Card revoked",
                            **_named(snapshot, card.customer_id), **card_fields, **base)
        if not card.customer_id:
            return Decision(Verdict.CARD_UNASSIGNED, reason="Card not assigned to a customer", **card_fields, **base)
        customer = snapshot.customer(card.customer_id)
        if customer is None:
            return Decision(Verdict.CARD_UNASSIGNED, reason="Card's customer is not in the snapshot",
                            **card_fields, **base)

    assert customer is not None
    return _decide_customer(customer, snapshot, policy, now, recent_admits, meta, {**card_fields, **base}, counts,
                            card)


def _shown(groups: Mapping[str, Group], held: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(groups[g].name for g in held if g in groups and groups[g].scannable)


def _decide_customer(customer: Customer, snapshot: SnapshotView, policy: Policy, now: datetime,
                     recent_admits: Mapping[str, datetime] | None, meta: Mapping[str, str], base: dict,
                     counts: access.CountsView = _NO_COUNTS, card: Card | None = None) -> Decision:
    """The snapshot's word on a customer it knows: active, dates, groups, repeat, staleness."""
    groups = snapshot.groups()
    who: dict[str, Any] = {"customer_id": customer.id, "name": customer.display_name,
                           "groups": _shown(groups, customer.groups), "valid_until": customer.valid_until, **base}

    if not customer.active:
        return Decision(Verdict.INACTIVE, reason="Account inactive", **who)
    today = now.astimezone(policy.tz).date()
    if customer.valid_from and today < customer.valid_from:
        return Decision(Verdict.EXPIRED, reason=f"Membership starts on {_day(customer.valid_from)}", **who)
    if customer.valid_until and today > customer.valid_until:
        return Decision(Verdict.EXPIRED, reason=f"Membership expired on {_day(customer.valid_until)}", **who)
    return _admit_if_in_group(customer.groups, groups, policy, now, recent_admits, meta, who, counts=counts, card=card)


def _admit_if_in_group(held: tuple[str, ...], groups: Mapping[str, Group], policy: Policy, now: datetime,
                       recent_admits: Mapping[str, datetime] | None, meta: Mapping[str, str], who: dict,
                       via: str = "", counts: access.CountsView = _NO_COUNTS, card: Card | None = None) -> Decision:
    """The end of every path: the verified groups, a repeat within the window, the access rules, the snapshot's age."""
    matched: tuple[str, ...] = ()
    matched_ids = held  # the groups whose access rules apply
    if policy.mode == "verify_groups":
        if policy.groups == "all":
            verify = [g for g in groups.values() if g.scannable]
        else:
            verify = [groups.get(g) or Group(g, g) for g in policy.groups]
        hits = [g for g in verify if g.id in held]
        matched, matched_ids = tuple([g.name for g in hits]), tuple([g.id for g in hits])
        if not matched:
            names = ", ".join(g.name for g in verify) or "none"
            return Decision(Verdict.NOT_IN_GROUP, reason=f"Not in the selected group: {names}", **who)

    admitted = _decision(verdict=Verdict.ADMIT, matched_groups=matched,
                         reason=f"Welcome ({via})" if via else "Welcome", **who)
    last = (recent_admits or {}).get(repeat_key(admitted))
    if last is not None and timedelta(0) <= now - last <= timedelta(seconds=policy.repeat_window_s):
        ago = (now - last).total_seconds()
        return Decision(Verdict.REPEAT, matched_groups=matched, repeat_of_s=ago,
                        reason=f"Already admitted {ago:.0f} s ago", **who)

    # -- access rules (kiosk/access.py): the first failing rule names the verdict ------------------
    if policy.access.active or (card is not None and card.entries is not None):
        outcome = access.check(policy.access, customer_id=who["customer_id"], card=card, group_ids=matched_ids,
                               groups=groups, counts=counts, now=now, tz=policy.tz)
        if outcome is not None:
            ruled = Decision(outcome.verdict, matched_groups=matched, reason=outcome.reason, count=outcome.count,
                             limit=outcome.limit, next_at=outcome.next_at, guests=outcome.guests, **who)
            if outcome.verdict is not Verdict.ADMIT:
                return ruled
            admitted = ruled

    age = snapshot_age(meta, now)
    if age is None or age.total_seconds() > policy.max_snapshot_age_h * 3600:
        why = "no sync time recorded" if age is None else f"last synced {age.total_seconds() / 3600:.0f} h ago"
        if policy.stale_policy == "deny":
            return Decision(Verdict.SNAPSHOT_STALE, matched_groups=matched, stale=True,
                            reason=f"Member list out of date ({why}); ask staff", **who)
        return Decision(Verdict.ADMIT, matched_groups=matched, stale=True,
                        reason=f"Welcome ({via + '; ' if via else ''}member list out of date: {why})", **who)
    return admitted


# -- signed passes ----------------------------------------------------------------------------

def pass_code_key(customer: str, serial: int, step: int) -> str:
    """The repeat memory's key for one rotating code: it admits once while it is acceptable."""
    return f"pass-code:{customer}:{serial}:{step}"


def used_pass_codes(admits: Iterable[tuple[str, datetime]], policy: Policy) -> dict[str, datetime]:
    """The rotating codes among journalled admits (scanned text, time): the gate's code memory, rebuilt
    after a restart, so a code admitted just before it cannot admit a second time after it."""
    settings = policy.passes
    used: dict[str, datetime] = {}
    if not settings.rotation_secret:
        return used
    for raw, at in admits:
        if not passes.looks_like_pass(raw):
            continue
        cred = passes.credential(raw)
        p = cred.signed_pass
        if p is None or not p.rotating:
            continue
        step = passes.matching_step(p, settings.rotation_secret, at, settings.accept_steps)
        if step is not None:
            used[pass_code_key(cred.value, p.serial, step)] = at
    return used


def decide_pass(credential: Credential, snapshot: SnapshotView, policy: Policy, now: datetime,
                recent_admits: Mapping[str, datetime] | None, meta: Mapping[str, str], base: dict,
                counts: access.CountsView = _NO_COUNTS) -> Decision:
    """A signed pass: its own checks first (key, signature, revocation, dates, rotating code), then the
    snapshot's word where it knows the customer, else the pass's own groups."""
    p = credential.signed_pass
    assert p is not None
    settings = policy.passes
    # the local config's keys win over the snapshot's for the same key id: the operator chose them
    key = {**snapshot.pass_keys(), **settings.keys}.get(p.key_id)
    if key is None:
        return Decision(Verdict.NOT_RECOGNISED, reason=f"Signed pass from an unknown key (key id {p.key_id})", **base)
    if not passes.verify(p, key):
        return Decision(Verdict.NOT_RECOGNISED, reason="Signed pass with a bad signature", **base)

    customer = snapshot.customer(p.customer_id)
    groups = snapshot.groups()
    who: dict[str, Any]
    if customer is not None:
        who = {"customer_id": customer.id, "name": customer.display_name, "groups": _shown(groups, customer.groups),
               "valid_until": customer.valid_until, **base}
    else:
        # no name without the snapshot: the id stands in, as Customer.display_name does for a nameless customer
        who = {"customer_id": credential.value, "name": credential.value, "groups": _shown(groups, p.groups),
               "valid_until": p.not_after, **base}
    if snapshot.pass_revoked(p.customer_id, p.serial):
        return Decision(Verdict.CARD_REVOKED, reason=f"Pass revoked (serial {p.serial})", **who)
    today = now.astimezone(policy.tz).date()
    if today < p.not_before:
        return Decision(Verdict.EXPIRED, reason=f"Pass valid from {_day(p.not_before)}", **who)
    if today > p.not_after:
        return Decision(Verdict.EXPIRED, reason=f"Pass expired on {_day(p.not_after)}", **who)

    code_key = ""
    if p.rotating and settings.rotation_secret:
        step = passes.matching_step(p, settings.rotation_secret, now, settings.accept_steps)
        if step is None:
            return Decision(Verdict.CODE_EXPIRED, reason="Refresh the pass on your phone", **who)
        code_key = pass_code_key(credential.value, p.serial, step)
        last = (recent_admits or {}).get(code_key)
        if last is not None and timedelta(0) <= now - last <= timedelta(seconds=settings.code_lifetime_s):
            ago = (now - last).total_seconds()
            return Decision(Verdict.REPEAT, repeat_of_s=ago, code_key=code_key,
                            reason=f"This code was used {ago:.0f} s ago; refresh the pass on your phone", **who)

    if customer is not None:
        decision = _decide_customer(customer, snapshot, policy, now, recent_admits, meta, base, counts)
    else:
        decision = _admit_if_in_group(p.groups, groups, policy, now, recent_admits, meta, who, "signed pass", counts)
    return dataclasses.replace(decision, code_key=code_key) if code_key else decision


def _named(snapshot: SnapshotView, customer_id: str | None) -> dict:
    customer = snapshot.customer(customer_id) if customer_id else None
    if customer is None:
        return {}
    return {"name": customer.display_name, "groups": _shown(snapshot.groups(), customer.groups)}


def _day(d: date) -> str:
    return d.strftime("%-d %b %Y")
