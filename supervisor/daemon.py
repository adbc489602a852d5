"""The daemon: one asyncio loop that owns every unit, every child and every signal."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from typing import Any

from supervisor import __version__, logs, process
from supervisor.clock import MonotonicClock
from supervisor.config import Loaded
from supervisor.config.models import parse_address
from supervisor.errors import EXIT_GAVE_UP, EXIT_OK
from supervisor.states import DepsChanged, ExitStatus, Shutdown, Start, State
from supervisor.systemd import Notifier, watchdog_interval_s
from supervisor.timeline import Timeline
from supervisor.units import instants
from supervisor.units.base import Context
from supervisor.units.dependency import DependencyRunner
from supervisor.units.job import JobRunner
from supervisor.units.program import ProgramRunner

Unit = DependencyRunner | JobRunner | ProgramRunner


def bind_listener(address: str) -> socket.socket:
    """Bind and listen once; every incarnation of the program inherits this socket."""
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


class Daemon:
    """Starts units in dependency order, gates them, and stops them in reverse."""

    def __init__(self, loaded: Loaded, notifier: Notifier | None = None) -> None:
        self.loaded = loaded
        self.cfg = loaded.config
        self.log = logs.get()
        self.loop = asyncio.get_running_loop()
        self.clock = MonotonicClock()
        self.started_at = self.clock.now()
        self.notifier = notifier or Notifier.from_environment()
        self.reaper = process.Reaper(on_orphan=self._orphan)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.state = "starting"
        self.exit_code: int | None = None
        self.exit_why: str | None = None
        self.ready_sent = False
        self.listeners: dict[str, socket.socket] = {}
        self.units: dict[str, Unit] = {}
        self.metrics: Any = None
        self._recompute_scheduled = False
        self._jobs_running = 0
        self._out = logs.get("output")
        self.timeline = Timeline()  # `supervisor timeline`: recorded in _recompute, never polled
        self.ctx = Context(
            loop=self.loop,
            clock=self.clock,
            reaper=self.reaper,
            log=self.log,
            base_env=dict(os.environ),
            rng=random.Random(),
            changed=self._schedule_recompute,
            fatal=self._fatal,
            give_up=self._give_up,
            on_probe=self._on_probe,
            output=self._output,
        )
        self._build()

    # ---- construction ---------------------------------------------------------------

    def _build(self) -> None:
        for name, prog in self.cfg.programs.items():
            if prog.listen:
                self.listeners[name] = bind_listener(prog.listen)
        for name in (n for level in self.loaded.plan for n in level):
            self.units[name] = self.make_unit(name)

    def make_unit(self, name: str) -> Unit:
        """Build the runner for one unit of the current configuration."""
        cfg = self.cfg
        lines = cfg.supervisor.log_lines
        if name in cfg.dependencies:
            return DependencyRunner(name, cfg.dependencies[name], self.ctx)
        if name in cfg.jobs:
            job = cfg.jobs[name]
            lock_dep = cfg.dependencies.get(job.lock) if job.lock else None
            url_dep = lock_dep or next(
                (
                    cfg.dependencies[d]
                    for d in job.depends_on
                    if d in cfg.dependencies and cfg.dependencies[d].type == "postgres"
                ),
                None,
            )
            return JobRunner(
                name, job, self.ctx, lock_dep, url_dep.url if url_dep else None, lines, on_running=self._job_running
            )
        listener = self.listeners.get(name)
        return ProgramRunner(name, cfg.programs[name], self.ctx, listener.fileno() if listener else None, lines)

    @property
    def programs(self) -> list[ProgramRunner]:
        """Every program runner, in start-up order."""
        return [u for u in self.units.values() if isinstance(u, ProgramRunner)]

    # ---- gating ---------------------------------------------------------------------

    def gate_open(self, depends_on: list[str]) -> bool:
        """Whether every unit named in ``depends_on`` allows its dependants to start."""
        for dep in depends_on:
            unit = self.units.get(dep)
            if unit is None:
                continue
            if isinstance(unit, ProgramRunner):
                if not unit.ready_for_dependants():
                    return False
            elif not unit.ok:
                return False
        return True

    def _schedule_recompute(self) -> None:
        if not self._recompute_scheduled:
            self._recompute_scheduled = True
            self.loop.call_soon(self._recompute)

    def _recompute(self) -> None:
        self._recompute_scheduled = False
        if self.state == "stopping":
            return
        for unit in self.units.values():
            if isinstance(unit, JobRunner) and unit.state == "pending" and self.gate_open(unit.cfg.depends_on):
                unit.start()
            elif isinstance(unit, ProgramRunner):
                ok = self.gate_open(unit.cfg.depends_on)
                if ok != unit.model.deps_ok:
                    unit.dispatch(DepsChanged(ok))
        instants.observe(self.timeline, self.units.values(), self.gate_open, self.clock.now() - self.started_at)
        self._report_phase()

    def _report_phase(self) -> None:
        if self.state != "starting" and self.state != "running":
            return
        waiting = [u.name for u in self.units.values() if isinstance(u, DependencyRunner) and u.state == "waiting"]
        # A job not yet started counts too: READY=1 means start-up, migrations included, is over.
        jobs = [u.name for u in self.units.values() if isinstance(u, JobRunner) and not u.finished]
        ready = all(
            p.ready_for_dependants()
            or p.model.held
            or not p.cfg.autostart
            or p.model.state in (State.EXITED, State.FATAL)
            for p in self.programs
        )
        if ready and not waiting and not jobs:
            if not self.ready_sent:
                self.ready_sent = True
                self.state = "running"
                self.log.info(
                    "supervisor.ready",
                    programs=len(self.programs),
                    after_s=round(self.clock.now() - self.started_at, 3),
                )
                self.notifier.send(ready=1, status=self.status_line() if self.notifier.enabled else "")
            elif self.notifier.enabled:  # the status line costs a /proc pass: only for a listener
                self.notifier.send(status=self.status_line())
        else:
            phase = (
                f"waiting for {', '.join(waiting)}"
                if waiting
                else f"running job {', '.join(jobs)}"
                if jobs
                else "starting programs"
            )
            self.notifier.send(status=phase)

    def status_line(self) -> str:
        """One line for systemd's STATUS=: the phase and any problem."""
        from supervisor.control.protocol import problems

        issues = problems(self.status())
        return "running" if not issues else "degraded: " + "; ".join(issues[:3])

    def _job_running(self, running: bool) -> None:
        self._jobs_running += 1 if running else -1
        if running:
            # A migration may outlast TimeoutStartSec: ask systemd for more time while it runs.
            job_timeout = max((j.cfg.timeout for j in self.units.values() if isinstance(j, JobRunner)), default=60)
            self.notifier.send(extend_timeout_usec=int((job_timeout + 30) * 1e6))

    # ---- events from units ----------------------------------------------------------

    def _output(self, unit: str, stream: str, line: str) -> None:
        self._out.info("program.output", program=unit, stream=stream, line=line)

    def _on_probe(self, kind: str, name: str, seconds: float, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.observe_probe(kind, name, seconds, ok)

    def _orphan(self, pid: int, status: ExitStatus) -> None:
        self.log.info("process.orphan_reaped", pid=pid, code=status.code, signal=status.signal)

    def _fatal(self, name: str, why: str) -> None:
        if self.cfg.supervisor.on_fatal == "exit":
            self._give_up(EXIT_GAVE_UP, f"program {name} is fatal: {why}")
        else:
            self.log.error(
                "supervisor.program_fatal", program=name, why=why, next="the others keep running (on_fatal = stay)"
            )
            self._schedule_recompute()

    def _give_up(self, code: int, why: str) -> None:
        if self.exit_code is None:
            self.exit_code, self.exit_why = code, why
            self.queue.put_nowait(("shutdown", why))

    # ---- the loop -------------------------------------------------------------------

    async def run(self) -> int:
        """Run until a signal or a give-up; return the process exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            # Signal handlers only enqueue; the work happens in this task.
            self.loop.add_signal_handler(sig, self.queue.put_nowait, sig)
        # asyncio runs this callback in the loop, never in signal context; reaping there (not
        # behind the queue) lets a task that awaits a child's exit hold up the queue safely.
        self.loop.add_signal_handler(signal.SIGCHLD, self.reaper.reap)
        if os.getpid() != 1 and not process.set_subreaper():
            self.log.warning("supervisor.no_subreaper", hint="orphans of children will not be reaped by us")
        self.log.info(
            "supervisor.starting",
            version=__version__,
            pid=os.getpid(),
            config=str(self.loaded.path),
            plan=self.loaded.plan,
        )
        for warning in self.loaded.warnings:
            self.log.warning("config.warning", detail=warning)
        self.notifier.send(status="starting", mainpid=os.getpid())
        watchdog = watchdog_interval_s(os.environ)
        if watchdog:
            self._watchdog(watchdog)
        for unit in self.units.values():
            if isinstance(unit, DependencyRunner):
                unit.start()
            elif isinstance(unit, JobRunner):
                unit.prepare()  # read migration heads while the dependencies are awaited
        for prog in self.programs:
            if prog.cfg.autostart:
                prog.dispatch(Start())
        self._schedule_recompute()
        interrupts = 0
        while True:
            item = await self.queue.get()
            if item in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                interrupts += 1
                if self.state == "stopping":
                    if item == signal.SIGINT and interrupts > 1:
                        self.log.warning("supervisor.kill_now", why="second SIGINT")
                        await self._kill_all()
                        break
                    continue
                self.log.info("supervisor.signal", signal=signal.Signals(item).name, next="stopping")
                self.loop.create_task(self._shutdown_then_stop())
            elif item == signal.SIGHUP:
                from supervisor.reload import reload

                await reload(self)
            elif isinstance(item, tuple) and item[0] == "shutdown":
                if self.state != "stopping":
                    self.loop.create_task(self._shutdown_then_stop())
            elif isinstance(item, tuple) and item[0] == "call":
                _, fn, fut = item
                try:
                    result = await fn()
                except Exception as exc:  # a control request must never take the daemon down
                    if not fut.done():
                        fut.set_exception(exc)
                else:
                    if not fut.done():
                        fut.set_result(result)
            elif item == "stopped":
                break
        code = EXIT_OK if self.exit_code is None else self.exit_code
        if self.exit_why:
            self.log.error("supervisor.gave_up", why=self.exit_why, exit_code=code)
        self.log.info("supervisor.exit", exit_code=code)
        self.notifier.close()
        return code

    async def call(self, fn: Any) -> Any:
        """Run ``fn`` (an async function) in the main loop's task, in order with signals."""
        fut: asyncio.Future[Any] = self.loop.create_future()
        self.queue.put_nowait(("call", fn, fut))
        return await fut

    def _watchdog(self, interval_s: float) -> None:
        # Sent from the main loop only, so a wedged loop stops the pings and systemd steps in.
        self.notifier.send(watchdog=1)
        self.loop.call_later(interval_s, self._watchdog, interval_s)

    async def _shutdown_then_stop(self) -> None:
        await self.shutdown()
        self.queue.put_nowait("stopped")

    async def shutdown(self) -> None:
        """Stop programs in reverse dependency order, bounded by ``shutdown_timeout``."""
        self.state = "stopping"
        self.notifier.send(stopping=1, status="stopping")
        deadline = self.clock.now() + self.cfg.supervisor.shutdown_timeout
        for unit in self.units.values():
            if isinstance(unit, DependencyRunner | JobRunner):
                unit.stop()
        for level in reversed(self.loaded.plan):
            progs = [u for n in level if isinstance(u := self.units.get(n), ProgramRunner)]
            for prog in progs:
                prog.dispatch(Shutdown())
            waits = [asyncio.ensure_future(p.wait_down()) for p in progs]
            if waits:
                left = deadline - self.clock.now()
                _, pending = await asyncio.wait(waits, timeout=max(0.0, left))
                if pending:
                    self.log.warning(
                        "supervisor.shutdown_timeout",
                        after_s=self.cfg.supervisor.shutdown_timeout,
                        next="killing what is left",
                    )
                    await self._kill_all()
                    break
        for prog in self.programs:
            prog.close()
        for sock in self.listeners.values():
            sock.close()

    async def _kill_all(self) -> None:
        alive = [p for p in self.programs if p.model.pid is not None]
        for prog in alive:
            if prog.model.pid is not None:
                process.kill_tree(prog.model.pid)
        waits = [asyncio.ensure_future(p.wait_down()) for p in alive]
        if waits:
            # SIGKILL cannot be ignored; the reaper hands each exit over as SIGCHLD arrives.
            await asyncio.wait(waits, timeout=5.0)

    # ---- the status document --------------------------------------------------------

    def status(self, rss_pass: bool = True) -> dict[str, Any]:
        """Return the status document of SPEC.md (``rss_pass=False``: without RSS, no /proc pass)."""
        pids = {p.model.pid for p in self.programs if p.model.pid is not None}
        rss = process.trees_rss(pids) if rss_pass else {}
        doc: dict[str, Any] = {
            "supervisor": {
                "pid": os.getpid(),
                "version": __version__,
                "state": self.state,
                "uptime_s": round(self.clock.now() - self.started_at, 3),
                "ready": self.ready_sent,
                "config": str(self.loaded.path),
                "time": time.time(),
            },
            "units": [u.status(rss) if isinstance(u, ProgramRunner) else u.status() for u in self.units.values()],
        }
        for entry in doc["units"]:
            entry["timeline"] = self.timeline.of(entry["name"])
        return doc
