"""What each program costs, sampled in the background: CPU over the last few seconds, and RSS.

``status`` and ``status --watch`` show both, and ask often; reading every tree from /proc on
each request would make a status of 100 programs several times slower. A pass (one read of
/proc/PID/stat per process of each tree) runs every ``interval_s`` while someone looks (a
status request or a scrape in the last ``LINGER_S``), every ``IDLE_INTERVAL_S`` otherwise, and
a status request reads what the last pass found.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Protocol

from supervisor.engine.units.program_status import Usage
from supervisor.host import proctree
from supervisor.machine.clock import Handle, Scheduler

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
INTERVAL_S = 5.0  # while someone looks (status, --watch, /metrics within LINGER_S)
IDLE_INTERVAL_S = 30.0  # while nobody does: a tenth of a millisecond a second for 100 programs
LINGER_S = 60.0


class Sampled(Protocol):
    """What the sampler needs of a program: its main pid, and where the figures go."""

    usage: Usage | None

    @property
    def main_pid(self) -> int | None:
        """The incarnation whose tree is sampled."""
        ...


class UsageSampler:
    """Samples every program's tree every ``interval_s`` and leaves a ``Usage`` on its runner."""

    def __init__(
        self,
        clock: Scheduler,
        programs: Callable[[], Iterable[Sampled]],
        interval_s: float = INTERVAL_S,
        sample: Callable[[set[int]], dict[int, tuple[int, int]]] = proctree.trees_usage,
    ) -> None:
        self.clock = clock
        self.programs = programs
        self.interval_s = interval_s
        self.sample = sample
        self._last: dict[int, tuple[int, float]] = {}  # pid -> (ticks, when)
        self._handle: Handle | None = None
        self._due = 0.0  # when the next pass is scheduled
        self._asked_at: float | None = None

    def start(self, first_s: float = 1.0) -> None:
        """Take the first sample soon (RSS at once, CPU from the second one on), then every interval."""
        self._schedule(first_s)

    def asked(self) -> None:
        """Someone reads the figures: sample every ``interval_s`` for the next ``LINGER_S``."""
        self._asked_at = self.clock.now()
        if self._handle is not None and self._due > self._asked_at + self.interval_s:
            self._handle.cancel()
            self._schedule(self.interval_s)

    def _schedule(self, delay_s: float) -> None:
        self._due = self.clock.now() + delay_s
        self._handle = self.clock.call_later(delay_s, self.tick)

    def tick(self) -> None:
        """Sample every tree now and schedule the next pass."""
        now = self.clock.now()
        roots = {}
        for prog in self.programs():
            pid = prog.main_pid
            if pid is not None:
                roots[pid] = prog
            else:
                prog.usage = None
        found = self.sample(set(roots))
        last: dict[int, tuple[int, float]] = {}
        for pid, prog in roots.items():
            ticks, rss = found.get(pid, (0, 0))
            before = self._last.get(pid)
            cpu = None
            if before is not None and now > before[1]:
                cpu = round(max(0, ticks - before[0]) * TICK_S / (now - before[1]) * 100, 1)
            prog.usage = Usage(pid, cpu, rss)
            last[pid] = (ticks, now)
        self._last = last
        watched = self._asked_at is not None and now - self._asked_at < LINGER_S
        self._schedule(self.interval_s if watched else max(self.interval_s, IDLE_INTERVAL_S))

    def close(self) -> None:
        """Stop sampling."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
