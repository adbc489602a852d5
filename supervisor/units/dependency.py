"""The runner of one dependency: probes it, at start-up with backoff, then at its interval."""

from __future__ import annotations

import asyncio

from supervisor import plain, probes
from supervisor.backoff import Backoff
from supervisor.config.models import DependencyConfig
from supervisor.status import DependencyEntry
from supervisor.units.base import Context

WAITING, READY, UNAVAILABLE, TIMED_OUT = "waiting", "ready", "unavailable", "timed_out"


def make_probe(cfg: DependencyConfig) -> probes.Probe:
    """Return the probe for a dependency's type."""
    if cfg.type == "postgres":
        return probes.postgres(cfg.url, cfg.probe_timeout, cfg.primary)
    if cfg.type == "redis":
        return probes.redis(cfg.url, cfg.probe_timeout)
    if cfg.type == "tcp":
        return probes.tcp(cfg.url, cfg.probe_timeout)
    return probes.http(cfg.url, cfg.probe_timeout)


class DependencyRunner:
    """Keeps one dependency's state: ``waiting``, ``ready``, ``unavailable`` or ``timed_out``."""

    kind = "dependency"

    def __init__(self, name: str, cfg: DependencyConfig, ctx: Context) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.state = WAITING
        self.latency_ms: float | None = None
        self.error: str | None = None
        self.checks = 0
        self._probe = make_probe(cfg)
        self._task: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()
        self._log = ctx.log.bind(dependency=name, address=plain.address(cfg.type, cfg.url))  # no credentials
        # While waiting, back off from the interval up to a few seconds between probes.
        self._waiting = Backoff(initial_s=cfg.interval, factor=1.5, max_s=max(cfg.interval, 5.0), jitter=0.1)

    @property
    def ok(self) -> bool:
        """Whether units that name this dependency may start."""
        return self.state == READY or (self.state == TIMED_OUT and self.cfg.on_timeout == "continue")

    def start(self) -> None:
        """Begin probing."""
        if self._task is None:
            self._task = self.ctx.loop.create_task(self._run(), name=f"dependency:{self.name}")

    def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _check(self, deadline_at: float | None) -> probes.ProbeResult:
        """Probe once; whatever happens is a result, and it comes back by ``deadline_at``."""
        started_at = self.ctx.clock.now()
        limit_s = None if deadline_at is None else max(0.05, deadline_at - started_at)
        try:
            return await asyncio.wait_for(self._probe(), limit_s)
        except TimeoutError:
            return probes.ProbeResult(False, f"no answer within {limit_s:g}s", self.ctx.clock.now() - started_at)
        except Exception as exc:  # a probe must report, never take its runner down with it
            return probes.ProbeResult(False, f"{type(exc).__name__}: {exc}", self.ctx.clock.now() - started_at)

    async def _run(self) -> None:
        started_at = self.ctx.clock.now()
        down_since = started_at  # when the current wait (start-up, or an outage) began
        attempt = 0
        self._log.info("dependency.waiting", type=self.cfg.type, timeout_s=self.cfg.timeout)
        while True:
            # The start-up wait ends at its timeout, even while a probe hangs.
            deadline_at = started_at + self.cfg.timeout if self.state == WAITING else None
            result = await self._check(deadline_at)
            self.checks += 1
            self.latency_ms = round(result.elapsed_s * 1000, 2)
            self.ctx.on_probe("dependency", self.name, result.elapsed_s, result.ok)
            if result.ok:
                attempt = 0
                self.error = None
                if self.state != READY:
                    self._log.info(
                        "dependency.ready",
                        latency_ms=self.latency_ms,
                        waited_s=round(self.ctx.clock.now() - down_since, 3),
                    )
                    self._set(READY)
                await asyncio.sleep(self.cfg.interval)
                continue
            self.error = result.detail
            attempt += 1
            if self.state == READY:
                down_since = self.ctx.clock.now() - result.elapsed_s
                self._log.warning(
                    "dependency.unavailable",
                    error=result.detail,
                    next="programs that name it are not restarted until it is back",
                )
                self._set(UNAVAILABLE)
            elif self.state == WAITING and self.ctx.clock.now() - started_at >= self.cfg.timeout:
                self._log.error(
                    "dependency.timed_out",
                    error=result.detail,
                    waited_s=self.cfg.timeout,
                    next="starting the rest degraded" if self.cfg.on_timeout == "continue" else "giving up",
                )
                self._set(TIMED_OUT)
                if self.cfg.on_timeout == "exit":
                    self.ctx.give_up(
                        69, f"dependency {self.name} not ready after {self.cfg.timeout:g}s: {result.detail}"
                    )
                    return
            elif (self.state == WAITING and attempt in (1, 5)) or attempt % 30 == 0:
                self._log.info("dependency.not_ready", error=result.detail, attempt=attempt)
            delay = self._waiting.delay(attempt, self.ctx.rng) if self.state == WAITING else self.cfg.interval
            if self.state == WAITING:
                delay = max(0.05, min(delay, started_at + self.cfg.timeout - self.ctx.clock.now()))
            await asyncio.sleep(delay)

    def _set(self, state: str) -> None:
        self.state = state
        self._settled.set()
        self.ctx.changed()

    async def wait_settled(self) -> None:
        """Return once the start-up wait is over (ready or timed out)."""
        await self._settled.wait()

    def status(self) -> DependencyEntry:
        """Return this unit's entry of the status document."""
        return {
            "name": self.name,
            "kind": "dependency",
            "type": self.cfg.type,
            "state": self.state,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }
