"""Backoff delays, jitter bounds, durations and sizes."""

from __future__ import annotations

import random

import pytest

from supervisor.machine.backoff import Backoff
from supervisor.machine.durations import format_duration, parse_duration, parse_size


def test_sequence_is_exponential_and_capped() -> None:
    """Delay n is min(max, initial * factor^(n-1))."""
    b = Backoff(initial_s=0.5, factor=3, max_s=10, jitter=0)
    assert [b.base_delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10, 10]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    """An attempt counter in the thousands still yields the cap."""
    assert Backoff(initial_s=1, factor=2, max_s=60).base_delay(100_000) == 60


def test_jitter_stays_within_its_spread_and_is_seedable() -> None:
    """Jitter spreads each delay by at most +-jitter, reproducibly for a seed."""
    b = Backoff(initial_s=4, factor=2, max_s=64, jitter=0.25)
    rng = random.Random(42)
    samples = [b.delay(2, rng) for _ in range(2000)]
    assert min(samples) >= 6.0 and max(samples) <= 10.0
    assert max(samples) - min(samples) > 3.0  # it really spreads
    assert [b.delay(3, random.Random(5)) for _ in range(3)] == [b.delay(3, random.Random(5))] * 3


def test_zero_initial_means_immediate() -> None:
    """initial = 0 restarts at once, whatever the jitter."""
    assert Backoff(initial_s=0, jitter=0.5).delay(1, random.Random(1)) == 0


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("2s", 2), ("5m", 300), ("1h", 3600), (3, 3.0), (0.25, 0.25), ("1.5s", 1.5)]
)
def test_durations(text: object, seconds: float) -> None:
    """Durations accept seconds and ms/s/m/h strings."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 days", "-1s", True, None, "1.2.3s"])
def test_bad_durations_are_rejected(bad: object) -> None:
    """Anything else is an error, never a guess."""
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(("text", "size"), [("512MB", 512 * 10**6), ("1GiB", 2**30), ("64k", 64000), (100, 100)])
def test_sizes(text: object, size: int) -> None:
    """Sizes accept decimal and binary units."""
    assert parse_size(text) == size


def test_format_duration() -> None:
    """Operators read compact durations."""
    assert [format_duration(s) for s in (0.25, 4, 192, 7500, 273600)] == ["250ms", "4.0s", "3m12s", "2h05m", "3d04h"]
    assert format_duration(None) == "-"
