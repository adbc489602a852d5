"""Shutdown: every program down its own ladder, each once the programs that need it are down.

Programs on unrelated branches stop side by side, so one program's long ladder never adds to
another's: the whole takes the longest chain of dependants, not the sum of the levels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from supervisor.engine.units.program import ProgramRunner
from supervisor.machine.events import Shutdown


async def stop_all(programs: Mapping[str, ProgramRunner], stop_before: Mapping[str, set[str]]) -> None:
    """Stop every program, each after all that need it are down; return when all are down."""
    down: dict[str, asyncio.Future[None]] = {name: asyncio.get_running_loop().create_future() for name in programs}

    async def stop_one(name: str) -> None:
        try:
            waits = [down[d] for d in stop_before.get(name, ()) if d in down]
            if waits:
                await asyncio.gather(*waits)
            prog = programs[name]
            prog.dispatch(Shutdown())
            await prog.wait_down()
        finally:
            if not down[name].done():
                down[name].set_result(None)

    tasks = [asyncio.ensure_future(stop_one(name)) for name in programs]
    try:
        await asyncio.gather(*tasks)
    finally:  # cancelled at the deadline: no stop may go on behind the kill that follows
        for task in tasks:
            task.cancel()
