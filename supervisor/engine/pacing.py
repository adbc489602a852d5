"""A pass over every unit, run soon after it is asked for, and spaced by its own cost when it is long.

The daemon's gating pass costs time in proportion to its units. Asked for after each change,
with hundreds of programs changing state within a second (``scale web 1000``), one pass per
change is quadratic: seconds of a busy loop. A pass that took more than ``MIN_GAP_S`` makes the
next wait as long as it took, so the loop spends at most about half its time on passes and each
pass takes in every change since the last. A short pass (a few programs: microseconds) changes
nothing: the next one runs on the loop's next turn, as before.

A pass that starts hundreds of programs would still hold the loop for as long as their spawns
take (a second for 1,000): a paced pass stops after ``SLICE_S`` and asks for another, which walks
the units again (those already gated cost microseconds) and goes on where this one stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

MIN_GAP_S = 0.001
SLICE_S = 0.02  # a paced pass yields to the loop after this long: /healthz waits at most about that


class Pace:
    """Measures each pass (``with pace:``) and schedules the next accordingly (``pace.schedule``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.cost_s = 0.0  # how long the last pass took
        self._started = 0.0
        self._ended = 0.0
        self._waiters: list[asyncio.Future[None]] = []

    async def complete(self) -> None:
        """Return once a pass has gone over every item: one that begins after this call."""
        fut = self.loop.create_future()
        self._waiters.append(fut)
        await fut

    def schedule(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop's next turn, or once as long as the last pass took has passed since it ended."""
        wait = self.cost_s - (time.perf_counter() - self._ended)
        if wait > MIN_GAP_S:
            self.loop.call_later(wait, fn)
        else:
            self.loop.call_soon(fn)

    def each(self, items: Iterable[T], fn: Callable[[T], None], sliced: bool) -> bool:
        """``fn`` on each item; when ``sliced``, stop once ``SLICE_S`` has passed. Whether all were done."""
        deadline = time.perf_counter() + SLICE_S
        for item in items:
            fn(item)
            if sliced and time.perf_counter() > deadline:
                return False
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return True

    def __enter__(self) -> Pace:
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._ended = time.perf_counter()
        self.cost_s = self._ended - self._started
