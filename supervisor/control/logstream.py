"""``GET /v1/logs``: the captured lines of many units, merged in time order, and following them."""

from __future__ import annotations

import asyncio
import heapq
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from supervisor.units.base import LineBuffer
from supervisor.units.job import JobRunner
from supervisor.units.program import ProgramRunner

if TYPE_CHECKING:
    from supervisor.daemon import Daemon

Line = tuple[float, str, str]
RESCAN_S = 1.0  # while following every unit, how soon a unit added by a reload is picked up


def _buffers(daemon: Daemon) -> dict[str, LineBuffer]:
    return {n: u.buffer for n, u in daemon.units.items() if isinstance(u, ProgramRunner | JobRunner)}


def tail(daemon: Daemon, names: list[str], lines: int) -> tuple[int, dict[str, Any]]:
    """Return the last ``lines`` lines of each named unit (all programs and jobs without names), merged."""
    buffers = _buffers(daemon)
    unknown = [n for n in names if n not in buffers]
    if unknown:
        known = ", ".join(buffers)
        return 404, {"error": f"no program or job named {', '.join(unknown)} (units with output: {known})"}
    chosen = names or list(buffers)
    # Each buffer is already in time order: merge, never re-sort, so one unit's lines keep their order.
    streams = [[(t, n, s, line) for t, s, line in buffers[n].tail(lines)] for n in chosen]
    merged = heapq.merge(*streams, key=lambda row: row[0])
    rows = [{"unit": n, "time": t, "stream": s, "line": line} for t, n, s, line in merged]
    return 200, {"units": chosen, "lines": rows}


class _Tagged:
    """Stands in a unit's follower set and hands its lines, named, to one shared queue."""

    def __init__(self, name: str, queue: asyncio.Queue[tuple[str, Line]]) -> None:
        self.name = name
        self.queue = queue

    def full(self) -> bool:
        """Whether the shared queue is full (the line is then lost, never the supervisor)."""
        return self.queue.full()

    def put_nowait(self, item: Line) -> None:
        """Queue one line of this unit."""
        self.queue.put_nowait((self.name, item))


async def follow(daemon: Daemon, names: list[str], send: Callable[[bytes], Awaitable[None]]) -> None:
    """Stream new lines of the named units (every unit, including ones a reload adds) as JSON lines."""
    queue: asyncio.Queue[tuple[str, Line]] = asyncio.Queue(maxsize=10_000)
    joined: dict[str, tuple[LineBuffer, _Tagged]] = {}

    def join() -> list[tuple[str, Line]]:
        """Follow every unit not yet followed; return the lines that new ones printed before."""
        early: list[tuple[str, Line]] = []
        for name, buffer in _buffers(daemon).items():
            if (names and name not in names) or (name in joined and joined[name][0] is buffer):
                continue
            if joined or name in joined:  # a unit born after we began: its first lines too
                early.extend((name, item) for item in buffer.tail(len(buffer.lines)))
            tagged = _Tagged(name, queue)
            buffer.followers.add(cast("asyncio.Queue[Line]", tagged))
            joined[name] = (buffer, tagged)
        return early

    loop = asyncio.get_running_loop()
    join()
    scan_at = loop.time() + RESCAN_S
    try:
        while True:
            if loop.time() >= scan_at:  # even while lines keep coming
                for item in join():
                    if not queue.full():
                        queue.put_nowait(item)
                scan_at = loop.time() + RESCAN_S
            try:
                name, (t, s, line) = await asyncio.wait_for(queue.get(), max(0.0, scan_at - loop.time()))
            except TimeoutError:
                continue
            await send((json.dumps({"unit": name, "time": t, "stream": s, "line": line}) + "\n").encode())
    except (ConnectionError, RuntimeError):
        return
    finally:
        for buffer, tagged in joined.values():
            buffer.followers.discard(cast("asyncio.Queue[Line]", tagged))
