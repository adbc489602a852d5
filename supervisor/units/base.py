"""What every runner is handed by the daemon, and the one-shot command runner."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.clock import Clock
from supervisor.events import ExitStatus
from supervisor.output import OutputPump
from supervisor.process import Reaper, SpawnSpec, kill_tree, signal_group, spawn


@dataclass
class Context:
    """The daemon's services, injected into runners so that tests can see what they do."""

    loop: asyncio.AbstractEventLoop
    clock: Clock
    reaper: Reaper
    log: Any
    base_env: dict[str, str]
    rng: random.Random = field(default_factory=random.Random)
    changed: Callable[[], None] = lambda: None  # some unit's state changed
    fatal: Callable[[str, str], None] = lambda name, why: None  # a program gave up
    give_up: Callable[[int, str], None] = lambda code, why: None  # the daemon must exit
    on_probe: Callable[[str, str, float, bool], None] = lambda kind, name, seconds, ok: None
    output: Callable[[str, str, str], None] = lambda unit, stream, line: None
    listening: Callable[[int], None] = lambda fd: None  # a listen socket's program is about to start
    notify_socket: str | None = None  # NOTIFY_SOCKET for programs with notify = true


class LineBuffer:
    """The last lines a unit printed, bounded, with followers for ``logs -f``."""

    def __init__(self, size: int) -> None:
        self.lines: deque[tuple[float, str, str]] = deque(maxlen=size)
        self.followers: set[asyncio.Queue[tuple[float, str, str]]] = set()

    def add(self, stream: str, line: str) -> None:
        """Keep a line and hand it to every follower that keeps up."""
        item = (time.time(), stream, line)
        self.lines.append(item)
        for queue in self.followers:
            if not queue.full():  # a slow follower loses lines, never the supervisor
                queue.put_nowait(item)

    def tail(self, n: int) -> list[tuple[float, str, str]]:
        """Return the last ``n`` lines."""
        return list(self.lines)[-n:] if n > 0 else []


async def run_command(
    ctx: Context,
    spec: SpawnSpec,
    timeout_s: float | None,
    on_line: Callable[[str, str], None] | None = None,
) -> ExitStatus | None:
    """Spawn ``spec`` through the shared spawner and wait for the reaper to report its exit.

    On timeout the whole tree is killed and still reaped; returns None then.
    A cancelled wait kills and reaps too, so no caller can leak a child.
    """
    done: asyncio.Future[ExitStatus] = ctx.loop.create_future()
    child = spawn(spec)

    def exited(status: ExitStatus) -> None:
        signal_group(child.pid, 9)  # whatever it left in its group goes with it
        if not done.done():
            done.set_result(status)

    ctx.reaper.own(child.pid, exited)
    pumps = []
    for fd, stream in ((child.stdout_fd, "stdout"), (child.stderr_fd, "stderr")):
        if fd is not None:
            pumps.append(OutputPump(ctx.loop, fd, line_handler(on_line, stream)))
    try:
        return await asyncio.wait_for(asyncio.shield(done), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        kill_tree(child.pid)
        await done
        if isinstance(exc, asyncio.CancelledError):
            raise
        return None
    finally:
        for pump in pumps:
            pump.close()


def line_handler(on_line: Callable[[str, str], None] | None, stream: str) -> Callable[[str], None]:
    """Bind the stream name to a ``(stream, line)`` callback."""

    def handle(line: str) -> None:
        if on_line is not None:
            on_line(stream, line)

    return handle
