"""A repeated thing said once per period, with how many times it came since it was last said.

A storm of one signal, or of one loop error, is a line when it begins and then at most a line
per period, each with its count: the log shows the storm without being one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Quiet(Generic[K]):
    """Counts each key; says when to tell about it: the first time, then once per ``period_s``."""

    def __init__(self, period_s: float, clock: Callable[[], float]) -> None:
        self.period_s = period_s
        self.clock = clock
        self.seen: dict[K, int] = {}  # since start, by key
        self._told_at: dict[K, float] = {}
        self._told_count: dict[K, int] = {}

    def count(self, key: K) -> int:
        """Count one ``key``; return how many came since it was last told (to tell now), or 0 (keep quiet)."""
        self.seen[key] = self.seen.get(key, 0) + 1
        now = self.clock()
        last = self._told_at.get(key)
        if last is not None and now - last < self.period_s:
            return 0
        times = self.seen[key] - self._told_count.get(key, 0)
        self._told_at[key], self._told_count[key] = now, self.seen[key]
        return times
