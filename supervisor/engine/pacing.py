"""Rounds of a pass over every unit, run soon after they are asked for, sliced and spaced by their cost.

The daemon's gating pass costs time in proportion to its units. Asked for after each change,
with hundreds of programs changing state within a second (``scale web 1000``), one pass per
change is quadratic: seconds of a busy loop. A pass that took more than ``MIN_GAP_S`` makes the
next wait as long as it took, so the loop spends at most about half its time on passes and each
pass takes in every change since the last. A short pass (a few programs: microseconds) changes
nothing: the next one runs on the loop's next turn, as before.

A pass that starts hundreds of programs would still hold the loop for as long as their spawns
take (a second for 1,000): a sliced pass stops after ``SLICE_S``, and the next goes on from the
unit after the last one it did. A round is the passes from the first unit to the last. Going on,
not over again from the first: a unit whose own gate costs (a dependant of 1,000 instances walks
them all) would otherwise stop every pass at the same place, and the units after it would wait
for ever. A change asked for during a round is taken in by a whole new round after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

MIN_GAP_S = 0.001
SLICE_S = 0.02  # a sliced pass yields to the loop after this long: /healthz waits at most about that


class Pace:
    """Runs ``run`` (one pass: ``with pace: pace.each(...)``) when asked, and again until a round ends."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, run: Callable[[], None], now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.loop = loop
        self.run = run
        # The daemon's clock: a test's fake one never moves within a pass, so nothing is sliced or
        # spaced there, whatever the machine's load (the harness stays deterministic).
        self.now = now
        self.cost_s = 0.0  # how long the last pass took
        self._started = 0.0
        self._ended = 0.0
        self._inside = False  # a pass is running: scheduling waits for its cost (__exit__)
        self._scheduled = False
        self._again = False  # asked for since the round under way began: another round follows
        self._resume: object | None = None  # the unit the next pass of the round under way starts at
        self._waiters: list[asyncio.Future[None]] = []  # for a round that begins after them
        self._round: list[asyncio.Future[None]] = []  # for the round under way

    async def complete(self) -> None:
        """Return once a round has gone over every item: one that begins after this call (asked for here)."""
        fut = self.loop.create_future()
        self._waiters.append(fut)
        self.ask()
        await fut

    def release(self) -> None:
        """Wake every ``complete()``: no round will come (the daemon stops)."""
        waiters, self._waiters, self._round = self._waiters + self._round, [], []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def ask(self) -> None:
        """Something changed: a round that begins after now is run soon."""
        self._again = True
        self._schedule()

    def _schedule(self) -> None:
        """Run a pass on the loop's next turn, or once as long as the last pass took has passed since it ended."""
        if self._scheduled or self._inside:  # inside a pass: __exit__ schedules, knowing its cost
            return
        self._scheduled = True
        wait = self.cost_s - (self.now() - self._ended)
        if wait > MIN_GAP_S:
            self.loop.call_later(wait, self._run)
        else:
            self.loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.run()

    def each(self, items: Sequence[T], fn: Callable[[T], None], sliced: bool) -> bool:
        """``fn`` on each item; when ``sliced``, stop once ``SLICE_S`` has passed. Whether a round ended."""
        start = 0
        if sliced and self._resume is not None:  # a round under way: on from where its last pass stopped
            start = next((i for i, item in enumerate(items) if item is self._resume), 0)  # gone: over again
        if start == 0:  # a round begins: it takes in every change and waiter until now
            self._again, self._resume = False, None
            self._round += self._waiters
            self._waiters = []
        deadline = self.now() + SLICE_S
        for i in range(start, len(items)):
            fn(items[i])
            if sliced and i + 1 < len(items) and self.now() > deadline:
                self._resume = items[i + 1]
                return False
        self._resume = None
        waiters, self._round = self._round, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return True

    def __enter__(self) -> Pace:
        self._inside = True
        self._started = self.now()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._ended = self.now()
        self.cost_s = self._ended - self._started
        self._inside = False
        if self._resume is not None or self._again:  # the round goes on, or a change came since it began
            self._schedule()
