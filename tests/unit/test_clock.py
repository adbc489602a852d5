"""Periodic checks fall due on a grid, so that those of one daemon share its wake-ups."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from supervisor.machine.clock import on_grid


@given(now=st.floats(0, 1e7), interval=st.floats(0.01, 3600))
def test_the_next_check_lands_on_a_multiple_half_to_one_and_a_half_intervals_away(now: float, interval: float) -> None:
    """Never sooner than half an interval (no burst after a slow check), never later than 1.5."""
    delay = on_grid(now, interval)
    assert interval / 2 - 1e-6 <= delay <= 1.5 * interval + 1e-6
    landed = (now + delay) / interval
    assert math.isclose(landed, round(landed), abs_tol=1e-6 * max(1.0, landed))


def test_checks_that_ended_at_different_times_fall_due_together() -> None:
    """A probe that took 3 ms and one that took 40 ms, both every 2 s, wake the loop once."""
    assert 1000.003 + on_grid(1000.003, 2.0) == 1000.040 + on_grid(1000.040, 2.0) == 1002.0
    # and every 5 s check meets them every 10 s
    assert 1004.9 + on_grid(1004.9, 5.0) == 1010.0 == 1008.01 + on_grid(1008.01, 2.0)


def test_no_interval_means_now() -> None:
    assert on_grid(5.0, 0.0) == 0.0
