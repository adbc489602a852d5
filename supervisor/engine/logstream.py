"""The captured lines of many units: the last ones merged in time order, and following new ones."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import cast

from supervisor.engine.target import LogRow, LogTail, NotFound
from supervisor.engine.units.base import LineBuffer
from supervisor.machine.instances import split

Line = tuple[float, str, str]
RESCAN_S = 1.0  # while following every unit, how soon a unit added by a reload is picked up


def tail(buffers: Mapping[str, LineBuffer], names: Sequence[str], lines: int) -> LogTail:
    """Return the last ``lines`` lines of each named unit (every unit without names), merged."""
    unknown = [n for n in names if n not in buffers]
    if unknown:
        known = ", ".join(buffers)
        raise NotFound(f"no program or job named {', '.join(unknown)} (units with output: {known})")
    chosen = list(names) or list(buffers)
    # Each buffer is already in time order: merge, never re-sort, so one unit's lines keep their order.
    streams = [[(t, n, s, line) for t, s, line in buffers[n].tail(lines)] for n in chosen]
    merged = heapq.merge(*streams, key=lambda row: row[0])
    rows: list[LogRow] = [{"unit": n, "time": t, "stream": s, "line": line} for t, n, s, line in merged]
    return {"units": chosen, "lines": rows}


def _named(unit: str, names: Sequence[str]) -> bool:
    """Whether ``names`` name ``unit``, itself or as the program whose instance it is."""
    parts = split(unit)
    return unit in names or (parts is not None and parts[0] in names)


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


async def follow(buffers: Callable[[], Mapping[str, LineBuffer]], names: Sequence[str]) -> AsyncGenerator[LogRow, None]:
    """Yield new lines of the named units (every unit, including ones a reload adds) until closed."""
    queue: asyncio.Queue[tuple[str, Line]] = asyncio.Queue(maxsize=10_000)
    joined: dict[str, tuple[LineBuffer, _Tagged]] = {}

    def join() -> list[tuple[str, Line]]:
        """Follow every unit not yet followed; return the lines that new ones printed before."""
        early: list[tuple[str, Line]] = []
        for name, buffer in buffers().items():
            if (names and not _named(name, names)) or (name in joined and joined[name][0] is buffer):
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
            yield {"unit": name, "time": t, "stream": s, "line": line}
    finally:
        for buffer, tagged in joined.values():
            buffer.followers.discard(cast("asyncio.Queue[Line]", tagged))
