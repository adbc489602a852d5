"""A program's life as a pure function: ``transition(model, event, now, policy, rng)``.

The runner turns everything that happens into an event, calls ``transition``
and executes the actions it returns. Nothing here reads a clock, touches a
process or imports asyncio, so every edge is tested with scripted histories.
The start-first handover (two incarnations side by side) lives in ``handover``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from supervisor.machine import deferral, handover, recycle, singleton
from supervisor.machine.edges import budget_spent, describe_exit, ladder_s, log, record_exit, stop
from supervisor.machine.events import (
    Action,
    CancelTimers,
    DepsChanged,
    Event,
    Exited,
    ExitStatus,
    HealthResult,
    KillTree,
    LockAcquired,
    LockLost,
    MemoryExceeded,
    Ready,
    Reason,
    Restart,
    SendStop,
    SetTimer,
    Shutdown,
    Spawned,
    SpawnFailed,
    Start,
    Stop,
    Timer,
    signal_name,
)
from supervisor.machine.model import DOWN_STATES, After, Health, LastExit, Model, RestartPolicy, State
from supervisor.machine.outcomes import after_failure, on_exit, on_health, on_stopped, ready, spawn, spawned

__all__ = [
    "After",
    "LastExit",
    "Model",
    "RestartPolicy",
    "State",
    "UnexpectedEvent",
    "after_failure",
    "budget_spent",
    "describe_exit",
    "log",
    "record_exit",
    "stop",
    "transition",
]


class UnexpectedEvent(Exception):
    """An event that the current state cannot receive: a bug in the caller."""


Result = tuple[Model, list[Action]]


def transition(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result:
    """Return the next model and the actions to carry out for event ``ev`` at ``now``."""
    m, actions = _transition(m, ev, now, p, rng)
    return singleton.settle(m, actions) if p.singleton else (m, actions)


def _transition(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result:
    # Events every state treats alike.
    if isinstance(ev, Timer):
        current = m.handover_id if ev.name == "handover_timeout" else m.generation
        if ev.generation != current:
            return m, []  # a stale timer from an earlier incarnation: ignored
    if isinstance(ev, Timer) and ev.name == "exit_deferred":
        return deferral.settle(m, m.deps_ok, now, p, rng) if deferral.waiting(m) else (m, [])
    if isinstance(ev, DepsChanged) and deferral.waiting(m):
        return deferral.settle(m, ev.ok, now, p, rng)  # the probe answered
    if isinstance(ev, DepsChanged):
        m = replace(m, deps_ok=ev.ok)
        if m.state is State.PENDING and ev.ok and not m.held:
            # pending -> starting|standby: its dependencies are back
            return spawn(m, p)
        if m.state is State.STANDBY and not ev.ok:
            # standby -> pending: a dependency went away; the lock is let go meanwhile
            return replace(m, state=State.PENDING), [CancelTimers()]
        return m, []  # a running program keeps running; a crash will wait in pending
    if isinstance(ev, Restart) and ev.reason is Reason.RELOAD and m.held:
        return m, []  # an operator's stop outlives a reload
    if isinstance(ev, LockLost):
        return singleton.lost(m, ev, now, p)
    if isinstance(ev, LockAcquired):
        return singleton.acquired(m, ev, p)  # standby -> starting; in any other state it is let go
    if handover.concerns(m, ev):
        result: Result | None = handover.transition(m, ev, now, p, rng)
    else:
        result = _BY_STATE[m.state](m, ev, now, p, rng)
    if result is None:
        raise UnexpectedEvent(f"{type(ev).__name__} in state {m.state.value}")
    # Whichever edge made an incarnation the running one (ready, promoted), its age starts to count.
    return result[0], [*result[1], *recycle.arm(m, result[0], now, p, rng)]


# Reports about an incarnation that is gone, or not yet there: every state but the living ones drops them.
_LATE = HealthResult | MemoryExceeded | Timer | Ready


def _pending(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    if isinstance(ev, Start):
        m = replace(m, held=False, exit_deferred=False)
        # pending -> starting: asked to start and dependencies allow it
        return spawn(m, p) if m.deps_ok else (m, [])
    if isinstance(ev, Restart):
        return transition(m, Start(), now, p, rng)
    if isinstance(ev, Stop | Shutdown):
        # pending -> stopped
        return replace(m, state=State.STOPPED, held=isinstance(ev, Stop) or m.held, exit_deferred=False), []
    if isinstance(ev, _LATE):
        return m, []  # late reports about an incarnation already gone
    return None


def _starting(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    if m.pid is None:
        if isinstance(ev, Spawned):
            return spawned(m, ev.pid, now, p)
        if isinstance(ev, SpawnFailed):
            # starting -> backoff | fatal: could not exec, counts like a crash
            m = replace(m, last_exit=LastExit(ExitStatus(code=127), Reason.EXIT), error=ev.error)
            return after_failure(m, now, p, rng, log("program.spawn_failed", error=ev.error))
        if isinstance(ev, _LATE):
            return m, []
        return None
    if isinstance(ev, Timer) and ev.name == "min_uptime":
        # starting -> running: stayed up min_uptime
        return ready(m, now, "min_uptime")
    if isinstance(ev, Ready):
        # starting -> running: READY=1 or its ready_log line, from this incarnation
        return ready(m, now, ev.by) if p.says_ready else (m, [])
    if isinstance(ev, HealthResult) and ev.ok:
        # starting -> running: its first passing check
        return ready(replace(m, health=Health.HEALTHY, health_failures=0), now, "health")
    if isinstance(ev, Timer) and ev.name == "start_timeout":
        # starting -> stopping: not ready in time, a failed start
        return stop(
            m,
            p,
            Reason.START_TIMEOUT,
            After.RESTART,
            log("program.start_timeout", pid=m.pid, after_s=p.start_timeout_s, hint="not ready in time"),
        )
    return _alive(m, ev, now, p, rng)


def _running(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    if isinstance(ev, Ready):
        return m, []  # a repeated READY=1
    if isinstance(ev, Timer) and ev.name == "max_age":
        return recycle.due(m, now, p)
    return _alive(m, ev, now, p, rng)


def _stopping(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    if isinstance(ev, Exited):
        return on_stopped(m, ev.status, now, p, rng)
    if isinstance(ev, Timer) and ev.name == "stop_timeout":
        ladder = p.ladder()
        if m.rung + 1 < len(ladder):
            # stopping -> stopping: the ladder's next rung
            sig, wait_s = ladder[m.rung + 1]
            return replace(m, rung=m.rung + 1), [
                log("program.stop_escalated", pid=m.pid, signal=signal_name(sig)),
                SendStop(sig, p.stop_group),
                SetTimer("stop_timeout", wait_s, m.generation),
            ]
        # stopping -> stopping: the ladder's last rung
        if m.stop_reason is Reason.FENCE:
            kill = log("program.kill", pid=m.pid, hint="fenced: its lock may be another daemon's by now")
        else:
            kill = log("program.kill", pid=m.pid, after_s=ladder_s(p), hint="did not exit on its stop signal")
        return replace(m, killed=True), [KillTree(), kill]
    if isinstance(ev, Stop):
        return replace(m, held=True, after=After.STAY_STOPPED, stop_reason=Reason.OPERATOR), []
    if isinstance(ev, Start | Restart):
        if m.stop_reason is Reason.SHUTDOWN:
            return m, []  # the supervisor is going down; nothing starts again
        return replace(m, held=False, after=After.START_NOW), []
    if isinstance(ev, Shutdown):
        return replace(m, after=After.STAY_STOPPED, stop_reason=Reason.SHUTDOWN), []
    if isinstance(ev, _LATE):
        return m, []  # already going down
    return None


def _backoff(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    if isinstance(ev, Timer) and ev.name == "backoff":
        if m.deps_ok:
            # backoff -> starting: the delay is over
            return spawn(m, p)
        # backoff -> pending: a dependency went away meanwhile
        return replace(m, state=State.PENDING), [
            log("program.pending", why="waits for a dependency, or for a start it comes after")
        ]
    if isinstance(ev, Start | Restart):
        # backoff -> starting: an operator does not want to wait
        return spawn(replace(m, held=False), p, cancel=True)
    if isinstance(ev, Stop | Shutdown):
        # backoff -> stopped
        return replace(m, state=State.STOPPED, held=isinstance(ev, Stop)), [CancelTimers()]
    if isinstance(ev, _LATE):
        return m, []
    return None


def _standby(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    """A singleton that another daemon runs, or may run: it tries for the lock every second."""
    if isinstance(ev, Timer) and ev.name == "lock_wait":
        # standby -> starting: the young database has now been up for the fence
        return spawn(m, p)
    if isinstance(ev, Start | Restart):
        return m, []  # it is trying already; a new definition applies at its start
    if isinstance(ev, Stop | Shutdown):
        # standby -> stopped: the lock is let go (``singleton.settle``)
        return replace(m, state=State.STOPPED, held=isinstance(ev, Stop) or m.held), [CancelTimers()]
    if isinstance(ev, _LATE):
        return m, []
    return None


def _down(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result | None:
    """Stopped, exited or fatal."""
    if isinstance(ev, Start | Restart):
        # stopped|exited|fatal -> starting|pending: a fresh budget
        m = replace(m, held=False, attempt=0, restart_times=(), error=None)
        if not m.deps_ok:
            return replace(m, state=State.PENDING), []
        return spawn(m, p)
    if isinstance(ev, Stop):
        return replace(m, held=True), []
    if isinstance(ev, Shutdown | _LATE):
        return m, []
    return None


def _alive(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> Result:
    """What a starting (spawned) or running program does with everything else."""
    if isinstance(ev, Exited):
        return on_exit(m, ev.status, now, p, rng, ev.doubt_s)
    if isinstance(ev, HealthResult):
        return on_health(m, ev, now, p)
    if isinstance(ev, MemoryExceeded):
        pre = log("program.memory_exceeded", rss_bytes=ev.rss_bytes)
        if handover.applies(m, p):
            return handover.begin(m, p, Reason.MEMORY, now, pre)
        # running -> stopping: over max_memory, restart gracefully
        return stop(m, p, Reason.MEMORY, After.RESTART, pre)
    if isinstance(ev, Stop):
        # running -> stopping: operator stop, held down
        return stop(replace(m, held=True), p, Reason.OPERATOR, After.STAY_STOPPED)
    if isinstance(ev, Restart):
        if handover.applies(m, p):
            return handover.begin(m, p, ev.reason, now)
        # running -> stopping: restart at once, outside the budget
        return stop(m, p, ev.reason, After.START_NOW)
    if isinstance(ev, Shutdown):
        return stop(m, p, Reason.SHUTDOWN, After.STAY_STOPPED)
    if isinstance(ev, Start):
        return m, []  # already running
    if isinstance(ev, Timer):
        return m, []  # a timer of this generation that no longer matters
    raise UnexpectedEvent(f"{type(ev).__name__} in state {m.state.value}")


_BY_STATE: dict[State, Callable[[Model, Event, float, RestartPolicy, random.Random], Result | None]] = {
    State.PENDING: _pending,
    State.STARTING: _starting,
    State.RUNNING: _running,
    State.STOPPING: _stopping,
    State.BACKOFF: _backoff,
    State.STANDBY: _standby,
    **dict.fromkeys(DOWN_STATES, _down),
}
