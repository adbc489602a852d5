"""What the front door hands the server: merged log tails, followed lines, probe histograms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from supervisor.engine import logstream
from supervisor.engine.target import PROBE_BUCKETS, NotFound, ProbeLatencies
from supervisor.engine.units.base import LineBuffer


def buffer(*rows: tuple[float, str]) -> LineBuffer:
    b = LineBuffer(10)
    b.lines.extend((t, "stdout", line) for t, line in rows)
    return b


def test_tail_merges_units_in_time_order_and_names_each_line() -> None:
    """Lines of several units come back merged by time, each with its unit's name."""
    buffers = {"web": buffer((1.0, "a"), (3.0, "c")), "worker": buffer((2.0, "b"))}
    tail = logstream.tail(buffers, [], 10)
    assert tail["units"] == ["web", "worker"]
    assert [(r["unit"], r["line"]) for r in tail["lines"]] == [("web", "a"), ("worker", "b"), ("web", "c")]
    assert [r["line"] for r in logstream.tail(buffers, ["web"], 1)["lines"]] == ["c"]


def test_tail_of_an_unknown_unit_is_not_found() -> None:
    """An unknown name is refused with the units that do have output."""
    with pytest.raises(NotFound, match=r"no program or job named ghost \(units with output: web\)"):
        logstream.tail({"web": buffer()}, ["web", "ghost"], 10)


def test_following_yields_new_lines_and_closing_lets_the_buffer_go() -> None:
    """A follower sees lines added after it began, and closing it removes it from the buffer."""

    async def scenario() -> None:
        web = buffer((1.0, "old"))
        rows = logstream.follow(lambda: {"web": web}, [])
        first = asyncio.ensure_future(anext(rows))
        await asyncio.wait_for(_until(lambda: bool(web.followers)), 5)
        web.add("stderr", "new")
        row = await asyncio.wait_for(first, 5)
        assert (row["unit"], row["stream"], row["line"]) == ("web", "stderr", "new")
        await rows.aclose()
        assert not web.followers

    asyncio.run(scenario())


async def _until(predicate: Callable[[], bool]) -> None:
    """Give the loop turns until ``predicate`` holds (callers bound it with a deadline)."""
    while not predicate():
        await asyncio.sleep(0)


def test_probe_latencies_count_cumulatively_by_result() -> None:
    """Each probe lands in the first bucket at or above it; buckets are cumulative and end at +inf."""
    probes = ProbeLatencies(now=lambda: 5.0)
    for seconds in (0.001, 0.003, 20.0):
        probes.observe("dependency", "db", seconds, True)
    probes.observe("dependency", "db", 0.2, False)
    ok, fail = sorted(probes.series(), key=lambda s: s["result"], reverse=True)
    assert (ok["result"], fail["result"]) == ("ok", "fail")
    counts = dict(ok["buckets"])
    assert counts[0.001] == 1 and counts[0.0025] == 1 and counts[0.005] == 2 and counts[10.0] == 2
    assert counts[float("inf")] == 3 and ok["sum_s"] == pytest.approx(20.004) and ok["created"] == 5.0
    assert [b for b, _ in fail["buckets"]] == list(PROBE_BUCKETS) and dict(fail["buckets"])[0.25] == 1
