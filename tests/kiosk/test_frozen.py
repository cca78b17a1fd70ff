"""kiosk.frozen.maker: the scan path's quick constructors equal the dataclasses' own."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.frozen import maker
from kiosk.model import Card, Credential, CredentialKind, Customer, Decision, Verdict

texts = st.text(max_size=20)
dates = st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))


def _same(cls, fields):
    built, real = maker(cls)(**fields), cls(**fields)
    assert type(built) is cls
    assert built == real
    assert repr(built) == repr(real)
    assert vars(built) == vars(real)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.__setattr__(dataclasses.fields(cls)[0].name, None)
    return built, real


@given(st.builds(dict, id=texts, kind=st.sampled_from(["individual", "organisation"]), first_name=texts,
                 last_name=texts, active=st.booleans(), groups=st.tuples(texts), valid_from=dates,
                 valid_until=dates, tags=st.tuples(texts, texts)))
def test_customer_and_card(fields):
    built, real = _same(Customer, fields)
    assert hash(built) == hash(real) and built.display_name == real.display_name
    _same(Card, {"code": fields["id"], "customer_id": fields["first_name"] or None, "revoked": fields["active"],
                 "entries_at": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    _same(Credential, {"raw": fields["id"], "kind": CredentialKind.CARD_CODE, "value": fields["last_name"]})


@given(st.sampled_from(list(Verdict)), texts, st.tuples(texts), st.none() | st.integers())
def test_decision_defaults_and_factories(verdict, reason, groups, count):
    at = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    built, real = _same(Decision, {"verdict": verdict, "at": at, "reason": reason, "groups": groups, "count": count})
    other = maker(Decision)(verdict=verdict, at=at)
    assert built.timings == {} and built.timings is not other.timings  # a fresh dict each, as default_factory gives
    assert built.admitted == real.admitted


def test_missing_or_unknown_fields_raise_like_the_constructor():
    make = maker(Decision)
    with pytest.raises(TypeError):
        Decision(verdict=Verdict.ADMIT)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'at'"):
        make(verdict=Verdict.ADMIT)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nmae'"):
        make(verdict=Verdict.ADMIT, at=datetime.now(timezone.utc), nmae="typo")


def test_refuses_classes_it_cannot_build_safely():
    @dataclasses.dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self):
            if self.n < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        n: int

    @dataclasses.dataclass(frozen=True)
    class Derived:
        n: int
        twice: int = dataclasses.field(init=False, default=0)

    for cls in (Checked, Slotted, Derived, dict):
        with pytest.raises(TypeError):
            maker(cls)
