"""The snapshot's read path on a card scan (issue 15): a card and its owner in one statement, never stale."""

from __future__ import annotations

from kiosk import demo
from kiosk.snapshot import SnapshotBuilder, SnapshotStore


def traced(store: SnapshotStore) -> list[str]:
    store.meta()  # opens the connection
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    return statements


def test_a_card_and_its_owner_are_one_statement(snapshot):
    statements = traced(snapshot)
    card = snapshot.card(demo.JANE_CARD.upper())
    owner = snapshot.customer(card.customer_id)
    assert owner.id == "I-1001" and owner.display_name
    assert len(statements) == 1 and "JOIN customers" in statements[0]


def test_the_owner_read_with_a_card_answers_once_and_only_for_that_owner(snapshot):
    statements = traced(snapshot)
    card = snapshot.card(demo.JANE_CARD)
    assert snapshot.customer("I-1002") is not None  # another customer: read from the file
    assert snapshot.customer(card.customer_id).id == "I-1001"  # the owner read with the card was dropped
    assert len(statements) == 3


def test_after_its_one_use_the_owner_is_read_afresh_and_sees_a_delta(state_dir, snapshot):
    card = snapshot.card(demo.JANE_CARD)
    assert snapshot.customer(card.customer_id).first_name == "Jane"
    with SnapshotBuilder(state_dir / "snapshot.sqlite", "delta") as delta:
        delta.apply({"type": "customer", "id": "I-1001", "first_name": "Janet", "last_name": "Smith",
                     "groups": ["members"]})
        delta.commit({"cursor": "demo-2"})
    assert snapshot.customer(card.customer_id).first_name == "Janet"


def test_an_unassigned_card_or_a_missing_owner_leaves_nothing_behind(snapshot):
    statements = traced(snapshot)
    assert snapshot.card(demo.UNASSIGNED_CARD).customer_id is None
    assert snapshot.customer("I-404") is None
    assert len(statements) == 2
