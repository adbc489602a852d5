"""The runner of one program: the only owner of its children, its timers and its probes."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from supervisor.config.settings import ProgramConfig
from supervisor.engine.units.base import Context, LineBuffer, run_command
from supervisor.engine.units.lastwords import SETTLE_S, LastWords
from supervisor.engine.units.outputgate import OutputGate
from supervisor.engine.units.policy import restart_policy
from supervisor.engine.units.program_status import Extras, Usage, program_entry
from supervisor.engine.units.readylog import ReadyLog
from supervisor.engine.units.watch import Watch
from supervisor.host import proctree
from supervisor.host.output import OutputPump
from supervisor.host.prestart import program_spec
from supervisor.host.process import SpawnSpec
from supervisor.machine import events
from supervisor.machine.clock import Handle
from supervisor.machine.events import EVENT_LEVELS, Event, ExitStatus
from supervisor.machine.model import After, Health
from supervisor.machine.states import Model, State, transition
from supervisor.machine.status import ProgramEntry
from supervisor.stack.singleton import SingletonLock, singleton_key


class ProgramRunner:
    """Turns everything that happens to one program into events for ``transition``."""

    kind = "program"

    def __init__(
        self,
        name: str,
        cfg: ProgramConfig,
        ctx: Context,
        listen_fd: int | None = None,
        log_lines: int = 1000,
        singleton_url: str | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.policy = restart_policy(cfg)
        self.listen_fd = listen_fd
        # autostart = false: stopped after start-up until an operator starts it
        self.model = Model() if cfg.autostart else Model(state=State.STOPPED, held=True)
        self.buffer = LineBuffer(log_lines)
        self.outlet = OutputGate(name, cfg.log_limit, self.buffer, ctx, ctx.log)
        self.restarts_by_reason: dict[str, int] = {}
        self.notify_status: str | None = None
        self.usage: Usage | None = None  # the background sample's (supervisor.engine.usage)
        self.waiting_for: list[str] = []  # what holds it in pending: depends_on, or starts it comes after
        self.spawned_wall: dict[int, float] = {}  # pid -> time.time() of its spawn (file checks)
        self._log = ctx.log.bind(program=name)
        self._queue: list[Event] = []
        self._busy = False
        self._timers: dict[str, Handle] = {}
        self._pumps: dict[int, list[OutputPump]] = {}
        self._retire_timers: dict[int, Handle] = {}
        self.watch = Watch(self, self._run_exec)
        self.ready_log = ReadyLog(cfg.ready_log)
        spawner = ctx.spawner
        note = lambda lines: self.buffer.extend("event", lines)  # noqa: E731
        self.last_words = LastWords(ctx.clock, spawner.signal, spawner.kill_tree, self._log, note, ctx.oom_killed)
        self._stopped_waiters: list[asyncio.Future[None]] = []
        self._settled_waiters: list[asyncio.Future[None]] = []
        self.singleton_url = singleton_url  # its postgres dependency's url, for a singleton
        self.lock = SingletonLock(self.dispatch, self._log, ctx.clock.now)  # idle unless a singleton seeks it

    @property
    def health_failures_total(self) -> int:
        """Failed health checks, ever."""
        return self.watch.health_failures_total

    def redefine(self, cfg: ProgramConfig, listen_fd: int | None, singleton_url: str | None = None) -> None:
        """Take a new definition; it applies from the next incarnation (and the next lock attempt) on."""
        self.cfg = cfg
        self.singleton_url = singleton_url
        self.policy = restart_policy(cfg)
        self.listen_fd = listen_fd
        self.ready_log = ReadyLog(cfg.ready_log)
        self.outlet.configure(cfg.log_limit)

    # ---- events in ------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Feed one event; events raised while acting are queued, never nested."""
        self._queue.append(event)
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                ev = self._queue.pop(0)
                before = self.model
                self.model, actions = transition(before, ev, self.ctx.clock.now(), self.policy, self.ctx.rng)
                if before.restarts != self.model.restarts:
                    reason = self._restart_reason(before)
                    self.restarts_by_reason[reason] = self.restarts_by_reason.get(reason, 0) + 1
                for action in actions:
                    self._act(action)
                self.watch.follow(before, self.model)
                if before.state is not self.model.state:
                    if self.model.state is State.PENDING and self.waiting_for:
                        # learnt while it was up: it waits now, so say on what
                        self._log.info("program.waiting", waiting_for=self.waiting_for)
                    self.ctx.changed()
                elif before.health != self.model.health:
                    self.ctx.changed()  # dependants may wait for "healthy"; readiness may follow
            self._wake_waiters()
        finally:
            self._busy = False

    def _restart_reason(self, before: Model) -> str:
        if before.handover_reason is not None and self.model.handover_reason is None and before.pid != self.model.pid:
            return before.handover_reason.value
        return self.model.last_exit.reason.value if self.model.last_exit else "exit"

    # ---- actions out ----------------------------------------------------------------

    def _act(self, action: events.Action) -> None:
        if isinstance(action, events.Spawn):
            self._spawn(action.candidate)
        elif isinstance(action, events.SendStop):
            if self.model.pid is not None:
                self._send_stop(self.model.pid, action.signal, action.group)
        elif isinstance(action, events.Retire):
            self._retire(action.pid, 0)
        elif isinstance(action, events.KillTree):
            if self.model.pid is not None:
                reason = self.model.stop_reason.value if self.model.stop_reason else "stop"
                # A fence's SIGKILL has a deadline: no SIGABRT and wait for a stack first.
                dump = self.cfg.stack_dump and self.model.stop_reason is not events.Reason.FENCE
                self.last_words.kill(self.model.pid, reason, dump)
        elif isinstance(action, events.SetTimer):
            self._cancel(action.name)
            self._timers[action.name] = self.ctx.clock.call_later(
                action.delay_s, self.dispatch, events.Timer(action.name, action.generation)
            )
        elif isinstance(action, events.CancelTimers):
            for name in list(self._timers):
                self._cancel(name)
        elif isinstance(action, events.Log):
            fields = dict(action.fields)
            getattr(self._log, EVENT_LEVELS.get(action.event, "info"))(action.event, **fields)
        elif isinstance(action, events.BecameFatal):
            self.ctx.fatal(self.name, action.why)
        elif isinstance(action, events.SeekLock):
            key = singleton_key(self.cfg.singleton_key or self.name)
            self.lock.seek(self.singleton_url or "", key, self.cfg.singleton_fence)
        elif isinstance(action, events.ReleaseLock):
            self.lock.release()

    def _send_stop(self, pid: int, sig: int, group: bool) -> None:
        """The stop signal goes to the main process (KillMode=mixed) unless ``stop_group``."""
        self.ctx.spawner.signal(pid, sig, group)
        # A stopped (SIGSTOP) process cannot act on its stop signal until continued.
        self.ctx.spawner.signal(pid, signal.SIGCONT, group=True)

    def _retire(self, pid: int, rung: int) -> None:
        """Walk ``pid`` down the stop ladder; its exit arrives through the reaper."""
        self._retire_timers.pop(pid, None)
        ladder = self.policy.ladder()
        if rung < len(ladder):
            sig, wait_s = ladder[rung]
            self._log.info("program.retiring", pid=pid, signal=events.signal_name(sig))
            self._send_stop(pid, sig, self.policy.stop_group)
            self._retire_timers[pid] = self.ctx.clock.call_later(wait_s, self._retire, pid, rung + 1)
        else:
            self._log.warning("program.kill", pid=pid, hint="did not exit on its stop signal")
            self.last_words.kill(pid, "retire", self.cfg.stack_dump)

    def _cancel(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def spawn_spec(self, argv: list[str] | None = None, capture: bool = True) -> SpawnSpec:
        """Return how this program's processes are started (its probes' too, with ``argv``)."""
        # Env files are read at each start, under environment; an unreadable one fails the spawn.
        return program_spec(self.cfg, self.ctx.base_env, self.ctx.notify_socket, self.listen_fd, argv, capture)

    def _spawn(self, candidate: bool = False) -> None:
        if self.listen_fd is not None:
            self.ctx.listening(self.listen_fd)  # accept connections from the first start on
        wall = time.time()
        try:
            spec = self.spawn_spec()
            lock_fd = self.lock.handoff_fd()
            if lock_fd is not None:
                spec = replace(spec, lock_fd=lock_fd)  # the server sees the session end only after the copy
            early = None if candidate or self.ctx.prestarted is None else self.ctx.prestarted.take(self.name, spec)
            if early is not None:
                child, wall = early  # started before the engine was imported (supervisor.host.prestart)
            else:
                child = self.ctx.spawner.spawn(spec)
        except Exception as exc:  # SpawnError, or an OSError such as EMFILE
            self.dispatch(events.SpawnFailed(str(exc), candidate=candidate))
            return
        pid = child.pid
        self.spawned_wall[pid] = wall
        self.ctx.reaper.own(pid, lambda status: self._exited(pid, status))
        pumps = self._pumps.setdefault(pid, [])
        self.ready_log.spawned(pid)
        for fd, stream in ((child.stdout_fd, "stdout"), (child.stderr_fd, "stderr")):
            if fd is not None:
                pumps.append(OutputPump(self.ctx.loop, fd, self._line_handler(pid, stream)))
        self.dispatch(events.Spawned(pid, candidate=candidate))

    def _line_handler(self, pid: int, stream: str) -> Callable[[list[str]], None]:
        def handle(lines: list[str]) -> None:
            self.outlet.take(stream, lines)  # the ring and the log, within log_limit
            if pid in self.ready_log.waiting:  # only while it starts: one set lookup per read otherwise
                self._ready_lines(pid, lines)
            if pid in self.last_words.dumping:
                self.last_words.lines(pid, stream, lines)

        return handle

    def _ready_lines(self, pid: int, lines: list[str]) -> None:
        m = self.model
        if pid == m.pid and m.state is not State.STARTING:
            self.ready_log.stop_watching(pid)  # ready otherwise, or going down
        elif any(self.ready_log.matched(pid, line) for line in lines):
            self.dispatch(events.Ready(pid, by="ready_log"))

    def _exited(self, pid: int, status: ExitStatus, settled: bool = False) -> None:
        if not settled and pid in self.last_words.dumping:  # its children may still be writing their stacks
            self.ctx.clock.call_later(SETTLE_S, self._exited, pid, status, True)
            return
        # Nothing of an incarnation may outlive its main process: its group goes now; the
        # scan for stragglers that left the group waits until after any restart.
        self.ctx.spawner.signal(pid, signal.SIGKILL, group=True)
        self.ctx.clock.call_later(0.05, self.ctx.spawner.sweep, pid)
        handle = self._retire_timers.pop(pid, None)
        if handle is not None:
            handle.cancel()
        self.spawned_wall.pop(pid, None)
        for pump in self._pumps.pop(pid, []):
            pump.close()
        self.ready_log.stop_watching(pid)
        alive = pid == self.model.pid and self.model.state in (State.STARTING, State.RUNNING)
        doubt = self.ctx.doubt(self.cfg.depends_on) if alive else 0.0  # a crash that may beat a probe
        self.dispatch(events.Exited(self.last_words.exited(pid, status, alive), pid, doubt))

    def _wake_waiters(self) -> None:
        # Whoever waited is told once the events that concern it have been handled.
        woken: list[asyncio.Future[None]] = []
        if self.down():
            woken, self._stopped_waiters = self._stopped_waiters, []
        if self.settled():
            woken += self._settled_waiters
            self._settled_waiters = []
        for fut in woken:
            if not fut.done():
                fut.set_result(None)

    # ---- readiness: READY=1, health and memory -----------------------------------------

    def owns(self, pid: int) -> int | None:
        """Return the incarnation (main or candidate) that ``pid`` is, or descends from."""
        return proctree.incarnation_of(pid, {p for p in (self.model.pid, self.model.next_pid) if p is not None})

    def notified(self, incarnation: int, fields: dict[str, str]) -> None:
        """Take a notify datagram from one of this program's incarnations."""
        if "STATUS" in fields:
            self.notify_status = fields["STATUS"][:200]
        if fields.get("READY") == "1":
            self.dispatch(events.Ready(incarnation))

    async def _run_exec(self, argv: list[str], timeout_s: float) -> ExitStatus | None:
        return await run_command(self.ctx, self.spawn_spec(argv, capture=False), timeout_s)

    # ---- for the daemon ---------------------------------------------------------------

    @property
    def depends_on(self) -> list[str]:
        """The units it waits for."""
        return list(self.cfg.depends_on)

    def begin(self) -> None:
        """Start-up begins: ask to run, unless ``autostart = false``."""
        if self.cfg.autostart:
            self.dispatch(events.Start())

    def gate(self, blocked: list[str]) -> None:
        """Say which dependencies block it, and let the machine know when that changes."""
        self.wait_for(blocked)
        answered = self.model.exit_deferred and not self.ctx.doubt(self.cfg.depends_on)
        if (not blocked) != self.model.deps_ok or answered:  # answered: a deferred exit is decided
            self.dispatch(events.DepsChanged(not blocked))

    def lets_dependants_start(self) -> bool:
        """Running (ready), and healthy where there is a health check; or a singleton on standby.

        A standby singleton runs in another daemon (or will, within seconds): its dependants here
        must not wait for a lock that may never come to this replica.
        """
        if self.model.state is State.STANDBY:
            return True
        return self.model.state is State.RUNNING and self.model.health in (None, Health.HEALTHY)

    def startup_pending(self) -> bool:
        """Start-up waits until it is ready, held, left stopped by autostart, or given up."""
        m = self.model
        settled = self.lets_dependants_start() or m.held or not self.cfg.autostart
        return not (settled or m.state in (State.EXITED, State.FATAL))

    def halt(self) -> None:
        """Programs go down through their own ladders, in reverse order."""

    def wait_for(self, blocked: list[str]) -> None:
        """Learn what blocks it (dependencies, or starts it comes after); in pending, say so once."""
        if blocked != self.waiting_for:
            self.waiting_for = blocked
            if blocked and self.model.state is State.PENDING:
                self._log.info("program.waiting", waiting_for=blocked)

    def start_under_way(self, deps_ok: bool) -> bool:
        """Whether a start of it is under way: starting, stopping to start again, or pending with
        nothing to wait for (it starts in this pass). ``after`` waits on exactly these."""
        m = self.model
        if m.held:
            return False
        if m.state is State.STOPPING:
            return m.after in (After.START_NOW, After.RESTART)
        return m.state is State.STARTING or (m.state is State.PENDING and deps_ok)

    @property
    def main_pid(self) -> int | None:
        """The serving incarnation: the one whose tree ``status`` shows."""
        return self.model.pid

    def pids(self) -> list[int]:
        """Every process of this program that we track: main, candidate, retiring."""
        m = self.model
        return [p for p in (m.pid, m.next_pid, *m.retiring) if p is not None]

    def down(self) -> bool:
        """Whether no process of this program is left and none is going down."""
        return not self.pids() and self.model.state is not State.STOPPING

    def settled(self) -> bool:
        """Whether an operator's request has played out: no stop ladder and no handover running."""
        m = self.model
        return m.state not in (State.STOPPING, State.STARTING) and m.handover_reason is None

    async def wait_settled(self) -> None:
        """Return once ``settled()`` holds."""
        if self.settled():
            return
        fut: asyncio.Future[None] = self.ctx.loop.create_future()
        self._settled_waiters.append(fut)
        await fut

    async def wait_down(self) -> None:
        """Return once the program has no process."""
        if self.down():
            return
        fut: asyncio.Future[None] = self.ctx.loop.create_future()
        self._stopped_waiters.append(fut)
        await fut

    def close(self) -> None:
        """Release timers and tasks (after the processes are gone)."""
        self.watch.close()
        self.last_words.close()
        self.lock.release()
        for name in list(self._timers):
            self._cancel(name)
        for handle in self._retire_timers.values():
            handle.cancel()
        self._retire_timers.clear()
        for pumps in self._pumps.values():
            for pump in pumps:
                pump.close()
        self._pumps = {}

    def status(self, rss: dict[int, int] | None = None) -> ProgramEntry:
        """Return this unit's entry of the status document (``rss``: session sizes, if known)."""
        extras = Extras(self.cfg.autostart, self.notify_status, self.waiting_for, self.usage, self.policy)
        return program_entry(self.name, self.model, extras, self.ctx.clock.now(), rss)

    # ---- operator signals (``supervisor signal``) ---------------------------------------

    def send_signal(self, sig: int, group: bool) -> None:
        """Send ``sig`` to the main process, or with ``group`` to its whole process group."""
        pid = self.model.pid
        if pid is None:
            raise ProcessLookupError(f"{self.name} has no process (it is {self.model.state.value})")
        self._log.info("program.signalled", pid=pid, signal=events.signal_name(sig), group=group)
        if not self.ctx.spawner.signal(pid, sig, group):
            raise ProcessLookupError(f"{self.name}'s process {pid} is gone")
