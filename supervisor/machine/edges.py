"""The edges that the program machine (``states``) and the handover (``handover``) share."""

from __future__ import annotations

import signal
from dataclasses import replace

from supervisor.machine.events import Action, ExitStatus, Log, Reason, Retire, SendStop, SetTimer, signal_name
from supervisor.machine.model import After, Health, LastExit, Model, RestartPolicy, State


def log(event: str, **fields: object) -> Log:
    """Return a ``Log`` action."""
    return Log(event, tuple(fields.items()))


def describe_exit(status: ExitStatus) -> dict[str, object]:
    """Return log fields for an exit: the code or signal name, and a hint at its cause."""
    if status.signal is None:
        return {"code": status.code}
    fields: dict[str, object] = {"signal": signal_name(status.signal)}
    if status.oom:
        fields["hint"] = "killed by the kernel's OOM killer"
    elif status.signal == signal.SIGKILL and status.oom is False:
        fields["hint"] = "killed by SIGKILL, not by the OOM killer (its counters did not move)"
    elif status.signal == signal.SIGKILL:
        fields["hint"] = "killed by SIGKILL, perhaps out of memory"
    elif status.signal == signal.SIGSEGV:
        fields["hint"] = "segmentation fault"
    return fields


def record_exit(m: Model, status: ExitStatus, reason: Reason) -> Model:
    """Keep an exit as the last one and forget the process."""
    return replace(m, pid=None, last_exit=LastExit(status, reason), health=None if m.health is None else Health.UNKNOWN)


def budget_spent(m: Model, now: float, p: RestartPolicy) -> tuple[float, ...] | None:
    """Return the restarts inside the window, or None when another restart would exceed the budget."""
    recent = tuple(t for t in m.restart_times if now - t < p.window_s)
    return None if len(recent) >= p.max_restarts else recent


def abandon(m: Model) -> tuple[Model, list[Action]]:
    """Give up a handover in progress: its candidate, if any, goes down."""
    if m.handover_reason is None and m.next_pid is None:
        return m, []
    actions: list[Action] = []
    retiring = m.retiring
    if m.next_pid is not None:
        retiring = (*retiring, m.next_pid)
        actions = [log("program.handover_abandoned", candidate_pid=m.next_pid), Retire(m.next_pid)]
    m = replace(
        m, next_pid=None, next_started_at=None, handover_reason=None, handover_id=m.handover_id + 1, retiring=retiring
    )
    return m, actions


def ladder_s(p: RestartPolicy) -> float:
    return round(sum(wait for _, wait in p.ladder()), 3)


def stop(m: Model, p: RestartPolicy, reason: Reason, after: After, *pre: Action) -> tuple[Model, list[Action]]:
    """Send the main process down its stop ladder's first rung."""
    m, retire = abandon(m)
    sig, wait_s = p.ladder()[0]
    m = replace(m, state=State.STOPPING, stop_reason=reason, after=after, killed=False, rung=0)
    return m, [
        *pre,
        *retire,
        log("program.stopping", pid=m.pid, reason=reason.value, signal=signal_name(sig)),
        SendStop(sig, p.stop_group),
        SetTimer("stop_timeout", wait_s, m.generation),
    ]
