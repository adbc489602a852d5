"""The start-first handover, pure: a new incarnation starts beside the serving one.

The serving incarnation keeps the model's ``pid`` and its state (``running``)
until the candidate (``next_pid``) is ready: its own ``READY=1``, or its own
passing ``file`` check. Then the two swap, and the old one goes down its stop
ladder (``Retire``). A candidate that exits, or is not ready within
``start_timeout``, is retired instead, and the old one keeps serving.
"""

from __future__ import annotations

import random
from dataclasses import replace

from supervisor.machine.edges import abandon, budget_spent, describe_exit, log, record_exit, stop
from supervisor.machine.events import (
    Action,
    Event,
    Exited,
    HealthResult,
    Ready,
    Reason,
    Retire,
    SetTimer,
    Spawn,
    Spawned,
    SpawnFailed,
    Timer,
)
from supervisor.machine.model import After, Health, LastExit, Model, RestartPolicy, State


def applies(m: Model, p: RestartPolicy) -> bool:
    """Whether a restart now starts the new incarnation beside the old one."""
    return p.start_first and m.state is State.RUNNING and m.pid is not None


def concerns(m: Model, ev: Event) -> bool:
    """Whether ``ev`` is about a candidate, a retiring process, or the old one dying mid-handover."""
    if isinstance(ev, Spawned | SpawnFailed):
        return ev.candidate
    if isinstance(ev, Timer):
        return ev.name == "handover_timeout"
    if isinstance(ev, Exited):
        if ev.pid is not None and ev.pid != m.pid:
            return True
        return m.next_pid is not None
    if isinstance(ev, Ready | HealthResult):
        return ev.pid is not None and ev.pid != m.pid
    return False


def begin(m: Model, p: RestartPolicy, reason: Reason, now: float, *pre: Action) -> tuple[Model, list[Action]]:
    """Start a candidate beside the serving incarnation (a second restart replaces the candidate)."""

    if reason in (Reason.HEALTH, Reason.MEMORY):
        recent = budget_spent(m, now, p)
        if recent is None:
            # The budget is spent: go down the ordinary way, which ends in fatal.
            return stop(m, p, reason, After.RESTART, *pre)
        m = replace(m, restart_times=(*recent, now))
    m, retire = abandon(m)
    hid = m.handover_id + 1
    m = replace(m, handover_id=hid, handover_reason=reason, error=None)
    return m, [
        *pre,
        *retire,
        log("program.handover", pid=m.pid, reason=reason.value, next="starting the new incarnation beside it"),
        Spawn(candidate=True),
        SetTimer("handover_timeout", p.start_timeout_s, hid),
    ]


def transition(m: Model, ev: Event, now: float, p: RestartPolicy, rng: random.Random) -> tuple[Model, list[Action]]:
    """The handover's edges; ``states.transition`` hands over every event ``concerns`` names."""

    if isinstance(ev, Spawned):
        if m.handover_reason is None:
            return replace(m, retiring=(*m.retiring, ev.pid)), [Retire(ev.pid)]  # nobody wants it any more
        m = replace(m, next_pid=ev.pid, next_started_at=now)
        actions: list[Action] = [log("program.handover_started", pid=m.pid, candidate_pid=ev.pid)]
        if not p.says_ready and not p.has_health:
            return _promote(m, now, p, actions)
        return m, actions
    if isinstance(ev, SpawnFailed):
        return _fail(m, f"the new incarnation could not start: {ev.error}")
    if isinstance(ev, Ready):
        if ev.pid == m.next_pid and p.says_ready:
            return _promote(m, now, p, [])
        return m, []
    if isinstance(ev, HealthResult):
        if ev.pid == m.next_pid and ev.ok:
            return _promote(m, now, p, [])
        return m, []
    if isinstance(ev, Timer):
        if m.next_pid is None and m.handover_reason is None:
            return m, []
        why = f"the new incarnation was not ready within {p.start_timeout_s:g}s"
        m, retire = abandon(m)
        return _fail(m, why, *retire)
    assert isinstance(ev, Exited)
    if ev.pid is not None and ev.pid != m.pid and ev.pid != m.next_pid:
        if ev.pid not in m.retiring:
            return m, []  # a process we no longer track
        m = replace(m, retiring=tuple(r for r in m.retiring if r != ev.pid))
        if ev.pid == m.replaced_pid and m.replaced_reason is not None:
            # As a stop-first restart shows it: the replaced incarnation's exit, and why it went.
            m = replace(m, last_exit=LastExit(ev.status, m.replaced_reason), replaced_pid=None, replaced_reason=None)
        return m, [log("program.retired", pid=ev.pid, **describe_exit(ev.status))]
    if ev.pid is not None and ev.pid == m.next_pid:
        m = replace(m, next_pid=None, next_started_at=None)
        return _fail(m, "the new incarnation exited before it was ready: " + _exit_words(ev))
    return _old_died(m, ev, now, p)


def _exit_words(ev: Exited) -> str:

    return ", ".join(f"{k} {v}" for k, v in describe_exit(ev.status).items())


def _fail(m: Model, why: str, *pre: Action) -> tuple[Model, list[Action]]:

    m = replace(m, handover_reason=None, handover_id=m.handover_id + 1, error=f"restart failed: {why}")
    return m, [*pre, log("program.handover_failed", pid=m.pid, why=why, next="the old incarnation keeps serving")]


def _candidate_takes_over(m: Model, state: State, health: Health | None, started_at: float | None) -> Model:
    """The candidate becomes the program's incarnation; the handover is over."""
    return replace(
        m,
        state=state,
        pid=m.next_pid,
        started_at=started_at,
        generation=m.generation + 1,
        health=health,
        health_failures=0,
        restarts=m.restarts + 1,
        next_pid=None,
        next_started_at=None,
        handover_reason=None,
        handover_id=m.handover_id + 1,
    )


def _promote(m: Model, now: float, p: RestartPolicy, actions: list[Action]) -> tuple[Model, list[Action]]:
    """The candidate is ready: it becomes the program, and the old one retires."""
    old, reason = m.pid, m.handover_reason or Reason.OPERATOR
    took = round(now - m.next_started_at, 3) if m.next_started_at is not None else None
    m = _candidate_takes_over(m, State.RUNNING, Health.HEALTHY if p.has_health else None, m.next_started_at)
    m = replace(
        m,
        retiring=(*m.retiring, old) if old is not None else m.retiring,
        replaced_pid=old,
        replaced_reason=reason,
        error=None,
    )
    done = log("program.handover_done", pid=m.pid, old_pid=old, ready_after_s=took, reason=reason.value)
    return m, [*actions, done, *([Retire(old)] if old is not None else [])]


def _old_died(m: Model, ev: Exited, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
    """The serving incarnation died mid-handover: the candidate takes over, still starting."""
    old = m.pid
    m = record_exit(m, ev.status, Reason.EXIT)
    started = m.next_started_at if m.next_started_at is not None else now
    m = _candidate_takes_over(m, State.STARTING, Health.UNKNOWN if p.has_health else None, started)
    left_s = max(0.1, p.start_timeout_s - (now - started))
    return m, [
        log("program.exited", pid=old, **describe_exit(ev.status), next="the new incarnation takes over"),
        SetTimer("start_timeout", left_s, m.generation),
    ]
