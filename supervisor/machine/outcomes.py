"""What follows a start, an exit or a health report, shared by the states of ``states``.

Pure like ``states``: each function takes the model and returns the next one with its actions.
"""

from __future__ import annotations

import random
from dataclasses import replace

from supervisor.machine import handover
from supervisor.machine.edges import budget_spent, describe_exit, log, record_exit, stop
from supervisor.machine.events import (
    Action,
    BecameFatal,
    CancelTimers,
    ExitStatus,
    HealthResult,
    Log,
    Reason,
    SeekLock,
    SetTimer,
    Spawn,
)
from supervisor.machine.model import After, Health, Lock, Model, RestartPolicy, State


def spawn(m: Model, p: RestartPolicy, cancel: bool = False) -> tuple[Model, list[Action]]:
    """Begin a new incarnation: starting, with a new generation (stale timers are ignored).

    A singleton that does not hold its lock stands by instead, and tries for the lock.
    """
    actions: list[Action] = [CancelTimers()] if cancel else []
    if p.singleton and m.lock is not Lock.HELD:
        # -> standby: another daemon may be running it; try for the lock every second
        if m.lock is not Lock.SEEKING:
            actions += [SeekLock(), log("program.standby", why="another daemon may run it: tries for its lock")]
        m = replace(m, state=State.STANDBY, generation=m.generation + 1, pid=None, started_at=None, lock=Lock.SEEKING)
        return m, actions
    m = replace(m, state=State.STARTING, generation=m.generation + 1, pid=None, started_at=None)
    return m, [*actions, Spawn()]


def spawned(m: Model, pid: int, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
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
    if not p.says_ready and not p.has_health:
        if p.min_uptime_s <= 0:
            # starting -> running: min_uptime = 0, running as soon as spawned
            return replace(m, state=State.RUNNING), actions
        actions.append(SetTimer("min_uptime", p.min_uptime_s, m.generation))
    actions.append(SetTimer("start_timeout", p.start_timeout_s, m.generation))
    return m, actions


def ready(m: Model, now: float, by: str) -> tuple[Model, list[Action]]:
    """Starting -> running, saying what made it ready and after how long."""
    took = round(now - m.started_at, 3) if m.started_at is not None else None
    return replace(m, state=State.RUNNING), [log("program.ready", pid=m.pid, by=by, after_s=took)]


def on_health(m: Model, ev: HealthResult, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
    """Count a check's result; ``failure_threshold`` failures in a row restart the program."""
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


def stable(m: Model, now: float, p: RestartPolicy) -> Model:
    """Reset the attempt counter of a program that stayed up ``reset_after``."""
    if m.started_at is not None and now - m.started_at >= p.reset_after_s:
        return replace(m, attempt=0)  # it stayed up long enough: start over at the first delay
    return m


def on_exit(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random, doubt_s: float = 0.0
) -> tuple[Model, list[Action]]:
    """A starting or running program died on its own (the kernel's OOM killer included)."""
    pid = m.pid
    m, actions = _died(m, status, now, p, rng, doubt_s)
    if status.oom:
        actions = [log("program.oom_killed", pid=pid, hint="its cgroup or the host ran out of memory"), *actions]
    return m, actions


def _died(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random, doubt_s: float = 0.0
) -> tuple[Model, list[Action]]:
    pid = m.pid
    was_running = m.state is State.RUNNING
    m = record_exit(m, status, Reason.OOM if status.oom else Reason.EXIT)
    if was_running:
        m = stable(m, now, p)
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
    if doubt_s > 0:
        # running|starting -> pending: a dependency's probe is under way; its answer says whose exit this was
        return replace(m, state=State.PENDING, exit_deferred=True), [
            CancelTimers(),
            log("program.exited", pid=pid, **exited, next="waits for its dependency's probe before restarting"),
            log("program.exit_deferred", pid=pid, within_s=round(doubt_s, 3)),
            SetTimer("exit_deferred", doubt_s, m.generation),
        ]
    # running|starting -> backoff | starting | fatal: it died, or failed its start
    return after_failure(m, now, p, rng, log("program.exited", pid=pid, **exited))


def on_stopped(
    m: Model, status: ExitStatus, now: float, p: RestartPolicy, rng: random.Random
) -> tuple[Model, list[Action]]:
    """A program we were stopping is gone: start again, back off, or stay stopped."""
    reason = m.stop_reason or Reason.OPERATOR
    m = record_exit(m, status, reason)
    after = m.after
    m = replace(m, stop_reason=None, after=None)
    if after is After.START_NOW and not m.held:
        # stopping -> starting: an operator restart or a reload, outside the budget
        m = replace(m, restarts=m.restarts + 1)
        if not m.deps_ok:
            return replace(m, state=State.PENDING), [CancelTimers()]
        return spawn(m, p, cancel=True)
    if after is After.RESTART and not m.held:
        m = stable(m, now, p)
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
        m, start = spawn(m, p)
        return m, [*head, log("program.restarting", attempt=attempt, restart_in_s=0), *start]
    # Restart n waits initial * factor^(n-2): the first delay belongs to the second restart.
    delay = p.backoff.delay(attempt - 1, rng)
    m = replace(m, state=State.BACKOFF, generation=m.generation + 1)
    return m, [
        *head,
        log("program.backoff", restart_in_s=round(delay, 3), attempt=attempt),
        SetTimer("backoff", delay, m.generation),
    ]
