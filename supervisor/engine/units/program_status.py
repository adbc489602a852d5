"""A program's entry of the status document, read from its runner."""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.host.process import tree_rss
from supervisor.machine.events import signal_name
from supervisor.machine.model import Model, RestartPolicy, State
from supervisor.machine.status import Handover, LastExit, ProgramEntry


@dataclass(frozen=True)
class Usage:
    """The last background sample of one incarnation's tree (``supervisor.engine.usage``)."""

    pid: int
    cpu_percent: float | None  # None until two samples are apart
    rss_bytes: int


@dataclass(frozen=True)
class Extras:
    """What the status entry shows beyond the model: what the runner knows of its program."""

    autostart: bool
    notify_status: str | None
    waiting_for: list[str]
    usage: Usage | None = None
    policy: RestartPolicy | None = None  # its health check's failure_threshold, where it has one


def program_entry(name: str, m: Model, extras: Extras, now: float, rss: dict[int, int] | None) -> ProgramEntry:
    """Return the entry of program ``name`` at ``now`` (``rss``: session sizes, if known)."""
    last_exit: LastExit | None = None
    if m.last_exit is not None:
        st, reason = m.last_exit.status, m.last_exit.reason.value
        last_exit = (
            {"code": st.code, "reason": reason}
            if st.signal is None
            else {"signal": signal_name(st.signal), "reason": reason}
        )
    running = m.pid is not None and m.started_at is not None
    handover: Handover | None = None
    usage = extras.usage if extras.usage is not None and extras.usage.pid == m.pid else None
    rss_bytes = None
    if m.pid is not None:
        # Fresh when asked for (``rss``, or None: read now), else the last sample's.
        fresh = tree_rss(m.pid) if rss is None else rss.get(m.pid)
        rss_bytes = fresh if fresh is not None else (usage.rss_bytes if usage is not None else None)
    policy = extras.policy
    threshold = policy.health_failure_threshold if policy is not None and policy.has_health else None
    if m.handover_reason is not None:
        handover = {"pid": m.next_pid, "reason": m.handover_reason.value}
    return {
        "name": name,
        "kind": "program",
        "state": m.state.value,
        "pid": m.pid,
        "uptime_s": round(now - m.started_at, 3) if running and m.started_at is not None else None,
        "restarts": m.restarts,
        "health": m.health,
        # Failed checks in a row of the process that runs now: ``health`` says healthy until
        # failure_threshold of them, this says a check fails already.
        "health_failures": m.health_failures if m.pid is not None else 0,
        "health_failure_threshold": threshold,
        "last_exit": last_exit,
        "rss_bytes": rss_bytes,
        "cpu_percent": usage.cpu_percent if usage is not None else None,
        "error": m.error,
        "held": m.held,
        "autostart": extras.autostart,
        "handover": handover,
        "retiring": list(m.retiring),
        "notify_status": extras.notify_status,
        "waiting_for": extras.waiting_for if m.state is State.PENDING else [],
    }
