"""The unit graph: building each unit's runner, the sockets programs listen on, and who blocks whom."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping

from supervisor.config.instances import listen_key
from supervisor.config.settings import Config, ProgramConfig
from supervisor.engine.units.base import Context, Unit
from supervisor.engine.units.dependency import DependencyRunner
from supervisor.engine.units.job import JobRunner
from supervisor.engine.units.program import ProgramRunner
from supervisor.machine.instances import members


def build_unit(
    name: str, cfg: Config, ctx: Context, listeners: Mapping[str, socket.socket], on_job_running: Callable[[bool], None]
) -> Unit:
    """Build the runner for unit ``name`` of ``cfg``."""
    lines = cfg.supervisor.log_lines
    if name in cfg.dependencies:
        return DependencyRunner(name, cfg.dependencies[name], ctx)
    if name in cfg.jobs:
        lock_dep, url_dep = cfg.job_database(name)
        url = url_dep.url if url_dep else None
        return JobRunner(name, cfg.jobs[name], ctx, lock_dep, url, lines, on_running=on_job_running)
    listener = listeners.get(listen_key(name, cfg.programs[name]))  # instances share one
    fd = listener.fileno() if listener else None
    return ProgramRunner(name, cfg.programs[name], ctx, fd, lines, singleton_url(cfg, name))


def singleton_url(cfg: Config, name: str) -> str | None:
    """The url of the postgres dependency that program ``name`` is a singleton on, if it is one."""
    dep = cfg.dependencies.get(cfg.programs[name].singleton or "")
    return dep.url if dep is not None else None


def blocked_by(units: Mapping[str, Unit], depends_on: list[str]) -> list[str]:
    """Return the units named in ``depends_on`` that do not yet let their dependants start."""
    blocked = []
    for name in depends_on:
        for dep in members(name, units):  # a program with instances: every one of them
            if not units[dep].lets_dependants_start():
                blocked.append(dep)
    return blocked


def starting_first(units: Mapping[str, Unit], after: list[str]) -> list[str]:
    """Return the programs named in ``after`` whose start is under way, or due in this same pass.

    Ordering only, as systemd's ``After=``: a start waits for theirs to end (ready, or failed),
    never for their dependencies, and never for a program that is up, stopped or backing off.
    """
    first = []
    for name in (m for each in after for m in members(each, units)):
        unit = units.get(name)
        if isinstance(unit, ProgramRunner) and unit.start_under_way(not blocked_by(units, unit.depends_on)):
            first.append(name)
    return first


def gate_for(units: Mapping[str, Unit], unit: Unit, programs: Mapping[str, ProgramConfig]) -> list[str]:
    """Return what holds ``unit`` back now: its ``depends_on`` not yet done, else the starts it comes after."""
    blocked = blocked_by(units, unit.depends_on)
    prog = programs.get(unit.name)
    if not blocked and prog is not None and prog.after:
        # `after`: its next start waits while theirs is under way (a running one runs on)
        blocked = starting_first(units, prog.after)
    return blocked


def doubt_s(units: Mapping[str, Unit], names: list[str]) -> float:
    """Within how long the probes under way of the dependencies ``names`` answer; 0 when none is."""
    return max((u.doubt_s() for n in names if isinstance(u := units.get(n), DependencyRunner)), default=0.0)
