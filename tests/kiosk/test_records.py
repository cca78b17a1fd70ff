"""The one record boundary: caps and printable text for customers, groups and cards from any source."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kiosk import demo
from kiosk.records import (MAX_CODE, MAX_EMAIL, MAX_ID, MAX_ITEMS, MAX_NAME, MAX_POSTCODE, RecordError, check_card,
                           check_customer, check_group)
from kiosk.snapshot import SnapshotStore, load_records

UNSAFE = ["\x00", "\x1b", "\x07", "\x7f", "\x9b", "\u202e", "\u2066", "\ud800", "\n", "\t"]


def customer(**fields) -> dict:
    return {"type": "customer", "id": "I-1", "first_name": "Jane", "last_name": "Smith", **fields}


@pytest.mark.parametrize("char", UNSAFE)
@pytest.mark.parametrize("field", ["first_name", "last_name", "name", "email", "postcode", "photo", "kind"])
def test_a_customer_text_field_with_a_control_or_bidi_character_is_rejected(field, char):
    with pytest.raises(RecordError) as err:
        check_customer(customer(**{field: f"ab{char}c"}))
    message = str(err.value)
    assert repr(field) in message and f"U+{ord(char):04X}" in message and "position 3" in message
    assert message.isprintable()


@pytest.mark.parametrize("char", UNSAFE)
def test_ids_codes_groups_tags_and_batches_are_checked_too(char):
    for bad in (customer(id=f"I-1{char}2"), customer(groups=["members", f"v{char}ip"]), customer(tags=[f"t{char}u"])):
        with pytest.raises(RecordError):
            check_customer(bad)
    for bad_card in ({"code": f"A{char}B"}, {"code": "A", "customer_id": f"I-1{char}2"},
                     {"code": "A", "batch": f"b{char}c"}):
        with pytest.raises(RecordError):
            check_card(bad_card)
    for bad_group in ({"id": f"g{char}h"}, {"id": "g", "name": f"G{char}H"}):
        with pytest.raises(RecordError):
            check_group(bad_group)


@pytest.mark.parametrize("field, cap", [("first_name", MAX_NAME), ("last_name", MAX_NAME), ("name", MAX_NAME),
                                        ("email", MAX_EMAIL), ("postcode", MAX_POSTCODE)])
def test_text_fields_are_capped_at_the_documented_length(field, cap):
    assert check_customer(customer(**{field: "x" * cap}))  # at the cap: fine
    with pytest.raises(RecordError) as err:
        check_customer(customer(**{field: "x" * 100_000}))
    assert "100,000 characters" in str(err.value) and str(cap) in str(err.value)
    assert len(str(err.value)) < 200


def test_id_code_and_list_caps():
    with pytest.raises(RecordError, match="'id'"):
        check_customer(customer(id="I-" + "1" * MAX_ID))
    with pytest.raises(RecordError, match="'code'"):
        check_card({"code": "c" * (MAX_CODE + 1)})
    assert check_card({"code": "c" * MAX_CODE})[1] == "c" * MAX_CODE
    with pytest.raises(RecordError, match=f"at most {MAX_ITEMS}"):
        check_customer(customer(groups=[f"g{i}" for i in range(MAX_ITEMS + 1)]))
    with pytest.raises(RecordError, match="list of strings"):
        check_customer(customer(groups=[["nested"]]))


def test_rejections_quote_a_hostile_value_printable_and_short():
    with pytest.raises(RecordError) as err:
        check_customer(customer(valid_until=["\x1b]0;owned\x07" * 10_000]))
    assert str(err.value).isprintable() and len(str(err.value)) < 200


def test_clean_text_still_passes_unchanged():
    row = check_customer(customer(first_name="  Zoë ", last_name="O'Brien-Ångström", name="", groups=[" members "],
                                  email="zoe@example.org", postcode="1012 AB"))
    assert row[3:6] == ("Zoë", "O'Brien-Ångström", "") and row[7] == '["members"]'


def test_the_demo_passes_the_same_boundary(tmp_path):
    # the demo's records are loaded through check_*: break one and the load refuses it
    records = demo.records(datetime(2026, 11, 22, tzinfo=timezone.utc).date())
    records[3] = {**records[3], "first_name": "Ja\x00ne"}
    with pytest.raises(RecordError, match="U\\+0000"):
        load_records(tmp_path / "s.sqlite", records, {"cursor": "x"})
    assert not SnapshotStore(tmp_path / "s.sqlite").exists()
