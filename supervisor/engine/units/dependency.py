"""The runner of one dependency: it probes and waits as the pure machine in ``depstates`` says."""

from __future__ import annotations

import asyncio
import os
import select

from supervisor.config.settings import DependencyConfig
from supervisor.engine.units.base import Context
from supervisor.host import plain
from supervisor.machine import depstates
from supervisor.machine.backoff import Backoff
from supervisor.machine.clock import on_grid
from supervisor.machine.depstates import DepModel, DepPolicy, DepState, Probed
from supervisor.machine.events import EVENT_LEVELS, Log
from supervisor.machine.status import DependencyEntry
from supervisor.stack import probes

WAITING, READY, UNAVAILABLE, TIMED_OUT = (DepState.WAITING, DepState.READY, DepState.UNAVAILABLE, DepState.TIMED_OUT)


def make_probe(cfg: DependencyConfig) -> probes.Probe:
    """Return the probe for a dependency's type."""
    if cfg.type == "postgres":
        return probes.postgres(cfg.url, cfg.probe_timeout, cfg.primary)
    if cfg.type == "redis":
        return probes.redis(cfg.url, cfg.probe_timeout)
    if cfg.type == "tcp":
        return probes.tcp(cfg.url, cfg.probe_timeout)
    return probes.http(cfg.url, cfg.probe_timeout)


def dependency_policy(cfg: DependencyConfig) -> DepPolicy:
    """Project a dependency's configuration onto what its machine needs."""
    if cfg.backoff is not None:
        backoff = cfg.backoff.policy()
    else:  # while waiting: from the interval up to a few seconds between probes
        backoff = Backoff(initial_s=cfg.interval, factor=1.5, max_s=max(cfg.interval, 5.0), jitter=0.1)
    return DepPolicy(
        interval_s=cfg.interval,
        ready_interval_s=cfg.ready_interval,
        timeout_s=cfg.timeout,
        on_timeout=cfg.on_timeout,
        backoff=backoff,
    )


