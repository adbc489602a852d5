"""A program's instances at run time: the rolling restart of ``restart X``, and ``scale X N``.

``X`` with ``instances`` is the units ``X:0`` ... ``X:N-1`` (``supervisor.config.instances``).
A rolling restart replaces them one at a time, each only once the one before is ``running``
again, so that N-1 of them serve throughout (and with start-first, N). Scaling is a reload of
the running configuration with another count: its diff starts the new instances, stops the
highest indexes, and leaves the others alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from supervisor.config.instances import rescale
from supervisor.config.settings import Loaded
from supervisor.engine.pacing import Pace
from supervisor.engine.reload import ReloadHost, apply_reload
from supervisor.engine.rolling import roll
from supervisor.engine.target import Conflict, NotFound, Refused, ScaleDone
from supervisor.engine.units.program import ProgramRunner
from supervisor.machine.events import Reason, Restart
from supervisor.machine.instances import MAX_INSTANCES
from supervisor.machine.status import ProgramEntry

T = TypeVar("T")


class InstanceHost(ReloadHost, Protocol):
    """What a rolling restart and a scale need of the daemon."""

    loaded: Loaded
    pace: Pace  # its gating passes: the new instances start in those

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` in the main loop's task."""
        ...


async def rolling_restart(
    d: InstanceHost, group: str, targets: list[ProgramRunner], reason: Reason = Reason.OPERATOR
) -> list[ProgramEntry]:
    """Restart ``targets`` one at a time, each once the one before is ``running``; stop at one that is not.

    Each instance restarts as its program is configured, start-first included: the old process
    serves until the new one is ready.
    """
    d.log.info("program.rolling_restart", program=group, instances=[p.name for p in targets])

    async def restart(prog: ProgramRunner) -> bool:
        async def dispatch() -> None:
            d.log.info("control.request", program=prog.name, action="restart", rolling=group)
            prog.dispatch(Restart(reason))

        await d.call(dispatch)
        return True

    stuck = await roll(targets, restart)
    if stuck is not None:
        left = [p.name for p in targets[targets.index(stuck) + 1 :]]
        why = f"{stuck.name} is {stuck.model.state.value} after its restart"
        d.log.warning("program.rolling_restart_stopped", program=group, why=why, left_as_they_were=left)
        rest = f"; {', '.join(left)} left as they were" if left else ""
        raise Conflict(f"rolling restart of {group} stopped: {why}{rest}", [p.status() for p in targets])
    d.log.info("program.rolling_restart_done", program=group)
    return [p.status() for p in targets]


def check_scale(loaded: Loaded, name: str, count: object, known: list[str]) -> int:
    """Return ``count`` if program ``name`` may be scaled to it, else raise ``Refused`` (400) or ``NotFound`` (404)."""
    if name not in loaded.config.templates:
        if (base := loaded.config.programs[name].instance_of if name in loaded.config.programs else None) is not None:
            raise Refused(f"{name} is an instance of {base}: scale {base} itself (supervisor scale {base} N)")
        if name in loaded.config.programs:
            raise Refused(f"{name} has no instances: set instances = N in [programs.{name}] to scale it")
        raise NotFound(f"no program named {name!r} (programs: {', '.join(known)})")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_INSTANCES:
        raise Refused(
            f"instances must be a whole number from 1 to {MAX_INSTANCES} (got {count!r}); stop {name} stops them all"
        )
    return count


async def scale(d: InstanceHost, name: str, count: int) -> ScaleDone:
    """Run ``count`` instances of ``name``: start the new ones, stop the highest indexes, leave the rest."""

    before: dict[str, ProgramRunner] = {}

    async def apply() -> tuple[int, list[str], list[str]]:
        was = d.loaded.config.templates[name].instances or 0
        before.update({n: u for n, u in d.units.items() if isinstance(u, ProgramRunner)})
        result = apply_reload(d, rescale(d.loaded, name, count), event=None)
        if not result["ok"]:
            raise Conflict(result.get("error", "the scale was refused"))
        added, removed = result.get("added", []), result.get("removed", [])
        d.log.info("program.scaled", program=name, was=was, instances=count, added=added, removed=removed)
        return was, added, removed

    was, added, removed = await d.call(apply)

    async def up(unit: ProgramRunner) -> None:
        await d.pace.complete()  # gated at least once: hundreds are started over several passes
        await unit.wait_settled()

    # Bounded waits: the new ones up (or failed), the ones gone down.
    waits = [up(u) for n in added if isinstance(u := d.units.get(n), ProgramRunner)]
    waits += [before[n].wait_down() for n in removed]
    if waits:
        group = [p for p in before.values() if p.cfg.instance_of == name]
        bound = max(p.cfg.stop_total + p.cfg.start_timeout for p in group) + 5.0
        await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=bound)
    units: dict[str, Any] = d.units
    programs = [u.status() for n, u in units.items() if isinstance(u, ProgramRunner) and u.cfg.instance_of == name]
    return {"program": name, "instances": count, "was": was, "added": added, "removed": removed, "programs": programs}
