"""A dependency's runner: every probe outcome is a result, waits end on time, outages are timed on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from supervisor.config.models import DependencyTable, plain_table
from supervisor.engine.units.base import Context
from supervisor.engine.units.dependency import DependencyRunner
from supervisor.machine.clock import Clock, FakeClock, MonotonicClock
from supervisor.stack import probes


class Log:
    """Records structured log events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def bind(self, **_: object) -> Log:
        return self

    def _record(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    info = warning = error = _record

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.events if event == name]


def runner(clock: Clock, probe: probes.Probe, **cfg: Any) -> tuple[DependencyRunner, Log]:
    log = Log()
    ctx = Context(loop=asyncio.get_running_loop(), clock=clock, reaper=None, log=log, base_env={})  # type: ignore[arg-type]
    dep = DependencyRunner("cache", plain_table(DependencyTable(type="redis", interval=0.01, **cfg)), ctx)
    dep._probe = probe
    return dep, log


def scripted(clock: FakeClock, script: list[tuple[bool, float]], done: asyncio.Event) -> probes.Probe:
    """A probe that lets `seconds` pass on the fake clock, then answers `ok`; silent once the script ends."""

    async def probe() -> probes.ProbeResult:
        if not script:
            done.set()
            await asyncio.Event().wait()
        ok, seconds = script.pop(0)
        clock.advance(seconds)
        return probes.ProbeResult(ok, "PONG" if ok else "refused", 0.0)

    return probe


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 10))


def test_ready_after_an_outage_reports_the_outage_wait() -> None:
    """waited_s on the way back is the time since the outage began, not since the daemon started."""

    async def scenario() -> list[float]:
        clock, done = FakeClock(), asyncio.Event()
        script = [(False, 1.0), (True, 1.0), (True, 300.0), (False, 5.0), (False, 5.0), (False, 5.0), (True, 1.0)]
        dep, log = runner(clock, scripted(clock, script, done))
        dep.start()
        await done.wait()
        dep.stop()
        return [e["waited_s"] for e in log.named("dependency.ready")]

    assert run(scenario) == [2.0, 11.0]


def test_a_probe_that_raises_is_a_failed_probe() -> None:
    """An exception from a probe is recorded as its error and the wait still times out."""

    async def scenario() -> DependencyRunner:
        clock = FakeClock()

        async def probe() -> probes.ProbeResult:
            clock.advance(0.5)
            raise ValueError("Redis URL must specify one of the following schemes")

        dep, _ = runner(clock, probe, timeout=2.0)
        dep.start()
        await dep.wait_settled()
        dep.stop()
        return dep

    dep = run(scenario)
    assert dep.state == "timed_out"
    assert dep.error is not None and dep.error.startswith("ValueError: Redis URL must specify")


def test_a_hanging_probe_does_not_outlast_the_timeout() -> None:
    """A probe that never answers is cut off when the start-up wait ends."""

    async def scenario() -> tuple[DependencyRunner, float]:
        clock = MonotonicClock()

        async def probe() -> probes.ProbeResult:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        dep, _ = runner(clock, probe, timeout=0.1, probe_timeout=30.0)
        started = clock.now()
        dep.start()
        await dep.wait_settled()
        dep.stop()
        return dep, clock.now() - started

    dep, took_s = run(scenario)
    assert dep.state == "timed_out" and "no answer" in (dep.error or "")
    assert took_s < 3.0
