"""The daemon: one asyncio loop that owns every unit, every child and every signal."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import replace

from supervisor import __version__
from supervisor.config import cachefiles, compiled
from supervisor.config.globs import all_warnings
from supervisor.config.instances import listen_key
from supervisor.config.settings import Loaded
from supervisor.engine import container
from supervisor.engine.alerts import Alerts
from supervisor.engine.drain import Drain
from supervisor.engine.frontdoor import FrontDoor
from supervisor.engine.graph import blocked_by, build_unit, doubt_s, gate_for
from supervisor.engine.pacing import Pace
from supervisor.engine.readiness import (
    Call,
    DaemonEvent,
    GiveUpRequested,
    Phase,
    Readiness,
    SignalReceived,
    Snapshot,
    Stopped,
)
from supervisor.engine.reload import apply_reload, refused_while_leaving
from supervisor.engine.shutdown import stop_all
from supervisor.engine.target import ProbeLatencies, ReloadResult
from supervisor.engine.units import instants
from supervisor.engine.units.base import Context, Unit, default_context, run_command
from supervisor.engine.units.job import JobRunner
from supervisor.engine.units.program import ProgramRunner
from supervisor.engine.usage import UsageSampler
from supervisor.host import process
from supervisor.host.listen import bind_listener, start_listening
from supervisor.host.logwriter import LogWriter
from supervisor.host.notify import NotifyListener
from supervisor.host.prestart import STOP_SIGNALS, Prestarted
from supervisor.host.process import SpawnSpec
from supervisor.host.systemd import Notifier, watchdog_interval_s
from supervisor.machine import timeline
from supervisor.machine.errors import EXIT_GAVE_UP, EXIT_OK, ConfigError, SpawnError
from supervisor.machine.events import ExitStatus, signal_name


class Daemon(FrontDoor):
    """Starts units in dependency order, gates them, and stops them in reverse."""

    def __init__(
        self,
        loaded: Loaded,
        notifier: Notifier | None = None,
        log_writer: LogWriter | None = None,
        prestarted: Prestarted | None = None,
        ctx: Context | None = None,
    ) -> None:
        """Supervise ``loaded``; ``ctx`` brings the clock, spawner and reaper (a test's fakes), else the real ones."""
        self.loaded = loaded
        self.log_writer = log_writer
        self.cfg = loaded.config
        base = ctx or default_context(asyncio.get_running_loop(), writer=log_writer)
        # Every event logged through the context, the runners' included, passes the alerts by.
        self.alerts = Alerts(base, lambda: self.cfg.alerts, lambda n: u.buffer if (u := self.units.get(n)) else None)
        base = replace(base, log=self.alerts.watch(base.log))
        self.log = base.log
        self.loop = base.loop
        self.clock = base.clock
        self.started_at = self.clock.now()
        self.notifier = notifier or Notifier.from_environment()
        self.readiness = Readiness(self.notifier, self.log, self.clock.now, self.problems)
        self.drain = Drain(self.clock, self.log, self.notifier)
        self.reaper = base.reaper
        self.reaper.on_orphan = self._orphan
        self.queue: asyncio.Queue[DaemonEvent] = asyncio.Queue()
        self.state = Phase.STARTING
        self.exit_code: int | None = None
        self.exit_why: str | None = None
        self.listeners: dict[str, socket.socket] = {}
        self.rolling: dict[str, asyncio.Task[None]] = {}  # a reload's rolling restarts of instances
        self.reload_hooks: list[Callable[[], None]] = []  # after each reload or scale (dev mode's watch)
        self.units: dict[str, Unit] = {}
        self.probe_latencies = ProbeLatencies()  # for /metrics, read at scrape time
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[ReloadResult]] = set()
        self.pace = Pace(
            self.loop, lambda: self._recompute(sliced=True), self.clock.now
        )  # spaced after long ones (1,000 programs)
        self.notify_listener = NotifyListener(self.loop, self._notified)
        self.startup = timeline.Timeline()  # `supervisor timeline`: recorded in _recompute, never polled
        self.usage = UsageSampler(self.clock, lambda: self.programs)  # CPU and MEM for `status`
        self.ctx = replace(
            base,
            changed=self._schedule_recompute,
            fatal=self._fatal,
            give_up=self._give_up,
            on_probe=self._on_probe,
            doubt=lambda names: doubt_s(self.units, names),
            listening=start_listening,
            notify_socket=self.notify_listener.address,
            prestarted=prestarted,
        )
        self._build()

    # ---- construction ---------------------------------------------------------------

    def _build(self) -> None:
        for name, prog in self.cfg.programs.items():
            if prog.listen and listen_key(name, prog) not in self.listeners:  # instances share one
                self.listeners[listen_key(name, prog)] = bind_listener(prog.listen)
        for name in (n for level in self.loaded.plan for n in level):
            self.units[name] = self.make_unit(name)

    def make_unit(self, name: str) -> Unit:
        """Build the runner for one unit of the current configuration."""
        return build_unit(name, self.cfg, self.ctx, self.listeners, self._job_running)

    # ---- gating ---------------------------------------------------------------------

    def _schedule_recompute(self) -> None:
        self.pace.ask()

    def _recompute(self, sliced: bool = False) -> None:
        if self.state is Phase.STOPPING:
            self.pace.release()  # no round will come: a scale waiting for one goes on
            return
        with self.pace:  # sliced: spawning hundreds must not hold the loop; the pace runs the rest
            gate = lambda unit: unit.gate(gate_for(self.units, unit, self.cfg.programs))  # noqa: E731
            if self.pace.each(list(self.units.values()), gate, sliced):
                now = self.clock.now() - self.started_at
                instants.observe(self.startup, self.units.values(), lambda deps: not blocked_by(self.units, deps), now)
                self._report_phase()

    def _report_phase(self) -> None:
        if self.state in (Phase.STOPPING, Phase.DRAINING):  # STATUS= says so already
            return
        # A job not yet started counts too: READY=1 means start-up, migrations included, is over.
        snap = Snapshot.of([(u.kind, u.name) for u in self.units.values() if u.startup_pending()])
        if self.readiness.report(snap, len(self.programs)):
            self.state = Phase.RUNNING

    def _after_prestart(self) -> None:
        early, self.ctx.prestarted = self.ctx.prestarted, None
        if early is None:
            return
        left = early.discard(reap=False)  # unowned: the reaper collects them as orphans
        taken = [name for name in early.started if name not in left]
        if taken:
            self.log.info("supervisor.started_early", programs=taken, why="they wait on nothing")
        if left:
            self.log.warning("supervisor.prestart_unclaimed", programs=left, next="killed; started the usual way")
        # One started early may have exited before SIGCHLD had a handler: no signal will come for it.
        self.reaper.reap()

    def _job_running(self, running: bool) -> None:
        if running:
            self.readiness.job_running(
                max((j.cfg.timeout for j in self.units.values() if isinstance(j, JobRunner)), default=60)
            )

    # ---- events from units ----------------------------------------------------------

    def _notified(self, pid: int, fields: dict[str, str]) -> None:
        for prog in self.programs:
            incarnation = prog.owns(pid)
            if incarnation is not None:
                prog.notified(incarnation, fields)
                return
        self.log.debug("notify.ignored", pid=pid, hint="not a process of any program")

    def _on_probe(self, kind: str, name: str, seconds: float, ok: bool) -> None:
        self.probe_latencies.observe(kind, name, seconds, ok)

    def _orphan(self, pid: int, status: ExitStatus) -> None:
        signame = signal_name(status.signal) if status.signal is not None else None
        self.log.info("process.orphan_reaped", pid=pid, code=status.code, signal=signame)

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
            self.queue.put_nowait(GiveUpRequested(why))

    # ---- the loop -------------------------------------------------------------------

    def begin(self) -> None:
        """Start-up: every unit begins (probes, early reads, autostarts); gating follows in the loop."""
        for unit in self.units.values():
            unit.begin()  # probe; read migration heads while dependencies are awaited; start programs
        self._schedule_recompute()
        self.loop.call_soon(self._after_prestart)  # after that first recompute, which takes them
        self.usage.start()

    async def run(self) -> int:
        """Run until a signal or a give-up; return the process exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            # Signal handlers only enqueue; the work happens in this task.
            self.loop.add_signal_handler(sig, self.queue.put_nowait, SignalReceived(sig))
        # asyncio runs this callback in the loop, never in signal context; reaping there (not
        # behind the queue) lets a task that awaits a child's exit hold up the queue safely.
        self.loop.add_signal_handler(signal.SIGCHLD, self.reaper.reap)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked while programs started early
        if os.getpid() != 1 and not process.set_subreaper():
            self.log.warning("supervisor.no_subreaper", hint="orphans of children will not be reaped by us")
        from_cache = self.ctx.prestarted is not None  # a cache hit always comes with its early start
        self.log.info(
            "supervisor.starting",
            version=__version__,
            pid=os.getpid(),
            config=str(self.loaded.path),
            config_from="cache" if from_cache else "validation",
            plan=self.loaded.plan,
        )
        if not from_cache and (why := cachefiles.unusable()) is not None:
            self.log.warning("config.cache_unusable", why=why, hint="each start validates the file in a child process")
        for warning in all_warnings(self.loaded):
            self.log.warning("config.warning", detail=warning)
        container.announce(self.log)
        self.notifier.send(status="starting", mainpid=os.getpid())
        watchdog = watchdog_interval_s(os.environ)
        if watchdog:
            self.readiness.watchdog(self.loop, watchdog)
        # No await may come between the SIGCHLD handler above and begin(): a reap before its
        # first recompute would collect an early child as an orphan, and its runner would then
        # own a pid whose exit it never hears of.
        self.begin()
        interrupts = 0
        while True:
            item = await self.queue.get()
            if isinstance(item, SignalReceived) and item.signal == signal.SIGHUP:
                task = self.loop.create_task(self.reload())
                self._reloads.add(task)
                task.add_done_callback(self._reloads.discard)
            elif isinstance(item, SignalReceived):
                interrupts += 1
                if self.state is Phase.DRAINING:
                    self.drain.skip(f"second {signal_name(item.signal)}")
                    continue
                if self.state is Phase.STOPPING:
                    if item.signal == signal.SIGINT and interrupts > 1:
                        self.log.warning("supervisor.kill_now", why="second SIGINT")
                        await self._kill_all()
                        break
                    continue
                # Only SIGTERM drains: it is how Kubernetes, Docker and systemd stop a service; a
                # Ctrl-C (SIGINT) at a terminal means now.
                drain_s = self.cfg.supervisor.drain if item.signal == signal.SIGTERM else 0.0
                self.log.info(
                    "supervisor.signal", signal=signal_name(item.signal), next="draining" if drain_s else "stopping"
                )
                self._leave(drain_s)
            elif isinstance(item, GiveUpRequested):
                if self.state is Phase.DRAINING:
                    self.drain.skip(f"gave up: {item.why}")
                elif self.state is not Phase.STOPPING:
                    self._leave(0.0)
            elif isinstance(item, Call):
                fut = item.future
                try:
                    result = await item.fn()
                except Exception as exc:  # a control request must never take the daemon down
                    if not fut.done():
                        fut.set_exception(exc)
                else:
                    if not fut.done():
                        fut.set_result(result)
            elif isinstance(item, Stopped):
                break
        code = EXIT_OK if self.exit_code is None else self.exit_code
        self.notifier.close()
        self.notify_listener.close()
        await self.alerts.settle()  # a fatal program's alert goes out before the daemon does
        if self.exit_why:
            # The very last line says who gave up and why; Kubernetes shows it as the pod's reason.
            self.log.error("supervisor.gave_up", why=self.exit_why, exit_code=code)
            write_termination_log(self.exit_why)
        else:
            self.log.info("supervisor.exit", exit_code=code)
        return code

    async def reload(self) -> ReloadResult:
        """Validate the file as it is now in a child (as SIGHUP does), then apply it in the main loop's task."""
        async with self._reload_lock:  # one at a time, each against what the one before left
            try:
                new, came_from = await compiled.load_async(self.loaded.path, self._run_validator)
            except ConfigError as exc:
                problems = [f"{k or '(top level)'}: {w}" for k, w in exc.problems]
                kept = "the running configuration stays as it was"
                self.log.error("config.reload_refused", config=exc.path, problems=problems, next=kept)
                return {"ok": False, "error": exc.render()}

            async def apply() -> ReloadResult:
                return refused_while_leaving(self) or apply_reload(self, new, config_from=came_from)

            result = await self.call(apply)
            await self._settle(result)
            return result

    async def _settle(self, result: ReloadResult) -> None:
        """Wait (bounded) for the programs a reload restarted or added to settle, and say where they are."""
        names = [*result.get("changed", []), *result.get("added", [])]
        progs = [u for n in names if isinstance(u := self.units.get(n), ProgramRunner)]
        if not progs:
            return
        rolls = list(self.rolling.values())  # instances restart one after another: all of them, in turn
        timeout = max(p.cfg.stop_total + p.cfg.start_timeout for p in progs) * (len(progs) if rolls else 1) + 5.0
        waits = [asyncio.ensure_future(p.wait_settled()) for p in progs]
        _, pending = await asyncio.wait([*waits, *rolls], timeout=timeout)
        for fut in pending - set(rolls):
            fut.cancel()
        result["states"] = {p.name: p.model.state.value for p in progs}

    async def _run_validator(self, argv: list[str]) -> bool:
        try:
            status = await run_command(self.ctx, SpawnSpec(argv, dict(os.environ)), 120.0)
        except (SpawnError, OSError) as exc:  # no child (pids limit, fds): validate in this process
            self.log.warning("config.validator_unavailable", error=str(exc))
            return False
        return status is not None and status.success

    def apply(self, new: Loaded) -> ReloadResult:
        """Apply a validated configuration: restart what changed, refuse what cannot be."""
        return apply_reload(self, new)

    def _leave(self, drain_s: float) -> None:
        """Begin leaving: drain first for ``drain_s`` (not ready, programs serving), then shut down."""
        if drain_s > 0:
            self.state = Phase.DRAINING  # at once, before any await: /readyz turns 503 now
            self.drain.begin(drain_s)
        self.loop.create_task(self._shutdown_then_stop())

    async def _shutdown_then_stop(self) -> None:
        await self.drain.wait()
        await self.shutdown()
        self.queue.put_nowait(Stopped())

    async def shutdown(self) -> None:
        """Stop programs, each after the programs that need it, bounded by ``shutdown_timeout``."""
        self.state = Phase.STOPPING
        self.readiness.stopping()
        deadline = self.clock.now() + self.cfg.supervisor.shutdown_timeout
        for unit in self.units.values():
            unit.halt()
        programs = {n: u for n, u in self.units.items() if isinstance(u, ProgramRunner)}
        if programs:
            left = deadline - self.clock.now()
            try:
                await asyncio.wait_for(stop_all(programs, self.cfg.stop_before()), timeout=max(0.0, left))
            except TimeoutError:
                self.log.warning(
                    "supervisor.shutdown_timeout",
                    after_s=self.cfg.supervisor.shutdown_timeout,
                    next="killing what is left",
                )
                await self._kill_all()
        self.usage.close()
        for prog in self.programs:
            prog.close()
        for sock in self.listeners.values():
            sock.close()

    async def _kill_all(self) -> None:
        alive = [p for p in self.programs if p.pids()]
        for prog in alive:
            for pid in prog.pids():
                process.kill_tree(pid)
        waits = [asyncio.ensure_future(p.wait_down()) for p in alive]
        if waits:
            # SIGKILL cannot be ignored; the reaper hands each exit over as SIGCHLD arrives.
            await asyncio.wait(waits, timeout=5.0)


def write_termination_log(why: str) -> None:
    """Leave the reason where Kubernetes looks for a container's last words, when that file exists."""
    path = os.environ.get("SUPERVISOR_TERMINATION_LOG", "/dev/termination-log")
    if not os.path.exists(path):
        return
    try:
        with open(path, "w") as f:
            f.write(why[:4000] + "\n")
    except OSError:
        pass
