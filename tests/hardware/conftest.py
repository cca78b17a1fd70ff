"""Fixtures for the adapters: a real Gate on the demo snapshot and journal (see tests/conftest.py)."""

from __future__ import annotations

import pytest

from kiosk.gate import Gate
from kiosk.ports import Faults
from kiosk.rules import Policy


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def gate(snapshot, journal, clock, faults) -> Gate:
    return Gate(gate_id="test-gate", snapshot=snapshot, journal=journal, policy=Policy(), clock=clock, faults=faults)
