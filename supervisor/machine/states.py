"""A program's life as a pure function: ``transition(model, event, now, policy, rng)``.

The runner turns everything that happens into an event, calls ``transition``
and executes the actions it returns. Nothing here reads a clock, touches a
process or imports asyncio, so every edge is tested with scripted histories.
The start-first handover (two incarnations side by side) lives in ``handover``.
"""

from __future__ import annotations

import random
from dataclasses import replace

from supervisor.machine import handover
from supervisor.machine.edges import budget_spent, describe_exit, ladder_s, log, record_exit, stop
from supervisor.machine.events import (
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
    Ready,
    Reason,
    Restart,
    SendStop,
    SetTimer,
    Shutdown,
    Spawn,
    Spawned,
    SpawnFailed,
    Start,
    Stop,
    Timer,
    signal_name,
)
from supervisor.machine.model import DOWN_STATES, After, Health, LastExit, Model, RestartPolicy, State

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


def transition(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> tuple[Model, list[Action]]:
    """Return the next model and the actions to carry out for event ``ev`` at ``now``."""
    s = m.state

    # Events every state treats alike.
    if isinstance(ev, Timer):
        current = m.handover_id if ev.name == "handover_timeout" else m.generation
        if ev.generation != current:
            return m, []  # a stale timer from an earlier incarnation: ignored
    if isinstance(ev, DepsChanged):
        m = replace(m, deps_ok=ev.ok)
        if s is State.PENDING and ev.ok and not m.held:
            # pending -> starting: its dependencies are back
            return _spawn(m)
        return m, []  # a running program keeps running; a crash will wait in pending
    if isinstance(ev, Restart) and ev.reason is Reason.RELOAD and m.held:
        return m, []  # an operator's stop outlives a reload
    if handover.concerns(m, ev):
        return handover.transition(m, ev, now, p, rng)

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
        if isinstance(ev, HealthResult | MemoryExceeded | Timer | Ready):
            return m, []  # late reports about an incarnation already gone

    elif s is State.STARTING:
        if m.pid is None:
            if isinstance(ev, Spawned):
                return _spawned(m, ev.pid, now, p)
            if isinstance(ev, SpawnFailed):
                # starting -> backoff | fatal: could not exec, counts like a crash
                m = replace(m, last_exit=LastExit(ExitStatus(code=127), Reason.EXIT), error=ev.error)
                return after_failure(m, now, p, rng, log("program.spawn_failed", error=ev.error))
            if isinstance(ev, HealthResult | MemoryExceeded | Timer | Ready):
                return m, []
        else:
            if isinstance(ev, Timer) and ev.name == "min_uptime":
                # starting -> running: stayed up min_uptime
                return _ready(m, now, "min_uptime")
            if isinstance(ev, Ready):
                # starting -> running: READY=1 from this incarnation
                return _ready(m, now, "notify") if p.notify else (m, [])
            if isinstance(ev, HealthResult) and ev.ok:
                # starting -> running: its first passing check
                m, actions = _ready(replace(m, health=Health.HEALTHY, health_failures=0), now, "health")
                return m, actions
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

    elif s is State.RUNNING:
        if isinstance(ev, Ready):
            return m, []  # a repeated READY=1
        return _alive(m, ev, now, p, rng)

    elif s is State.STOPPING:
        if isinstance(ev, Exited):
            return _on_stopped(m, ev.status, now, p, rng)
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
            return replace(m, killed=True), [
                KillTree(),
                log("program.kill", pid=m.pid, after_s=ladder_s(p), hint="did not exit on its stop signal"),
            ]
        if isinstance(ev, Stop):
            return replace(m, held=True, after=After.STAY_STOPPED, stop_reason=Reason.OPERATOR), []
        if isinstance(ev, Start | Restart):
            if m.stop_reason is Reason.SHUTDOWN:
                return m, []  # the supervisor is going down; nothing starts again
            return replace(m, held=False, after=After.START_NOW), []
        if isinstance(ev, Shutdown):
            return replace(m, after=After.STAY_STOPPED, stop_reason=Reason.SHUTDOWN), []
        if isinstance(ev, HealthResult | MemoryExceeded | Timer | Ready):
            return m, []  # already going down

    elif s is State.BACKOFF:
        if isinstance(ev, Timer) and ev.name == "backoff":
            if m.deps_ok:
                # backoff -> starting: the delay is over
                return _spawn(m)
            # backoff -> pending: a dependency went away meanwhile
            return replace(m, state=State.PENDING), [
                log("program.pending", why="waits for a dependency, or for a start it comes after")
            ]
        if isinstance(ev, Start | Restart):
            # backoff -> starting: an operator does not want to wait
            return _spawn(replace(m, held=False), cancel=True)
        if isinstance(ev, Stop | Shutdown):
            # backoff -> stopped
            return replace(m, state=State.STOPPED, held=isinstance(ev, Stop)), [CancelTimers()]
        if isinstance(ev, HealthResult | MemoryExceeded | Timer | Ready):
            return m, []

    elif s in DOWN_STATES:
        if isinstance(ev, Start | Restart):
            # stopped|exited|fatal -> starting|pending: a fresh budget
            m = replace(m, held=False, attempt=0, restart_times=(), error=None)
            if not m.deps_ok:
                return replace(m, state=State.PENDING), []
            return _spawn(m)
        if isinstance(ev, Stop):
            return replace(m, held=True), []
        if isinstance(ev, Shutdown | HealthResult | MemoryExceeded | Timer | Ready):
            return m, []

    raise UnexpectedEvent(f"{type(ev).__name__} in state {s.value}")


def _alive(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> tuple[Model, list[Action]]:
    """What a starting (spawned) or running program does with everything else."""
    if isinstance(ev, Exited):
        return _on_exit(m, ev.status, now, p, rng)
    if isinstance(ev, HealthResult):
        return _on_health(m, ev, now, p)
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


def _spawn(m: Model, cancel: bool = False) -> tuple[Model, list[Action]]:
    m = replace(m, state=State.STARTING, generation=m.generation + 1, pid=None, started_at=None)
    actions: list[Action] = [CancelTimers()] if cancel else []
    return m, [*actions, Spawn()]


def _spawned(m: Model, pid: int, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
    """A new incarnation exists; it is ready at once only without any readiness to wait for."""
    m = replace(
        m,
        pid=pid,
        started_at=now,
        health=Health.UNKNOWN if p.has_health else None,
        health_failures=0,
        stop_reason=None,
        after=None,
        killed=False,
        rung=0,
        error=None,
    )
    actions: list[Action] = [log("program.started", pid=pid, attempt=m.attempt)]
    if not p.notify and not p.has_health:
        if p.min_uptime_s <= 0:
            # starting -> running: min_uptime = 0, running as soon as spawned
            return replace(m, state=State.RUNNING), actions
        actions.append(SetTimer("min_uptime", p.min_uptime_s, m.generation))
    actions.append(SetTimer("start_timeout", p.start_timeout_s, m.generation))
    return m, actions


def _ready(m: Model, now: float, by: str) -> tuple[Model, list[Action]]:
    took = round(now - m.started_at, 3) if m.started_at is not None else None
    return replace(m, state=State.RUNNING), [log("program.ready", pid=m.pid, by=by, after_s=took)]


def _on_health(m: Model, ev: HealthResult, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
    if ev.ok:
        if m.health is not Health.HEALTHY:
            return replace(m, health=Health.HEALTHY, health_failures=0), [log("program.healthy", pid=m.pid)]
        return replace(m, health_failures=0), []
    started_at = m.started_at if m.started_at is not None else now
    if now - started_at < p.health_start_period_s:
        return m, []  # failures inside start_period do not count
    failures = m.health_failures + 1
    if failures < p.health_failure_threshold:
        return replace(m, health_failures=failures), [
            log(
                "program.health_failed",
                pid=m.pid,
                detail=ev.detail,
                failures=failures,
                threshold=p.health_failure_threshold,
            ),
        ]
    m = replace(m, health=Health.UNHEALTHY, health_failures=failures)
    pre = log("program.unhealthy", pid=m.pid, detail=ev.detail, failures=failures, hint="restarting it")
    if handover.applies(m, p):
        return handover.begin(m, p, Reason.HEALTH, now, pre)
    # running -> stopping: failure_threshold consecutive failures, restart through the backoff
    return stop(m, p, Reason.HEALTH, After.RESTART, pre)


def _stable(m: Model, now: float, p: RestartPolicy) -> Model:
    if m.started_at is not None and now - m.started_at >= p.reset_after_s:
        return replace(m, attempt=0)  # it stayed up long enough: start over at the first delay
    return m


def _on_exit(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random
) -> tuple[Model, list[Action]]:
    pid = m.pid
    was_running = m.state is State.RUNNING
    m = record_exit(m, status, Reason.EXIT)
    if was_running:
        m = _stable(m, now, p)
    exited = describe_exit(status)
    if status.signal is None and status.code in p.no_restart_codes:
        # running|starting -> fatal: an exit that no restart can fix (EX_CONFIG and the like)
        why = f"exited with code {status.code}, which no restart can fix (restart.no_restart_exit_codes)"
        m = replace(m, state=State.FATAL, error=why)
        gone = log("program.exited", pid=pid, **exited)
        return m, [CancelTimers(), gone, log("program.fatal", why=why), BecameFatal(why)]
    wants_restart = p.policy == "always" or (p.policy == "on-failure" and not p.succeeded(status))
    if not wants_restart:
        # running -> exited: its policy does not restart it
        return replace(m, state=State.EXITED), [
            CancelTimers(),
            log("program.exited", pid=pid, **exited, next=f"stays down (restart policy {p.policy})"),
        ]
    if not m.deps_ok:
        # running -> pending: a dependency is down, do not restart into a certain failure
        return replace(m, state=State.PENDING), [
            CancelTimers(),
            log("program.exited", pid=pid, **exited, next="waits for its dependencies, or for a start it comes after"),
        ]
    # running|starting -> backoff | starting | fatal: it died, or failed its start
    return after_failure(m, now, p, rng, log("program.exited", pid=pid, **exited))


def _on_stopped(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random
) -> tuple[Model, list[Action]]:
    reason = m.stop_reason or Reason.OPERATOR
    m = record_exit(m, status, reason)
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
        # stopping -> backoff | fatal: a health, memory or start-timeout restart spends the budget
        return after_failure(m, now, p, rng, None)
    # stopping -> stopped
    return replace(m, state=State.STOPPED), [CancelTimers(), log("program.stopped", reason=reason.value)]


def after_failure(
    m: Model, now: float, p: RestartPolicy, rng: random.Random, pre: Log | None
) -> tuple[Model, list[Action]]:
    """Restart through the budget: at once the first time, then after the backoff; or give up."""
    recent = budget_spent(m, now, p)
    head: list[Action] = [CancelTimers()]
    if pre is not None:
        head.append(pre)
    if recent is None:
        why = f"more than {p.max_restarts} restarts in {p.window_s:g}s"
        if m.error:
            why += f"; last error: {m.error}"
        # -> fatal: the restart budget is spent
        m = replace(m, state=State.FATAL, error=why)
        return m, [*head, log("program.fatal", why=why), BecameFatal(why)]
    attempt = m.attempt + 1
    m = replace(m, attempt=attempt, restarts=m.restarts + 1, restart_times=(*recent, now))
    if attempt == 1:
        # -> starting: the first restart after a stable run is at once
        m, spawn = _spawn(m)
        return m, [*head, log("program.restarting", attempt=attempt, restart_in_s=0), *spawn]
    # Restart n waits initial * factor^(n-2): the first delay belongs to the second restart.
    delay = p.backoff.delay(attempt - 1, rng)
    m = replace(m, state=State.BACKOFF, generation=m.generation + 1)
    return m, [
        *head,
        log("program.backoff", restart_in_s=round(delay, 3), attempt=attempt),
        SetTimer("backoff", delay, m.generation),
    ]
