"""What every runner is handed by the daemon, and the one-shot command runner."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from supervisor.host import process
from supervisor.host.output import OutputPump
from supervisor.host.process import Child, Reaper, SpawnSpec
from supervisor.machine.clock import Scheduler
from supervisor.machine.events import ExitStatus

if TYPE_CHECKING:
    from supervisor.host.logwriter import LogWriter
    from supervisor.host.prestart import Prestarted


class Spawner(Protocol):
    """Starts and signals processes: the operating system, or a test's fake."""

    def spawn(self, spec: SpawnSpec) -> Child:
        """Start ``spec``; raise ``SpawnError`` (or ``OSError``) when it cannot run."""
        ...

    def signal(self, pid: int, sig: int, group: bool = False) -> bool:
        """Send ``sig`` to ``pid`` (or its process group); return False when it is gone."""
        ...

    def kill_tree(self, pid: int) -> None:
        """SIGKILL the process group of ``pid`` and what is left of its session."""
        ...

    def sweep(self, sid: int) -> None:
        """SIGKILL whatever is still in session ``sid``."""
        ...


class OsSpawner:
    """The real processes of ``supervisor.host.process``."""

    def spawn(self, spec: SpawnSpec) -> Child:
        """Start ``spec``."""
        return process.spawn(spec)

    def signal(self, pid: int, sig: int, group: bool = False) -> bool:
        """Send ``sig`` to ``pid`` or its group."""
        if group:
            return process.signal_group(pid, sig)
        try:
            os.kill(pid, sig)
        except OSError:
            return False
        return True

    def kill_tree(self, pid: int) -> None:
        """SIGKILL the group, then the session."""
        process.kill_tree(pid)

    def sweep(self, sid: int) -> None:
        """SIGKILL what is left of the session."""
        process.sweep_session(sid)


class Unit(Protocol):
    """What the daemon asks of every unit, whatever its kind: one shape instead of type ladders."""

    name: str
    kind: str  # dependency | job | program, as the status document spells it

    @property
    def buffer(self) -> LineBuffer | None:
        """The lines it printed; a dependency prints none."""
        ...

    @property
    def depends_on(self) -> list[str]:
        """The units it waits for."""
        ...

    def begin(self) -> None:
        """Start-up begins: probe, read what can be read early, or start when autostart."""
        ...

    def gate(self, blocked: list[str]) -> None:
        """Learn which of ``depends_on`` still hold it back (none: it may go)."""
        ...

    def lets_dependants_start(self) -> bool:
        """Whether units that name it may start."""
        ...

    def startup_pending(self) -> bool:
        """Whether start-up (``READY=1``) still waits for it."""
        ...

    def halt(self) -> None:
        """The daemon goes down: stop probing and jobs (programs go down their ladders)."""
        ...

    def status(self, rss: dict[int, int] | None = None) -> Any:
        """Its entry of the status document (``rss``: tree sizes by pid, when known)."""
        ...


@dataclass
class Context:
    """The daemon's services, injected into runners so that tests can see what they do."""

    loop: asyncio.AbstractEventLoop
    clock: Scheduler
    reaper: Reaper
    log: Any
    base_env: dict[str, str]
    rng: random.Random = field(default_factory=random.Random)
    changed: Callable[[], None] = lambda: None  # some unit's state changed
    fatal: Callable[[str, str], None] = lambda name, why: None  # a program gave up
    give_up: Callable[[int, str], None] = lambda code, why: None  # the daemon must exit
    on_probe: Callable[[str, str, float, bool], None] = lambda kind, name, seconds, ok: None
    output: Callable[[str, str, list[str]], None] = lambda unit, stream, lines: None  # lines a unit printed
    doubt: Callable[[list[str]], float] = lambda names: 0.0  # see DependencyRunner.doubt_s
    listening: Callable[[int], None] = lambda fd: None  # a listen socket's program is about to start
    notify_socket: str | None = None  # NOTIFY_SOCKET for programs with notify = true
    spawner: Spawner = field(default_factory=OsSpawner)
    prestarted: Prestarted | None = None  # programs started before the engine, for their runners to take
    oom_killed: Callable[[], bool | None] = lambda: None  # the OOM killer killed since last asked (None: unknown)


