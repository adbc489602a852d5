"""Paced gating passes: a long pass yields to the loop, the next goes on from there, and waits as long as it took."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from supervisor.engine.pacing import MIN_GAP_S, SLICE_S, Pace


def _busy(seconds: float) -> None:
    """Hold the CPU as a spawn does: the pass's own cost, not a wait for something else."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Passes:
    """A daemon's gating in miniature: each pass calls ``fn`` on the items, sliced, and records what it did."""

    def __init__(self, items: list[int], fn: Callable[[int], None]) -> None:
        self.items = items
        self.fn = fn
        self.pace = Pace(asyncio.get_running_loop(), self.run)
        self.done: list[list[int]] = []  # the items of each pass
        self.rounds = 0

    def run(self) -> None:
        """One sliced pass."""
        self.done.append([])
        with self.pace:
            if self.pace.each(self.items, lambda i: (self.done[-1].append(i), self.fn(i)), sliced=True):
                self.rounds += 1


def test_a_sliced_pass_stops_after_its_slice_and_a_whole_round_wakes_those_waiting() -> None:
    """Items of 5 ms: a pass does about SLICE_S of them; complete() returns once a round reached the last."""

    async def main() -> None:
        p = Passes(list(range(20)), lambda i: _busy(0.005))
        waiting = asyncio.ensure_future(p.pace.complete())
        deadline = time.perf_counter() + 5
        while not p.done and time.perf_counter() < deadline:
            await asyncio.sleep(0)  # the first pass runs on one of the next turns
        assert 1 <= len(p.done[0]) <= SLICE_S / 0.005 + 1, p.done
        assert not waiting.done()  # a partial round wakes nobody
        await asyncio.wait_for(waiting, 5)
        assert len(p.done) >= 2 and sorted(i for one in p.done for i in one) == list(range(20)), p.done

    asyncio.run(main())


def test_each_pass_goes_on_where_the_last_stopped_so_costly_units_cannot_starve_the_ones_after() -> None:
    """Every item costs 1 ms each time (a dependant of 1,000 instances): the round still reaches the last.

    Begun again from the first item, every pass stopped near item 20 and the rest were never gated.
    """

    async def main() -> None:
        p = Passes(list(range(100)), lambda i: _busy(0.001))
        await asyncio.wait_for(p.pace.complete(), 10)
        assert p.rounds >= 1 and p.done[-1][-1] == 99, p.done
        assert [one[0] for one in p.done[1:]] == [one[-1] + 1 for one in p.done[:-1]], p.done  # each on from the last

    asyncio.run(main())


def test_a_change_during_a_round_brings_a_whole_round_after_it() -> None:
    """Asked for after the round's first pass: the items that pass did are done again in a new round."""

    async def main() -> None:
        p = Passes(list(range(40)), lambda i: _busy(0.002))
        await asyncio.wait_for(p.pace.complete(), 10)  # a round, and nothing more to do
        rounds = p.rounds
        passes = len(p.done)
        p.pace.ask()
        deadline = time.perf_counter() + 5
        while len(p.done) == passes and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        assert p.done[passes][0] == 0 and p.done[passes][-1] < 39, p.done[passes:]  # a new round, cut short
        p.pace.ask()  # during that round: the ones its first pass did may have changed too
        deadline = time.perf_counter() + 10
        while p.rounds < rounds + 2 and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        assert p.rounds == rounds + 2, p.done[passes:]
        last_round = [i for one in p.done[passes:] for i in one][40:]
        assert sorted(last_round) == list(range(40)), p.done[passes:]

    asyncio.run(main())


def test_complete_asks_for_a_round_itself_and_release_wakes_it_when_none_will_come() -> None:
    """Nothing else changes: complete() still returns; a daemon that stops releases those waiting."""

    async def main() -> None:
        p = Passes([1, 2, 3], lambda i: None)
        await asyncio.wait_for(p.pace.complete(), 5)
        await asyncio.wait_for(p.pace.complete(), 5)
        assert p.rounds == 2
        stopping = Pace(asyncio.get_running_loop(), lambda: stopping.release())
        await asyncio.wait_for(stopping.complete(), 5)

    asyncio.run(main())


def test_after_a_long_pass_the_next_is_scheduled_that_much_later_and_after_a_short_one_at_once() -> None:
    """cost_s over MIN_GAP_S: the next pass comes about the cost later; after a microsecond pass: the next turn."""

    async def main() -> None:
        ran: list[float] = []
        pace = Pace(asyncio.get_running_loop(), lambda: ran.append(time.perf_counter()))
        with pace:
            pass  # a short pass
        pace.ask()
        await asyncio.sleep(0)
        assert len(ran) == 1  # the very next turn
        with pace:
            _busy(0.03)
        asked = time.perf_counter()
        pace.ask()
        await asyncio.sleep(0)
        assert len(ran) == 1  # not on the next turn
        deadline = time.perf_counter() + 5
        while len(ran) == 1 and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        assert len(ran) == 2 and ran[1] - asked >= 0.03 - MIN_GAP_S - 0.005

    asyncio.run(main())


def test_on_a_fake_clock_no_pass_is_sliced_or_spaced_however_long_it_takes() -> None:
    """The in-process harness's clock never moves within a pass: a slow machine changes nothing there."""

    async def main() -> None:
        ran: list[int] = []
        pace = Pace(asyncio.get_running_loop(), lambda: ran.append(1), now=lambda: 1000.0)
        with pace:
            assert pace.each(list(range(10)), lambda i: _busy(0.005), sliced=True)  # 50 ms: whole
        pace.ask()
        await asyncio.sleep(0)
        assert ran == [1]  # on the next turn, not later

    asyncio.run(main())
