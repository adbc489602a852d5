"""A singleton's runner with a fake lock and a fake clock: standby, the lock's socket handed on, the fence."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from supervisor.engine.units import instants
from supervisor.host.process import Child, SpawnSpec
from supervisor.machine.events import LockAcquired, LockLost, Stop
from supervisor.machine.model import State
from supervisor.machine.timeline import Timeline, document, render
from supervisor.stack.singleton import singleton_key
from tests.unit.test_program_runner import Harness, loop  # noqa: F401 - the fixture

# ruff: noqa: F811 - the fixture's name is its parameter's


class FakeLock:
    """Records what the runner asks of the lock."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def seek(self, url: str, key: int, fence_s: float) -> None:
        self.calls.append(("seek", url, key, fence_s))

    def release(self) -> None:
        self.calls.append("release")

    def handoff_fd(self) -> int | None:
        return 42


def singleton(loop: asyncio.AbstractEventLoop, **program: Any) -> tuple[Harness, FakeLock, list[SpawnSpec]]:
    h = Harness(loop, min_uptime=0, singleton="db", singleton_fence="4s", **program)
    lock = FakeLock()
    h.runner.lock = lock  # type: ignore[assignment]
    specs: list[SpawnSpec] = []
    spawn = h.spawner.spawn

    def recording(spec: SpawnSpec) -> Child:
        specs.append(spec)
        return spawn(spec)

    h.spawner.spawn = recording  # type: ignore[method-assign]
    return h, lock, specs


def test_a_standby_lets_its_dependants_start_and_spawns_only_with_the_lock(loop) -> None:
    """Standby: no spawn, the lock sought by the program's key, dependants free; the lock's socket becomes fd 4."""
    h, lock, specs = singleton(loop)
    h.start()
    assert h.state is State.STANDBY and h.spawner.spawned == []
    assert lock.calls == [("seek", "", singleton_key("app"), 4.0)]
    assert h.runner.lets_dependants_start() and not h.runner.startup_pending()
    assert h.runner.status()["state"] == "standby"
    h.runner.dispatch(LockAcquired())
    assert h.state is State.RUNNING and h.spawner.spawned == [101]
    assert specs[0].lock_fd == 42


def test_singleton_key_names_the_lock(loop) -> None:
    """singleton_key replaces the program's name in the key."""
    h, lock, _ = singleton(loop, singleton_key="beat")
    h.start()
    assert lock.calls == [("seek", "", singleton_key("beat"), 4.0)]


def test_a_closed_lock_connection_kills_then_stands_by_again(loop) -> None:
    """The lock's connection closed: stop signal and SIGKILL at once; once reaped, the lock is sought afresh."""
    h, lock, _ = singleton(loop)
    h.start()
    h.runner.dispatch(LockAcquired())
    h.runner.dispatch(LockLost(contact_at=h.clock.now(), detail="closed", gone=True))
    assert h.spawner.signals == [(101, "SIGTERM", False)]
    h.clock.advance(0)
    assert h.spawner.killed == [101]
    h.exit(101, sig=signal.SIGKILL)
    assert h.state is State.STANDBY and lock.calls[-1][0] == "seek"
    assert h.runner.restarts_by_reason == {"fence": 1}


def test_an_operator_stop_releases_the_lock_once_the_copy_is_gone(loop) -> None:
    """Stop: the lock stays until the copy exits, then it is released for another daemon."""
    h, lock, _ = singleton(loop)
    h.start()
    h.runner.dispatch(LockAcquired())
    h.runner.dispatch(Stop())
    assert lock.calls[-1] != "release"
    h.exit(101, sig=signal.SIGTERM)
    assert h.state is State.STOPPED and lock.calls[-1] == "release"


def test_status_says_why_a_program_stands_by() -> None:
    """NOTE says a standby singleton runs elsewhere; the state is no problem for status's exit code."""
    from supervisor.machine.status import problems, render_table
    from tests.unit.test_status import doc

    beat = {"name": "beat", "kind": "program", "state": "standby", "pid": None, "waiting_for": []}
    document = doc(units=[beat])
    line = next(row for row in render_table(document).splitlines() if row.startswith("beat"))
    assert line.endswith("singleton: another daemon holds its lock") and problems(document) == []


def _observe(h: Harness, timeline: Timeline, at_s: float) -> None:
    instants.observe(timeline, [h.runner], lambda deps: True, at_s)


def test_a_singleton_that_gets_the_lock_at_once_is_ready_no_earlier_than_started(loop) -> None:
    """Standby for a moment, then the lock: the timeline's ready instant is when it runs, not the standby."""
    h, _, _ = singleton(loop)
    timeline = Timeline()
    h.start()
    _observe(h, timeline, 0.48)  # standby: the lock is sought
    h.runner.dispatch(LockAcquired())
    _observe(h, timeline, 0.84)  # spawned and, min_uptime = 0, running
    entry = timeline.of("app")
    assert entry == {"eligible_s": 0.48, "started_s": 0.84, "ready_s": 0.84}


def test_a_standby_that_gets_the_lock_later_is_ready_when_it_runs_here(loop) -> None:
    """Standby for 30 s (another daemon held the lock), then the lock: started, then ready, both at 30 s."""
    h, _, _ = singleton(loop)
    timeline = Timeline()
    h.start()
    _observe(h, timeline, 0.5)
    doc = document(timeline, [("app", "program", [], [], h.runner.startup_pending())], 1.0)
    row = doc["units"][0]
    assert (row["started_s"], row["ready_s"], row.get("standby_s")) == (None, None, 0.5)
    assert "standby" in render(dict(doc)).splitlines()[1]  # READY reads standby, not a time
    h.runner.dispatch(LockAcquired())
    _observe(h, timeline, 30.0)
    row = document(timeline, [("app", "program", [], [], False)], 31.0)["units"][0]
    assert (row["started_s"], row["ready_s"], row.get("standby_s")) == (30.0, 30.0, 0.5)
