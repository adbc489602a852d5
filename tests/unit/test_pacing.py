"""Paced gating passes: a long pass yields to the loop, and the next waits as long as it took."""

from __future__ import annotations

import asyncio
import time

from supervisor.engine.pacing import MIN_GAP_S, SLICE_S, Pace


def _busy(seconds: float) -> None:
    """Hold the CPU as a spawn does: the pass's own cost, not a wait for something else."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_sliced_pass_stops_after_its_slice_and_a_whole_one_wakes_those_waiting() -> None:
    """Items of 5 ms: a sliced pass does about SLICE_S of them; complete() waits for a pass over all."""

    async def main() -> None:
        pace = Pace(asyncio.get_running_loop())
        done: list[int] = []
        waiting = asyncio.ensure_future(pace.complete())
        await asyncio.sleep(0)  # the waiter is registered before any pass
        with pace:
            whole = pace.each(range(100), lambda i: (done.append(i), _busy(0.005)), sliced=True)
        assert not whole and 1 <= len(done) <= SLICE_S / 0.005 + 1, len(done)
        assert pace.cost_s >= SLICE_S
        await asyncio.sleep(0)
        assert not waiting.done()  # a partial pass wakes nobody
        assert pace.each(range(100), lambda i: None, sliced=False)
        await asyncio.wait_for(waiting, 1)

    asyncio.run(main())


def test_after_a_long_pass_the_next_is_scheduled_that_much_later_and_after_a_short_one_at_once() -> None:
    """cost_s over MIN_GAP_S: call_later by about the cost; a microsecond pass: the next turn."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pace = Pace(loop)
        ran: list[float] = []
        with pace:
            pass  # a short pass
        pace.schedule(lambda: ran.append(time.perf_counter()))
        await asyncio.sleep(0)
        assert len(ran) == 1  # the very next turn
        with pace:
            _busy(0.03)
        asked = time.perf_counter()
        pace.schedule(lambda: ran.append(time.perf_counter()))
        await asyncio.sleep(0)
        assert len(ran) == 1  # not on the next turn
        deadline = time.perf_counter() + 5
        while len(ran) == 1 and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        assert len(ran) == 2 and ran[1] - asked >= 0.03 - MIN_GAP_S - 0.005

    asyncio.run(main())
