"""Reconnect delays: doubling up to a cap, back to the first once the device is back."""

from __future__ import annotations

from hardware.backoff import Backoff


def test_delays_double_up_to_the_maximum_and_reset():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_a_first_delay_above_the_maximum_is_cut_to_it():
    backoff = Backoff(10.0, 2.0)
    assert [backoff.next() for _ in range(2)] == [2.0, 2.0]
