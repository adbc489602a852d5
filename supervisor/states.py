"""A program's life as a pure function: ``transition(model, event, now, policy, rng)``.

The runner turns everything that happens into an event, calls ``transition``
and executes the actions it returns. Nothing here reads a clock, touches a
process or imports asyncio, so every edge is tested with scripted histories.
"""

from __future__ import annotations

import enum
import random
import signal
from dataclasses import dataclass, field, replace

from supervisor.backoff import Backoff
from supervisor.events import (  # re-exported: the machine's vocabulary
    Action,
    BecameFatal,
    CancelTimers,
    DepsChanged,
    Event,
    Exited,
    ExitStatus,
    HealthResult,
    KillTree,
    Log,
    MemoryExceeded,
    Reason,
    Restart,
    SetTimer,
    Shutdown,
    SignalGroup,
    Spawn,
    Spawned,
    SpawnFailed,
    Start,
    Stop,
    Timer,
)

__all__ = [
    "Action",
    "After",
    "BecameFatal",
    "CancelTimers",
    "DepsChanged",
    "Event",
    "ExitStatus",
    "Exited",
    "HealthResult",
    "KillTree",
    "LastExit",
    "Log",
    "MemoryExceeded",
    "Model",
    "Reason",
    "Restart",
    "RestartPolicy",
    "SetTimer",
    "Shutdown",
    "SignalGroup",
    "Spawn",
    "SpawnFailed",
    "Spawned",
    "Start",
    "State",
    "Stop",
    "Timer",
    "UnexpectedEvent",
    "describe_exit",
    "transition",
]


class State(enum.StrEnum):
    """A program's states, as the status document spells them."""

    PENDING = "pending"  # waiting on its dependencies
    STARTING = "starting"  # spawn requested, not yet confirmed
    RUNNING = "running"
    BACKOFF = "backoff"  # waiting before the next start
    STOPPING = "stopping"  # going down through its stop ladder
    STOPPED = "stopped"  # stopped by an operator or the shutdown
    EXITED = "exited"  # exited and its policy does not restart it
    FATAL = "fatal"  # exhausted its restart budget, or cannot be spawned


class After(enum.StrEnum):
    """What a stopping program does once it has exited."""

    RESTART = "restart"  # through the backoff and the restart budget (health, memory)
    START_NOW = "start_now"  # at once, outside the budget (operator restart, reload)
    STAY_STOPPED = "stay_stopped"


@dataclass(frozen=True)
class RestartPolicy:
    """Everything ``transition`` needs to know of a program's configuration."""

    policy: str = "always"  # always | on-failure | never
    backoff: Backoff = field(default_factory=Backoff)
    reset_after_s: float = 60.0
    max_restarts: int = 10
    window_s: float = 300.0
    stop_timeout_s: float = 10.0
    has_health: bool = False
    health_failure_threshold: int = 3
    health_start_period_s: float = 0.0


@dataclass(frozen=True)
class LastExit:
    """The last exit as the status document shows it."""

    status: ExitStatus
    reason: Reason


@dataclass(frozen=True)
class Model:
    """A program's supervision state; replaced, never mutated."""

    state: State = State.PENDING
    deps_ok: bool = False
    held: bool = False  # an operator stop holds the program down until a start
    pid: int | None = None
    generation: int = 0  # bumped at every spawn; timers carry it so stale ones are ignored
    started_at: float | None = None
    attempt: int = 0  # restarts since the last stable run; drives the backoff
    restarts: int = 0  # every restart ever, for the status document
    restart_times: tuple[float, ...] = ()  # inside the budget window
    health: str | None = None  # unknown | healthy | unhealthy | None (no check)
    health_failures: int = 0
    stop_reason: Reason | None = None
    after: After | None = None
    killed: bool = False  # the stop ladder reached SIGKILL
    last_exit: LastExit | None = None
    error: str | None = None  # why fatal, for the operator


