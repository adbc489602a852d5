"""The daemon's gating, ordering, shutdown and reload, driven in-process with a fake clock and fake processes."""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from supervisor.config import load
from supervisor.engine.daemon import Daemon
from supervisor.engine.readiness import Call
from supervisor.engine.units.base import Context
from supervisor.engine.units.program import ProgramRunner
from supervisor.host.process import Child, Reaper, SpawnSpec
from supervisor.host.systemd import Notifier
from supervisor.machine.clock import FakeClock
from supervisor.machine.events import ExitStatus


class Processes:
    """Fake processes by program name: spawns, signals received, and exits on demand or on SIGTERM."""

    def __init__(self, reaper: Reaper, loop: asyncio.AbstractEventLoop) -> None:
        self.reaper = reaper
        self.loop = loop
        self.next_pid = 100
        self.by_pid: dict[int, str] = {}
        self.spawned: list[str] = []  # program names, in spawn order
        self.terms: list[str] = []  # program names, in the order their stop signal came
        self.obey = True  # exit on the stop signal, on the next turn of the loop

    def spawn(self, spec: SpawnSpec) -> Child:
        """Hand out a pid for the program whose command this is."""
        self.next_pid += 1
        self.by_pid[self.next_pid] = spec.argv[0]
        self.spawned.append(spec.argv[0])
        return Child(self.next_pid)

    def signal(self, pid: int, sig: int, group: bool = False) -> bool:
        """Record a stop signal; an obedient process exits soon after."""
        if sig in (signal.SIGCONT, signal.SIGKILL) or pid not in self.by_pid:
            return True
        self.terms.append(self.by_pid[pid])
        if self.obey:
            self.loop.call_soon(self.exit, pid)
        return True

    def kill_tree(self, pid: int) -> None:
        """SIGKILL ends it at once."""
        self.loop.call_soon(self.exit, pid, -signal.SIGKILL)

    def sweep(self, sid: int) -> None:
        """Nothing is left in a fake session."""

    def exit(self, pid: int, code: int = 0) -> None:
        """Play the reaper: hand the exit to whoever owns the pid."""
        owner = self.reaper.owners.pop(pid, None)
        if owner is not None:
            owner(ExitStatus(signal=-code) if code < 0 else ExitStatus(code=code))

    def pid_of(self, name: str) -> int:
        """The newest pid of program ``name``."""
        return max(pid for pid, n in self.by_pid.items() if n == name)


class Stack:
    """A Daemon on a configuration, with a fake clock and fake processes; ``settle()`` lets the loop turn."""

    def __init__(self, tmp_path: Path, toml: str) -> None:
        loop = asyncio.get_running_loop()
        self.tmp_path = tmp_path
        self.clock = FakeClock()
        self.reaper = Reaper()
        self.procs = Processes(self.reaper, loop)
        ctx = Context(
            loop=loop,
            clock=self.clock,
            reaper=self.reaper,
            log=structlog.get_logger("test"),
            base_env={"PATH": "/usr/bin:/bin"},
            rng=random.Random(1),
            spawner=self.procs,
        )
        self.daemon = Daemon(self.load(toml), notifier=Notifier(None), ctx=ctx)
        self._server = loop.create_task(self._serve())

    async def _serve(self) -> None:
        """The main loop's part for operator calls: run each in turn, as ``Daemon.run`` does."""
        while True:
            item = await self.daemon.queue.get()
            if isinstance(item, Call):
                try:
                    item.future.set_result(await item.fn())
                except Exception as exc:
                    item.future.set_exception(exc)

    def load(self, toml: str) -> Any:
        """Validate ``toml`` as the configuration file."""
        path = self.tmp_path / "supervisor.toml"
        path.write_text(f'[supervisor]\nsocket = "{self.tmp_path}/s.sock"\nhttp = ""\n' + toml)
        return load(path, environ={})

    async def settle(self) -> None:
        """Let every callback that is due now run (recomputes, fake exits)."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move the fake clock, then let the loop catch up."""
        self.clock.advance(seconds)
        await self.settle()

    def state(self, name: str) -> str:
        """A program's state, as the status document says it."""
        unit = self.daemon.units[name]
        assert isinstance(unit, ProgramRunner)
        return unit.model.state.value


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run one scenario in a fresh loop."""
    asyncio.run(scenario())


def test_a_program_starts_once_the_program_it_depends_on_is_running(tmp_path: Path) -> None:
    """depends_on holds a program in pending until the program it names has stayed up min_uptime."""

    async def scenario() -> None:
        s = Stack(
            tmp_path,
            """
