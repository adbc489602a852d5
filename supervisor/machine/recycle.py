"""Recycling, pure: a program is restarted once it reaches ``max_age``, outside the restart budget.

A leaky worker is replaced before it is a problem, as circus ``max_age``, systemd
``RuntimeMaxSec=`` and gunicorn ``max_requests_jitter`` do. Each incarnation's age counts from
its spawn; the jitter (a fraction of ``max_age``, added) keeps replicas started together from
recycling together.
"""

from __future__ import annotations

import random

from supervisor.machine import handover
from supervisor.machine.edges import log, stop
from supervisor.machine.events import Action, Reason, SetTimer
from supervisor.machine.model import After, Model, RestartPolicy, State


def arm(before: Model, after: Model, now: float, p: RestartPolicy, rng: random.Random) -> list[Action]:
    """Set the ``max_age`` timer when an incarnation has just become the running one; else nothing."""
    if p.max_age_s <= 0 or after.state is not State.RUNNING or after.started_at is None:
        return []
    if before.state is State.RUNNING and before.generation == after.generation:
        return []  # the same incarnation: its timer is set already
    age_s = p.max_age_s * (1.0 + p.max_age_jitter * rng.random())
    return [SetTimer("max_age", max(0.0, age_s - (now - after.started_at)), after.generation)]


def due(m: Model, now: float, p: RestartPolicy) -> tuple[Model, list[Action]]:
    """The running incarnation reached its age: replace it, start-first where so configured."""
    if m.handover_reason is not None or m.next_pid is not None:
        # A restart is under way: its incarnation gets a timer of its own. Should it fail, this
        # one keeps serving, and is tried again one max_age later.
        return m, [SetTimer("max_age", p.max_age_s, m.generation)]
    age_s = round(now - m.started_at, 3) if m.started_at is not None else None
    pre = log("program.max_age", pid=m.pid, age_s=age_s, max_age_s=p.max_age_s, next="restarting it")
    if handover.applies(m, p):
        # The same retry as above, should the new incarnation not become ready.
        m, actions = handover.begin(m, p, Reason.MAX_AGE, now, pre)
        return m, [*actions, SetTimer("max_age", p.max_age_s, m.generation)]
    # running -> stopping: old enough; started again at once, outside the budget
    return stop(m, p, Reason.MAX_AGE, After.START_NOW, pre)
