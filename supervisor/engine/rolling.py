"""One instance after another: the rolling replacement of a program's instances.

``restart web`` and a reload that changes web's definition both replace its instances this way:
each one restarts (start-first where configured), and the next only once it is ``running`` again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from supervisor.engine.units.program import ProgramRunner
from supervisor.machine.model import State


async def settle(prog: ProgramRunner, margin: float = 5.0) -> None:
    """Wait for ``prog``'s restart to play out, bounded by its stop ladder and start timeout."""
    try:
        await asyncio.wait_for(prog.wait_settled(), prog.cfg.stop_total + prog.cfg.start_timeout + margin)
    except TimeoutError:
        pass


def came_back(prog: ProgramRunner) -> bool:
    """Whether ``prog`` is running after its restart (or was stopped by an operator meanwhile)."""
    return prog.model.state is State.RUNNING or prog.model.held


async def roll(units: list[ProgramRunner], restart: Callable[[ProgramRunner], Awaitable[bool]]) -> ProgramRunner | None:
    """Restart ``units`` one at a time; return the first that did not come back running (None: all did).

    ``restart`` restarts one and returns False when the roll must end there (the supervisor stops).
    """
    for unit in units:
        if not await restart(unit):
            return None
        await settle(unit)
        if not came_back(unit):
            return unit
    return None
