"""A singleton's advisory lock in the program machine: taking it, fencing on its loss, letting it go.

Pure like ``states``. The daemon whose lock session holds the program's key runs it; every other
daemon keeps it in ``standby`` (``outcomes.spawn`` puts it there) and tries again every second.
The argument that two copies never overlap is in ``docs/replicas.md``; this module holds its
daemon-side half: a copy runs only while the lock is held, and once the lock connection fails the
copy is SIGKILLed no later than ``fence_s`` after the last query that went through.
"""

from __future__ import annotations

from dataclasses import replace

from supervisor.machine.edges import ladder_s, log, stop
from supervisor.machine.events import Action, LockAcquired, LockLost, Reason, ReleaseLock, SetTimer
from supervisor.machine.model import DOWN_STATES, After, Lock, Model, RestartPolicy, State
from supervisor.machine.outcomes import spawn

Result = tuple[Model, list[Action]]


def acquired(m: Model, ev: LockAcquired, p: RestartPolicy) -> Result:
    """The lock is ours: start the program, after ``wait_s`` when Postgres itself is young."""
    if m.state is not State.STANDBY or m.lock is not Lock.SEEKING:
        return m, [ReleaseLock()]  # nobody asked for it any more: let it go at once
    m = replace(m, lock=Lock.HELD)
    if ev.wait_s > 0:
        # standby -> standby: a Postgres younger than the fence may have dropped a holder still fencing
        why = "the database restarted less than singleton_fence ago"
        return m, [
            log("program.lock_acquired", wait_s=round(ev.wait_s, 3), why=why),
            SetTimer("lock_wait", ev.wait_s, m.generation),
        ]
    # standby -> starting: the lock is ours
    m, start = spawn(m, p)
    return m, [log("program.lock_acquired"), *start]


def lost(m: Model, ev: LockLost, now: float, p: RestartPolicy) -> Result:
    """The lock connection failed: whatever copy runs gets SIGKILL by ``contact_at + fence_s``."""
    if m.lock is not Lock.HELD:
        return m, []  # a report about a lock already let go
    m = replace(m, lock=Lock.LOST)
    # A closed connection means the lock is free already: another daemon may start within a
    # second, so the copy gets SIGKILL at once. A silent one leaves the fence to run out.
    kill_in = 0.0 if ev.gone else max(0.0, ev.contact_at + p.fence_s - now)
    pre = log("program.fenced", pid=m.pid, detail=ev.detail, kill_in_s=round(kill_in, 3))
    if m.state in (State.STARTING, State.RUNNING) and m.pid is not None:
        # running|starting -> stopping: fenced; its stop signal now, SIGKILL when the fence runs out
        m, actions = stop(m, p, Reason.FENCE, After.START_NOW, pre)
        return _kill_by(m, p, [a for a in actions if not isinstance(a, SetTimer)], min(ladder_s(p), kill_in))
    if m.state is State.STOPPING:
        if m.killed:
            return m, [pre]  # SIGKILL went already
        # stopping -> stopping: the fence's deadline ends the ladder
        return _kill_by(m, p, [pre], kill_in)
    # backoff|standby|starting before its spawn -> standby: no copy runs, try for the lock again
    m, actions = spawn(m, p, cancel=True)
    return m, [pre, *actions]


def _kill_by(m: Model, p: RestartPolicy, actions: list[Action], delay_s: float) -> Result:
    # The ladder's last rung: when stop_timeout fires, SIGKILL goes to the tree.
    m = replace(m, rung=len(p.ladder()) - 1)
    return m, [*actions, SetTimer("stop_timeout", delay_s, m.generation)]


def settle(m: Model, actions: list[Action]) -> Result:
    """A singleton that is down, or waits for its dependencies, lets its lock go (its copy is gone)."""
    if m.lock is not Lock.NONE and (m.state in DOWN_STATES or m.state is State.PENDING):
        return replace(m, lock=Lock.NONE), [*actions, ReleaseLock()]
    return m, actions
