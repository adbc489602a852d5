"""The delay sequence before restart n: ``min(max, initial * factor**(n-1))`` with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from supervisor.machine.record import Record


@dataclass(frozen=True, repr=False, eq=False)
class Backoff(Record):
    """An exponential backoff policy; pure, so tests pass a seeded ``random.Random``."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    jitter: float = 0.1  # +- this fraction of the delay

    def base_delay(self, attempt: int) -> float:
        """Return the delay before attempt ``attempt`` (1-based), without jitter."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        # Cap the exponent first: factor**(n-1) overflows a float long before n gets silly.
        exponent = min(attempt - 1, 1024)
        try:
            raw = self.initial_s * self.factor**exponent
        except OverflowError:
            raw = self.max_s
        return min(self.max_s, raw)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the delay before attempt ``attempt`` with +-``jitter`` spread, never negative."""
        base = self.base_delay(attempt)
        if self.jitter <= 0 or base <= 0:
            return base
        spread = base * self.jitter
        return max(0.0, base + rng.uniform(-spread, spread))