class UnexpectedEvent(Exception):
    """An event that the current state cannot receive: a bug in the caller."""


def _log(event: str, **fields: object) -> Log:
    return Log(event, tuple(fields.items()))


def transition(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> tuple[Model, list[Action]]:
    """Return the next model and the actions to carry out for event ``ev`` at ``now``."""
    s = m.state

    # Events every state treats alike.
    if isinstance(ev, Timer) and ev.generation != m.generation:
        return m, []  # a stale timer from an earlier incarnation: ignored
    if isinstance(ev, DepsChanged):
        m = replace(m, deps_ok=ev.ok)
        if s is State.PENDING and ev.ok and not m.held:
            # pending -> starting: its dependencies are back
            return _spawn(m)
        return m, []  # a running program keeps running; a crash will wait in pending

    if s is State.PENDING:
        if isinstance(ev, Start):
            m = replace(m, held=False)
            # pending -> starting: asked to start and dependencies allow it
            return _spawn(m) if m.deps_ok else (m, [])
        if isinstance(ev, Restart):
            return transition(m, Start(), now, p, rng)
        if isinstance(ev, Stop | Shutdown):
            # pending -> stopped
            return replace(m, state=State.STOPPED, held=isinstance(ev, Stop) or m.held), []
        if isinstance(ev, HealthResult | MemoryExceeded | Timer):
            return m, []  # late reports about an incarnation already gone

    elif s is State.STARTING:
        if isinstance(ev, Spawned):
            # starting -> running: forked and exec'd
            health = "unknown" if p.has_health else None
            m = replace(
                m,
                state=State.RUNNING,
                pid=ev.pid,
                started_at=now,
                health=health,
                health_failures=0,
                stop_reason=None,
                after=None,
                killed=False,
                error=None,
            )
            return m, [_log("program.started", pid=ev.pid, attempt=m.attempt)]
        if isinstance(ev, SpawnFailed):
            # starting -> backoff | fatal: could not exec, counts like a crash
            m = replace(m, last_exit=LastExit(ExitStatus(code=127), Reason.EXIT), error=ev.error)
            return _after_failure(m, now, p, rng, _log("program.spawn_failed", error=ev.error))
        if isinstance(ev, HealthResult | MemoryExceeded | Timer):
            return m, []

    elif s is State.RUNNING:
        if isinstance(ev, Exited):
            return _on_exit(m, ev.status, now, p, rng)
        if isinstance(ev, HealthResult):
            return _on_health(m, ev, now, p)
        if isinstance(ev, MemoryExceeded):
            # running -> stopping: over max_memory, restart gracefully
            return _stop(m, p, Reason.MEMORY, After.RESTART, _log("program.memory_exceeded", rss_bytes=ev.rss_bytes))
        if isinstance(ev, Stop):
            # running -> stopping: operator stop, held down
            return _stop(replace(m, held=True), p, Reason.OPERATOR, After.STAY_STOPPED)
        if isinstance(ev, Restart):
            # running -> stopping: restart at once, outside the budget
            return _stop(m, p, ev.reason, After.START_NOW)
        if isinstance(ev, Shutdown):
            return _stop(m, p, Reason.SHUTDOWN, After.STAY_STOPPED)
        if isinstance(ev, Start):
            return m, []  # already running
        if isinstance(ev, Timer):
            return m, []  # a timer of this generation that no longer matters

    elif s is State.STOPPING:
        if isinstance(ev, Exited):
            return _on_stopped(m, ev.status, now, p, rng)
        if isinstance(ev, Timer) and ev.name == "stop_timeout":
            # stopping -> stopping: the ladder's last rung
            return replace(m, killed=True), [
                KillTree(),
                _log("program.kill", pid=m.pid, after_s=p.stop_timeout_s, hint="did not exit on its stop signal"),
            ]
        if isinstance(ev, Stop):
            return replace(m, held=True, after=After.STAY_STOPPED, stop_reason=Reason.OPERATOR), []
        if isinstance(ev, Start | Restart):
            if m.stop_reason is Reason.SHUTDOWN:
                return m, []  # the supervisor is going down; nothing starts again
            return replace(m, held=False, after=After.START_NOW), []
        if isinstance(ev, Shutdown):
            return replace(m, after=After.STAY_STOPPED, stop_reason=Reason.SHUTDOWN), []
        if isinstance(ev, HealthResult | MemoryExceeded | Timer):
            return m, []  # already going down

    elif s is State.BACKOFF:
        if isinstance(ev, Timer) and ev.name == "backoff":
            if m.deps_ok:
                # backoff -> starting: the delay is over
                return _spawn(m)
            # backoff -> pending: a dependency went away meanwhile
            return replace(m, state=State.PENDING), [_log("program.pending", why="dependency unavailable")]
        if isinstance(ev, Start | Restart):
            # backoff -> starting: an operator does not want to wait
            return _spawn(replace(m, held=False), cancel=True)
        if isinstance(ev, Stop | Shutdown):
            # backoff -> stopped
            return replace(m, state=State.STOPPED, held=isinstance(ev, Stop)), [CancelTimers()]
        if isinstance(ev, HealthResult | MemoryExceeded | Timer):
            return m, []

    elif s in (State.STOPPED, State.EXITED, State.FATAL):
        if isinstance(ev, Start | Restart):
            # stopped|exited|fatal -> starting|pending: a fresh budget
            m = replace(m, held=False, attempt=0, restart_times=(), error=None)
            if not m.deps_ok:
                return replace(m, state=State.PENDING), []
            return _spawn(m)
        if isinstance(ev, Stop):
            return replace(m, held=True), []
        if isinstance(ev, Shutdown | HealthResult | MemoryExceeded | Timer):
            return m, []

    raise UnexpectedEvent(f"{type(ev).__name__} in state {s.value}")


def _spawn(m: Model, cancel: bool = False) -> tuple[Model, list[Action]]:
    m = replace(m, state=State.STARTING, generation=m.generation + 1, pid=None)
    actions: list[Action] = [CancelTimers()] if cancel else []
    return m, [*actions, Spawn()]


def _stop(m: Model, p: RestartPolicy, reason: Reason, after: After, *pre: Action) -> tuple[Model, list[Action]]:
    m = replace(m, state=State.STOPPING, stop_reason=reason, after=after, killed=False)
    return m, [
        *pre,
        _log("program.stopping", pid=m.pid, reason=reason.value),
        SignalGroup(),
        SetTimer("stop_timeout", p.stop_timeout_s, m.generation),
    ]


def describe_exit(status: ExitStatus) -> dict[str, object]:
    """Return log fields for an exit: the code or signal name, and a hint at its cause."""
    if status.signal is None:
        return {"code": status.code}
    try:
        name = signal.Signals(status.signal).name
    except ValueError:
        name = f"signal {status.signal}"
    fields: dict[str, object] = {"signal": name}
    if status.signal == signal.SIGKILL:
        fields["hint"] = "killed by SIGKILL, perhaps out of memory"
    elif status.signal == signal.SIGSEGV:
        fields["hint"] = "segmentation fault"
    return fields


def _on_health(m: Model, ev: HealthResult, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
    if ev.ok:
        if m.health != "healthy":
            return replace(m, health="healthy", health_failures=0), [_log("program.healthy", pid=m.pid)]
        return replace(m, health_failures=0), []
    started_at = m.started_at if m.started_at is not None else now
    if now - started_at < p.health_start_period_s:
        return m, []  # failures inside start_period do not count
    failures = m.health_failures + 1
    if failures < p.health_failure_threshold:
        return replace(m, health_failures=failures), [
            _log(
                "program.health_failed",
                pid=m.pid,
                detail=ev.detail,
                failures=failures,
                threshold=p.health_failure_threshold,
            ),
        ]
    # running -> stopping: failure_threshold consecutive failures, restart through the backoff
    m = replace(m, health="unhealthy", health_failures=failures)
    return _stop(
        m,
        p,
        Reason.HEALTH,
        After.RESTART,
        _log(
            "program.unhealthy",
            pid=m.pid,
            detail=ev.detail,
            failures=failures,
            hint="restarting it",
        ),
    )


def _record_exit(m: Model, status: ExitStatus, reason: Reason) -> Model:
    return replace(m, pid=None, last_exit=LastExit(status, reason), health=None if m.health is None else "unknown")


def _stable(m: Model, now: float, p: RestartPolicy) -> Model:
    if m.started_at is not None and now - m.started_at >= p.reset_after_s:
        return replace(m, attempt=0)  # it stayed up long enough: start over at the first delay
    return m


def _on_exit(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random
) -> tuple[Model, list[Action]]:
    pid = m.pid
    m = _stable(_record_exit(m, status, Reason.EXIT), now, p)
    wants_restart = p.policy == "always" or (p.policy == "on-failure" and not status.success)
    exited = describe_exit(status)
    if not wants_restart:
        # running -> exited: its policy does not restart it
        return replace(m, state=State.EXITED), [
            CancelTimers(),
            _log("program.exited", pid=pid, **exited, next=f"stays down (restart policy {p.policy})"),
        ]
    if not m.deps_ok:
        # running -> pending: a dependency is down, do not restart into a certain failure
        return replace(m, state=State.PENDING), [
            CancelTimers(),
            _log("program.exited", pid=pid, **exited, next="waits for its dependencies"),
        ]
    # running -> backoff | fatal: it died
    return _after_failure(m, now, p, rng, _log("program.exited", pid=pid, **exited))


def _on_stopped(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random
) -> tuple[Model, list[Action]]:
    reason = m.stop_reason or Reason.OPERATOR
    m = _record_exit(m, status, reason)
    after = m.after
    m = replace(m, stop_reason=None, after=None)
    if after is After.START_NOW and not m.held:
        # stopping -> starting: an operator restart or a reload, outside the budget
        m = replace(m, restarts=m.restarts + 1)
        if not m.deps_ok:
            return replace(m, state=State.PENDING), [CancelTimers()]
        return _spawn(m, cancel=True)
    if after is After.RESTART and not m.held:
        m = _stable(m, now, p)
        if not m.deps_ok:
            return replace(m, state=State.PENDING), [CancelTimers()]
        # stopping -> backoff | fatal: a health or memory restart spends the budget
        return _after_failure(m, now, p, rng, None)
    # stopping -> stopped
    return replace(m, state=State.STOPPED), [CancelTimers(), _log("program.stopped", reason=reason.value)]


def _after_failure(
    m: Model, now: float, p: RestartPolicy, rng: random.Random, pre: Log | None
) -> tuple[Model, list[Action]]:
    recent = tuple(t for t in m.restart_times if now - t < p.window_s)
    head: list[Action] = [CancelTimers()]
    if pre is not None:
        head.append(pre)
    if len(recent) >= p.max_restarts:
        why = f"more than {p.max_restarts} restarts in {p.window_s:g}s"
        if m.error:
            why += f"; last error: {m.error}"
        # -> fatal: the restart budget is spent
        m = replace(m, state=State.FATAL, restart_times=recent, error=why)
        return m, [*head, _log("program.fatal", why=why), BecameFatal(why)]
    attempt = m.attempt + 1
    delay = p.backoff.delay(attempt, rng)
    m = replace(
        m,
        state=State.BACKOFF,
        attempt=attempt,
        restarts=m.restarts + 1,
        restart_times=(*recent, now),
        generation=m.generation + 1,
    )
    return m, [
        *head,
        _log("program.backoff", restart_in_s=round(delay, 3), attempt=attempt),
        SetTimer("backoff", delay, m.generation),
    ]
