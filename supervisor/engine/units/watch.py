"""A program's health probes and memory checks: on the incarnation that serves, and on a candidate.

The watch only reports (``HealthResult``, ``MemoryExceeded``) to its program's runner; the
state machine decides what follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from supervisor.config.settings import ProgramConfig
from supervisor.engine.units.base import Context
from supervisor.host.process import tree_rss
from supervisor.machine import events
from supervisor.machine.clock import Handle, on_grid
from supervisor.machine.events import Event, ExitStatus
from supervisor.machine.model import Health, Model, State
from supervisor.stack import probes

_WATCHED = (State.STARTING, State.RUNNING)


class Watched(Protocol):
    """What the watch needs of its program's runner."""

    name: str
    cfg: ProgramConfig
    ctx: Context
    model: Model
    spawned_wall: dict[int, float]

    def dispatch(self, event: Event) -> None:
        """Feed one event to the program's machine."""
        ...


class Watch:
    """Runs one program's checks; restarted whenever the serving incarnation changes."""

    def __init__(self, runner: Watched, run_exec: Callable[[list[str], float], Awaitable[ExitStatus | None]]) -> None:
        self.runner = runner
        self.run_exec = run_exec
        self.health_failures_total = 0
        self._probe_task: asyncio.Task[None] | None = None
        self._candidate_task: asyncio.Task[None] | None = None
        self._memory: Handle | None = None

    def follow(self, before: Model, m: Model) -> None:
        """Keep watching the incarnation that is serving (or starting), and a candidate where one counts."""
        if (before.pid, before.generation) != (m.pid, m.generation) or before.state is not m.state:
            self.stop()
            if m.pid is not None and m.state in _WATCHED:
                self.start(m.pid, m.generation)
        if before.next_pid != m.next_pid:
            if self._candidate_task is not None:
                self._candidate_task.cancel()
                self._candidate_task = None
            if m.next_pid is not None and self._own_readiness_check():
                self._candidate_task = self.runner.ctx.loop.create_task(self._candidate_loop(m.next_pid))

    def start(self, pid: int, generation: int) -> None:
        """Probe ``pid`` and sample its tree's memory."""
        probe = self._make_probe(pid)
        if probe is not None:
            self._probe_task = self.runner.ctx.loop.create_task(self._health_loop(generation, probe))
        cfg = self.runner.cfg
        if cfg.max_memory is not None and self._memory is None:
            clock = self.runner.ctx.clock
            self._memory = clock.call_later(on_grid(clock.now(), cfg.memory_interval), self._check_memory)

    def stop(self) -> None:
        """Stop probing and sampling the serving incarnation."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        if self._memory is not None:
            self._memory.cancel()
            self._memory = None

    def close(self) -> None:
        """Stop everything, the candidate's probe included."""
        self.stop()
        if self._candidate_task is not None:
            self._candidate_task.cancel()
            self._candidate_task = None

    def _own_readiness_check(self) -> bool:
        """A candidate's health can count only from a check that only it can pass: a fresh file."""
        cfg = self.runner.cfg
        return not cfg.notify and cfg.health is not None and cfg.health.file is not None

    def _make_probe(self, pid: int) -> probes.Probe | None:
        h = self.runner.cfg.health
        if h is None:
            return None
        kind = h.kind
        if kind == "http" and h.http is not None:
            return probes.http(h.http, h.timeout)
        if kind == "tcp" and h.tcp is not None:
            return probes.tcp(h.tcp, h.timeout)
        if kind == "file" and h.file is not None and h.max_age is not None:
            return probes.file(h.file, h.max_age, not_before=self.runner.spawned_wall.get(pid, 0.0))
        if kind == "exec" and h.exec is not None:
            return probes.exec_(list(h.exec), h.timeout, self.run_exec)
        raise AssertionError(f"no probe for health kind {kind!r}")  # HEALTH_KINDS and this must agree

    async def _health_loop(self, generation: int, probe: probes.Probe) -> None:
        r = self.runner
        assert r.cfg.health is not None
        interval = r.cfg.health.interval
        while r.model.generation == generation and r.model.state in _WATCHED:
            # Until the first success, probe at least every second so dependants start soon.
            healthy = r.model.health is Health.HEALTHY
            await asyncio.sleep(on_grid(r.ctx.clock.now(), interval) if healthy else min(interval, 1.0))
            result = await probe()
            r.ctx.on_probe("program", r.name, result.elapsed_s, result.ok)
            if r.model.generation != generation:
                return  # a report about an incarnation that is gone
            if not result.ok:
                self.health_failures_total += 1
            r.dispatch(events.HealthResult(result.ok, result.detail))

    async def _candidate_loop(self, pid: int) -> None:
        r = self.runner
        probe = self._make_probe(pid)
        assert probe is not None and r.cfg.health is not None
        while r.model.next_pid == pid:
            await asyncio.sleep(min(r.cfg.health.interval, 0.5))
            result = await probe()
            if r.model.next_pid == pid:
                r.dispatch(events.HealthResult(result.ok, result.detail, pid=pid))

    def _check_memory(self) -> None:
        self._memory = None
        r = self.runner
        if r.model.state not in _WATCHED or r.model.pid is None or r.cfg.max_memory is None:
            return
        rss = tree_rss(r.model.pid)
        if rss > r.cfg.max_memory and r.model.next_pid is None:
            r.dispatch(events.MemoryExceeded(rss))
        if self._memory is None and r.model.pid is not None and r.model.state in _WATCHED:
            self._memory = r.ctx.clock.call_later(on_grid(r.ctx.clock.now(), r.cfg.memory_interval), self._check_memory)