def default_context(
    loop: asyncio.AbstractEventLoop,
    give_up: Callable[[int, str], None] | None = None,
    writer: LogWriter | None = None,
) -> Context:
    """The real services: the monotonic clock, a new reaper, the OS spawner, our log and environment.

    Children's output goes through ``writer``'s bulk sink when it has one, else event by event.
    """
    from supervisor.host import logs
    from supervisor.machine.clock import MonotonicClock
    from supervisor.stack.oom import OomCounters

    out = logs.get("output")

    def each(unit: str, stream: str, lines: list[str]) -> None:
        for line in lines:
            out.info("program.output", program=unit, stream=stream, line=line)

    sink = writer.sink if writer is not None else None
    return Context(
        loop=loop,
        clock=MonotonicClock(loop),
        reaper=Reaper(),
        log=logs.get(),
        base_env=dict(os.environ),
        give_up=give_up or (lambda code, why: None),
        output=sink.write if sink is not None else each,
        oom_killed=OomCounters().killed_since,
    )


class LineBuffer:
    """The last lines a unit printed, bounded, with followers for ``logs -f``."""

    def __init__(self, size: int) -> None:
        self.lines: deque[tuple[float, str, str]] = deque(maxlen=size)
        self.followers: set[asyncio.Queue[tuple[float, str, str]]] = set()

    def add(self, stream: str, line: str) -> None:
        """Keep a line and hand it to every follower that keeps up."""
        self.extend(stream, [line])

    def extend(self, stream: str, lines: list[str]) -> None:
        """Keep lines read together (one time for them all) and hand them to every follower that keeps up."""
        now = time.time()
        items = [(now, stream, line) for line in lines[-(self.lines.maxlen or len(lines)) :]]
        self.lines.extend(items)
        for queue in self.followers:
            for item in items:
                if queue.full():  # a slow follower loses lines, never the supervisor
                    break
                queue.put_nowait(item)

    def tail(self, n: int) -> list[tuple[float, str, str]]:
        """Return the last ``n`` lines."""
        return list(self.lines)[-n:] if n > 0 else []


async def run_command(
    ctx: Context,
    spec: SpawnSpec,
    timeout_s: float | None,
    on_lines: Callable[[str, list[str]], None] | None = None,
) -> ExitStatus | None:
    """Spawn ``spec`` through the shared spawner and wait for the reaper to report its exit.

    On timeout the whole tree is killed and still reaped; returns None then.
    A cancelled wait kills and reaps too, so no caller can leak a child.
    """
    done: asyncio.Future[ExitStatus] = ctx.loop.create_future()
    child = ctx.spawner.spawn(spec)

    def exited(status: ExitStatus) -> None:
        ctx.spawner.signal(child.pid, signal.SIGKILL, group=True)  # whatever it left in its group goes with it
        if not done.done():
            done.set_result(status)

    ctx.reaper.own(child.pid, exited)
    pumps = []
    for fd, stream in ((child.stdout_fd, "stdout"), (child.stderr_fd, "stderr")):
        if fd is not None:
            pumps.append(OutputPump(ctx.loop, fd, line_handler(on_lines, stream)))
    try:
        return await asyncio.wait_for(asyncio.shield(done), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        ctx.spawner.kill_tree(child.pid)
        await done
        if isinstance(exc, asyncio.CancelledError):
            raise
        return None
    finally:
        for pump in pumps:
            pump.close()


def line_handler(on_lines: Callable[[str, list[str]], None] | None, stream: str) -> Callable[[list[str]], None]:
    """Bind the stream name to a ``(stream, lines)`` callback."""

    def handle(lines: list[str]) -> None:
        if on_lines is not None:
            on_lines(stream, lines)

    return handle