[programs.db]
command = ["db"]
min_uptime = "1s"
[programs.app]
command = ["app"]
depends_on = ["db"]
""",
        )
        s.daemon.begin()
        await s.settle()
        assert s.procs.spawned == ["db"] and s.state("app") == "pending"
        await s.advance(0.9)
        assert s.procs.spawned == ["db"], "app started before db was running"
        await s.advance(0.2)
        assert s.procs.spawned == ["db", "app"] and s.state("db") == "running"

    run(scenario)


def test_after_holds_a_start_only_while_the_named_program_starts(tmp_path: Path) -> None:
    """after orders starts: the follower spawns once web is ready, and a crash of web later holds nothing back."""

    async def scenario() -> None:
        s = Stack(
            tmp_path,
            """
[programs.web]
command = ["web"]
min_uptime = "2s"
[programs.worker]
command = ["worker"]
after = ["web"]
min_uptime = 0
""",
        )
        s.daemon.begin()
        await s.settle()
        assert s.procs.spawned == ["web"]
        await s.advance(2.0)
        assert s.procs.spawned == ["web", "worker"]
        s.procs.exit(s.procs.pid_of("worker"), 1)  # the follower crashes while web runs: restarts at once
        await s.settle()
        assert s.procs.spawned == ["web", "worker", "worker"]

    run(scenario)


def test_shutdown_stops_dependants_first_and_unrelated_branches_side_by_side(tmp_path: Path) -> None:
    """A program gets its stop signal once all that need it are down; an unrelated one does not wait."""

    async def scenario() -> None:
        s = Stack(
            tmp_path,
            """
[programs.base]
command = ["base"]
min_uptime = 0
[programs.top]
command = ["top"]
depends_on = ["base"]
min_uptime = 0
[programs.other]
command = ["other"]
min_uptime = 0
""",
        )
        s.daemon.begin()
        await s.settle()
        assert sorted(s.procs.spawned) == ["base", "other", "top"]
        s.procs.obey = False
        shutdown = asyncio.ensure_future(s.daemon.shutdown())
        await s.settle()
        assert sorted(s.procs.terms) == ["other", "top"], "base was signalled while top still ran"
        s.procs.exit(s.procs.pid_of("top"))
        await s.settle()
        assert s.procs.terms[-1] == "base"
        s.procs.exit(s.procs.pid_of("base"))
        s.procs.exit(s.procs.pid_of("other"))
        await asyncio.wait_for(shutdown, 5)

    run(scenario)


def test_a_reload_restarts_what_changed_starts_what_is_new_and_stops_what_is_gone(tmp_path: Path) -> None:
    """apply() is the diff: changed restarts, added starts, removed stops, unchanged is left alone."""

    async def scenario() -> None:
        s = Stack(
            tmp_path,
            """
[programs.same]
command = ["same"]
min_uptime = 0
[programs.changed]
command = ["changed"]
min_uptime = 0
[programs.gone]
command = ["gone"]
min_uptime = 0
""",
        )
        s.daemon.begin()
        await s.settle()
        same_pid = s.procs.pid_of("same")
        result = s.daemon.apply(
            s.load(
                """
[programs.same]
command = ["same"]
min_uptime = 0
[programs.changed]
command = ["changed", "--v2"]
min_uptime = 0
[programs.new]
command = ["new"]
min_uptime = 0
"""
            )
        )
        await s.settle()
        assert (result["changed"], result["added"], result["removed"]) == (["changed"], ["new"], ["gone"])
        assert sorted(s.procs.terms) == ["changed", "gone"]
        assert s.procs.spawned.count("changed") == 2 and "new" in s.procs.spawned
        assert s.procs.pid_of("same") == same_pid and s.state("same") == "running"
        assert "gone" not in s.daemon.units

    run(scenario)


def test_an_operator_stop_outlives_a_reload_that_changes_the_program(tmp_path: Path) -> None:
    """A program an operator stopped stays stopped when a reload changes its definition."""

    async def scenario() -> None:
        s = Stack(tmp_path, '[programs.web]\ncommand = ["web"]\nmin_uptime = 0\n')
        s.daemon.begin()
        await s.settle()
        await s.daemon.act("web", "stop")
        await s.settle()
        assert s.state("web") == "stopped"
        s.daemon.apply(s.load('[programs.web]\ncommand = ["web", "--v2"]\nmin_uptime = 0\n'))
        await s.settle()
        assert s.state("web") == "stopped" and s.procs.spawned == ["web"]

    run(scenario)
