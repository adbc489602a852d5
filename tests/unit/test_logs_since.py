"""``logs --since`` reads what docker compose and journalctl take, and keeps the last N of each unit since then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supervisor.client.logs import BadSince, last_per_unit, parse_since

NOW = datetime(2026, 12, 4, 12, 0, 0).timestamp()  # local noon


@pytest.mark.parametrize(
    ("value", "ago_s"),
    [("10m", 600), ("90s", 90), ("1h30m", 5400), ("-2h", 7200), ("2d", 172800), ("500ms", 0.5), ("1.5h", 5400)],
)
def test_durations_count_back_from_now(value: str, ago_s: float) -> None:
    """A duration, Go-style and compound, with journalctl's optional minus: that long before now."""
    assert parse_since(value, NOW) == pytest.approx(NOW - ago_s)


@pytest.mark.parametrize(
    ("value", "when"),
    [
        ("2026-12-04T10:00:00", datetime(2026, 12, 4, 10, 0, 0).timestamp()),
        ("2026-12-04 10:00", datetime(2026, 12, 4, 10, 0, 0).timestamp()),
        ("2026-12-04T10:00:00Z", datetime(2026, 12, 4, 10, tzinfo=UTC).timestamp()),
        ("2026-12-04T10:00:00+01:00", datetime(2026, 12, 4, 9, tzinfo=UTC).timestamp()),
        ("2026-12-04T10:00:00.250", datetime(2026, 12, 4, 10, 0, 0, 250000).timestamp()),
        ("2026-12-04", datetime(2026, 12, 4).timestamp()),
        ("10:30", datetime(2026, 12, 4, 10, 30).timestamp()),
        ("today", datetime(2026, 12, 4).timestamp()),
        ("yesterday", (datetime(2026, 12, 4) - timedelta(days=1)).timestamp()),
        ("1764842400", 1764842400.0),
    ],
)
def test_times_are_local_without_a_zone(value: str, when: float) -> None:
    """An ISO time (T or space, fractions, Z or an offset), a time of day, today, yesterday, Unix seconds."""
    assert parse_since(value, NOW) == pytest.approx(when)


@pytest.mark.parametrize("value", ["", "10x", "ten minutes", "2026-13-04", "10m5", "m"])
def test_anything_else_says_what_it_takes(value: str) -> None:
    """A value of no accepted form is refused with the forms it could take."""
    with pytest.raises(BadSince, match="1h30m"):
        parse_since(value, NOW)


def test_the_last_n_of_each_unit_since_the_cut() -> None:
    """Rows before the cut go; of the rest, each unit keeps its last N, in the merged order."""
    rows = [{"unit": u, "time": t, "line": f"{u}{t}"} for t, u in [(1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "a")]]
    assert [r["line"] for r in last_per_unit(rows, 2, 100)] == ["b2", "a3", "b4", "a5"]
    assert [r["line"] for r in last_per_unit(rows, 2, 1)] == ["b4", "a5"]
    assert last_per_unit(rows, 9, 5) == []
