"""Monotonic time that also schedules, injected so that runners and tests never read the wall clock.

Like Twisted's reactor: the clock tells time and calls back later. Runners take both from here,
so a unit test drives them with ``FakeClock.advance`` and no real time passes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol


def on_grid(now: float, interval_s: float) -> float:
    """Return the delay from ``now`` to the next multiple of ``interval_s``, between 0.5 and 1.5 intervals.

    Periodic checks wait this way, not ``interval_s`` from whenever the last one ended, so that
    the checks of one daemon that share an interval, or whose intervals divide each other, fall
    due in the same turn of the loop: one wake-up for all of them. A wake-up costs this kind of
    virtual machine 140-210 us of CPU however little it does, and the checks themselves less.
    """
    if interval_s <= 0:
        return 0.0
    delay = interval_s - (now % interval_s)
    return delay + interval_s if delay < interval_s / 2 else delay


class Handle(Protocol):
    """A scheduled call that can be cancelled."""

    def cancel(self) -> None:
        """Forget the call."""
        ...


class Clock(Protocol):
    """Something that tells monotonic seconds."""

    def now(self) -> float:
        """Return monotonic seconds."""
        ...


class Scheduler(Clock, Protocol):
    """A clock that also calls back after a delay."""

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Handle:
        """Call ``fn(*args)`` after ``delay_s`` seconds."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic``, and the running loop's timers."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def now(self) -> float:
        """Return monotonic seconds."""
        return time.monotonic()

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Handle:
        """Call ``fn(*args)`` after ``delay_s`` seconds, from the event loop."""
        loop = self._loop or asyncio.get_running_loop()
        return loop.call_later(delay_s, fn, *args)


class _FakeHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when a test says so, running what falls due on the way."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._due: list[tuple[float, int, _FakeHandle, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """Return the fake instant."""
        return self._now

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Handle:
        """Remember ``fn(*args)`` for ``now + delay_s``."""
        handle = _FakeHandle()
        heapq.heappush(self._due, (self._now + max(0.0, delay_s), next(self._seq), handle, fn, args))
        return handle

    def pending(self) -> int:
        """Return how many calls are scheduled and not cancelled."""
        return sum(1 for _, _, h, _, _ in self._due if not h.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, calling what falls due in order, each at its own instant."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        until = self._now + seconds
        while self._due and self._due[0][0] <= until:
            at, _, handle, fn, args = heapq.heappop(self._due)
            if handle.cancelled:
                continue
            self._now = max(self._now, at)
            fn(*args)
        self._now = until