class DependencyRunner:
    """Keeps one dependency's state: ``waiting``, ``ready``, ``unavailable`` or ``timed_out``."""

    kind = "dependency"
    buffer = None  # a dependency prints nothing

    def __init__(self, name: str, cfg: DependencyConfig, ctx: Context) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.policy = dependency_policy(cfg)
        self.model = DepModel()
        self._probe = make_probe(cfg)
        self._task: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()
        self._probing = False  # a probe of a ready dependency is under way
        self._stirred = False  # its kept connection stirred; the probe that follows has not answered
        self._doubted = False  # a program's exit waits on that answer: tell the daemon when it comes
        self._log = ctx.log.bind(dependency=name, address=plain.address(cfg.type, cfg.url))  # no credentials

    @property
    def state(self) -> DepState:
        """The current state."""
        return self.model.state

    @property
    def error(self) -> str | None:
        """Why the last probe failed."""
        return self.model.error

    @property
    def latency_ms(self) -> float | None:
        """How long the last probe took."""
        return self.model.latency_ms

    @property
    def checks(self) -> int:
        """Probes made."""
        return self.model.checks

    @property
    def ok(self) -> bool:
        """Whether units that name this dependency may start."""
        return depstates.is_ok(self.model, self.policy)

    @property
    def depends_on(self) -> list[str]:
        """A dependency waits for nothing."""
        return []

    def doubt_s(self) -> float:
        """Within how long a probe under way (or due: the kept connection stirred) answers; 0 when none is.

        A program that exits meanwhile waits for that answer (``machine.deferral``): its crash
        may be this dependency going away, noticed by the program first.
        """
        if self.state is not READY:
            return 0.0  # known down already: its programs wait in pending anyway
        fd = None if self._probing or self._stirred else probes.kept_socket(self._probe)
        readable = fd is not None and bool(select.select([fd], [], [], 0)[0])  # stirred, not yet noticed
        if not (self._probing or self._stirred or readable):
            return 0.0
        self._doubted = True
        return self.policy.interval_s + self.cfg.probe_timeout

    def begin(self) -> None:
        """Start-up begins: probe."""
        self.start()

    def gate(self, blocked: list[str]) -> None:
        """Nothing holds a dependency back."""

    def lets_dependants_start(self) -> bool:
        """Ready, or timed out with ``on_timeout = "continue"``."""
        return self.ok

    def startup_pending(self) -> bool:
        """Start-up waits while it is still waited for."""
        return self.state is WAITING

    def halt(self) -> None:
        """Stop probing."""
        self.stop()

    def start(self) -> None:
        """Begin probing."""
        if self._task is None:
            self._task = self.ctx.loop.create_task(self._run(), name=f"dependency:{self.name}")

    def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _check(self, deadline_at: float | None) -> Probed:
        """Probe once; whatever happens is a result, and it comes back by ``deadline_at``."""
        started_at = self.ctx.clock.now()
        limit_s = None if deadline_at is None else max(0.05, deadline_at - started_at)
        try:
            if limit_s is None:  # ready: the probe's own timeout bounds it
                result = await self._probe()
            else:
                async with asyncio.timeout(limit_s):
                    result = await self._probe()
        except TimeoutError:
            return Probed(False, f"no answer within {limit_s:g}s", self.ctx.clock.now() - started_at)
        except Exception as exc:  # a probe must report, never take its runner down with it
            return Probed(False, f"{type(exc).__name__}: {exc}", self.ctx.clock.now() - started_at)
        return Probed(result.ok, result.detail, result.elapsed_s)

    async def _run(self) -> None:
        """Carry out the machine's actions: probe, wait, tell the daemon."""
        self.model, actions = depstates.start(self.ctx.clock.now(), self.policy, self.cfg.type)
        while actions:
            action = actions.pop(0)
            if isinstance(action, depstates.Probe):
                self._probing = self.state is READY
                try:
                    result = await self._check(action.deadline_at)
                finally:
                    self._probing = self._stirred = False
                self.ctx.on_probe("dependency", self.name, result.elapsed_s, result.ok)
                self.model, actions = depstates.transition(
                    self.model, result, self.ctx.clock.now(), self.policy, self.ctx.rng
                )
                if self._doubted:  # a program's exit waits for this answer, even an unchanged one
                    self._doubted = False
                    self.ctx.changed()
            elif isinstance(action, depstates.Wait):
                now = self.ctx.clock.now()
                delay_s = on_grid(now, action.delay_s) if action.periodic else action.delay_s
                if action.watch:
                    await self._sleep_watching(delay_s)
                else:
                    await asyncio.sleep(delay_s)
            elif isinstance(action, depstates.Changed):
                if self.state is not WAITING:
                    self._settled.set()
                self.ctx.changed()
            elif isinstance(action, depstates.GiveUp):
                self.ctx.give_up(action.code, f"dependency {self.name} {action.why}")
                return
            elif isinstance(action, Log):
                getattr(self._log, EVENT_LEVELS.get(action.event, "info"))(action.event, **dict(action.fields))

    async def _sleep_watching(self, delay_s: float) -> None:
        """Sleep ``delay_s``, or less if the kept connection stirs (but ``interval`` at least since the last probe).

        An idle connection to Postgres or Redis stays silent; the server writes to it only to
        end it (a shutdown's error, a terminated backend, an idle timeout's close). Watching it
        notices such an end at once, so a long ``ready_interval`` costs no time to notice it.
        The watch is a ``dup`` of the socket, since the client library may watch the socket
        itself, and one fd can have only one reader in the loop.
        """
        fd = probes.kept_socket(self._probe)
        if fd is None:
            await asyncio.sleep(delay_s)
            return
        loop = self.ctx.loop
        last_probe_at = self.ctx.clock.now()
        stirred: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.remove_reader(watch)  # level-triggered: it would fire until removed
            if not stirred.done():
                stirred.set_result(None)

        try:
            watch = os.dup(fd)
        except OSError:
            await asyncio.sleep(delay_s)
            return
        try:
            loop.add_reader(watch, wake)
            try:
                async with asyncio.timeout(delay_s):
                    await stirred
            except TimeoutError:
                return
            finally:
                loop.remove_reader(watch)
        finally:
            os.close(watch)
        self._stirred = True
        self._log.info("dependency.connection_stirred", next="probing it now")
        await asyncio.sleep(max(0.0, last_probe_at + self.policy.interval_s - self.ctx.clock.now()))

    async def wait_settled(self) -> None:
        """Return once the start-up wait is over (ready or timed out)."""
        await self._settled.wait()

    def status(self, rss: dict[int, int] | None = None) -> DependencyEntry:
        """Return this unit's entry of the status document."""
        return {
            "name": self.name,
            "kind": "dependency",
            "type": self.cfg.type,
            "state": self.state.value,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "attempt": self.model.attempt,
        }
