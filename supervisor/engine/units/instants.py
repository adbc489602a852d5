"""What counts as eligible, started and ready for each kind of unit, read when units report a change."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from supervisor.engine.units.base import Unit
from supervisor.engine.units.dependency import DependencyRunner
from supervisor.engine.units.job import JobRunner
from supervisor.engine.units.program import ProgramRunner
from supervisor.machine.jobstates import RUNNING
from supervisor.machine.model import State
from supervisor.machine.timeline import Timeline


def observe(
    timeline: Timeline,
    units: Iterable[Unit],
    gate_open: Callable[[list[str]], bool],
    at_s: float,
) -> None:
    """Record the first instants that hold now; called on each change the units report.

    A dependency is eligible and started as soon as it is probed, and ready once it lets its
    dependants start. A job is eligible when its ``depends_on`` are done, started when its
    command first runs, and ready once it is over. A program is eligible when its ``depends_on``
    allow it, started when it first has a process, and ready once it runs here and dependants may
    start. A singleton in ``standby`` lets dependants start too, but it has no process here: its
    first standby is kept apart (``standby_s``), so that ready never comes before started, also
    when it gets the lock later.
    """
    for unit in units:
        name = unit.name
        if isinstance(unit, DependencyRunner):
            timeline.mark(name, "eligible_s", at_s)
            timeline.mark(name, "started_s", at_s)
            if unit.ok:
                timeline.mark(name, "ready_s", at_s)
        elif isinstance(unit, JobRunner):
            if unit.state != "pending" or gate_open(unit.cfg.depends_on):
                timeline.mark(name, "eligible_s", at_s)
            if unit.state == RUNNING:
                timeline.mark(name, "started_s", at_s)
            if unit.finished:
                timeline.mark(name, "ready_s", at_s)
        elif isinstance(unit, ProgramRunner):
            if unit.model.deps_ok or gate_open(unit.cfg.depends_on):
                timeline.mark(name, "eligible_s", at_s)
            if unit.model.pid is not None:
                timeline.mark(name, "started_s", at_s)
            if unit.model.state is State.RUNNING:
                timeline.mark(name, "running_s", at_s)
            if unit.model.state is State.STANDBY:
                timeline.mark(name, "standby_s", at_s)
            elif unit.lets_dependants_start():
                timeline.mark(name, "ready_s", at_s)
