"""The runner of one program: the only owner of its child, its timers and its probes."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from supervisor import probes, states
from supervisor.config.models import ProgramConfig
from supervisor.output import OutputPump
from supervisor.process import (
    SpawnSpec,
    child_environment,
    kill_tree,
    signal_group,
    spawn,
    sweep_session,
    tree_rss,
)
from supervisor.states import Event, ExitStatus, Model, State, transition
from supervisor.units.base import Context, LineBuffer, line_handler, run_command

_WARN = {
    "program.exited",
    "program.fatal",
    "program.unhealthy",
    "program.kill",
    "program.spawn_failed",
    "program.memory_exceeded",
    "program.health_failed",
}


def restart_policy(cfg: ProgramConfig) -> states.RestartPolicy:
    """Project a program's configuration onto what the state machine needs."""
    health = cfg.health
    return states.RestartPolicy(
        policy=cfg.restart.policy,
        backoff=cfg.restart.backoff.policy(),
        reset_after_s=cfg.restart.reset_after,
        max_restarts=cfg.restart.max_restarts,
        window_s=cfg.restart.window,
        stop_timeout_s=cfg.stop_timeout,
        has_health=health is not None,
        health_failure_threshold=health.failure_threshold if health else 3,
        health_start_period_s=health.start_period if health else 0.0,
    )


class ProgramRunner:
    """Turns everything that happens to one program into events for ``transition``."""

    kind = "program"

    def __init__(
        self, name: str, cfg: ProgramConfig, ctx: Context, listen_fd: int | None = None, log_lines: int = 1000
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.policy = restart_policy(cfg)
        self.listen_fd = listen_fd
        self.model = Model()
        self.buffer = LineBuffer(log_lines)
        self.restarts_by_reason: dict[str, int] = {}
        self.health_failures_total = 0
        self._log = ctx.log.bind(program=name)
        self._queue: list[Event] = []
        self._busy = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._pumps: list[OutputPump] = []
        self._probe = self._make_probe()
        self._probe_task: asyncio.Task[None] | None = None
        self._stopped_waiters: list[asyncio.Future[None]] = []

    def redefine(self, cfg: ProgramConfig, listen_fd: int | None) -> None:
        """Take a new definition; it applies from the next incarnation on."""
        self.cfg = cfg
        self.policy = restart_policy(cfg)
        self.listen_fd = listen_fd
        self._probe = self._make_probe()

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
                    reason = self.model.last_exit.reason.value if self.model.last_exit else "exit"
                    self.restarts_by_reason[reason] = self.restarts_by_reason.get(reason, 0) + 1
                for action in actions:
                    self._act(action)
                if before.state is not self.model.state:
                    self._state_changed(before.state)
                elif before.health != self.model.health:
                    self.ctx.changed()  # dependants may wait for "healthy"; readiness may follow
        finally:
            self._busy = False

    def _state_changed(self, before: State) -> None:
        now = self.model.state
        if before is State.RUNNING:
            self._stop_watching()
        if now is State.RUNNING:
            self._start_watching()
        self.ctx.changed()

    # ---- actions out ----------------------------------------------------------------

    def _act(self, action: states.Action) -> None:
        if isinstance(action, states.Spawn):
            self._spawn()
        elif isinstance(action, states.SignalGroup):
            if self.model.pid is not None:
                sig = signal.Signals[self.cfg.stop_signal]
                signal_group(self.model.pid, sig)
                # A stopped (SIGSTOP) process cannot act on its stop signal until continued.
                signal_group(self.model.pid, signal.SIGCONT)
        elif isinstance(action, states.KillTree):
            if self.model.pid is not None:
                kill_tree(self.model.pid)
        elif isinstance(action, states.SetTimer):
            self._cancel(action.name)
            self._timers[action.name] = self.ctx.loop.call_later(
                action.delay_s, self.dispatch, states.Timer(action.name, action.generation)
            )
        elif isinstance(action, states.CancelTimers):
            for name in list(self._timers):
                self._cancel(name)
        elif isinstance(action, states.Log):
            fields = dict(action.fields)
            (self._log.warning if action.event in _WARN else self._log.info)(action.event, **fields)
        elif isinstance(action, states.BecameFatal):
            self.ctx.fatal(self.name, action.why)

    def _cancel(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _spawn(self) -> None:
        env = child_environment(self.ctx.base_env, self.cfg.environment)
        spec = SpawnSpec(
            argv=list(self.cfg.command), env=env, cwd=self.cfg.cwd, user=self.cfg.user, listen_fd=self.listen_fd
        )
        try:
            child = spawn(spec)
        except Exception as exc:  # SpawnError, or an OSError such as EMFILE
            self.dispatch(states.SpawnFailed(str(exc)))
            return
        self.ctx.reaper.own(child.pid, self._exited)
        for fd, stream in ((child.stdout_fd, "stdout"), (child.stderr_fd, "stderr")):
            if fd is not None:
                self._pumps.append(OutputPump(self.ctx.loop, fd, line_handler(self._line, stream)))
        self.dispatch(states.Spawned(child.pid))

    def _line(self, stream: str, line: str) -> None:
        self.buffer.add(stream, line)
        self.ctx.output(self.name, stream, line)

    def _exited(self, status: ExitStatus) -> None:
        pid = self.model.pid
        if pid is not None:
            # Nothing of the program may outlive its main process: its group goes now; the
            # scan for stragglers that left the group waits until after any restart.
            signal_group(pid, signal.SIGKILL)
            self.ctx.loop.call_later(0.05, sweep_session, pid)
        pumps, self._pumps = self._pumps, []
        for pump in pumps:
            pump.close()
        self.dispatch(states.Exited(status))
        # Whoever waited for this process to go is told once its exit has been handled.
        waiters, self._stopped_waiters = self._stopped_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # ---- health and memory ----------------------------------------------------------

    def _make_probe(self) -> probes.Probe | None:
        h = self.cfg.health
        if h is None:
            return None
        if h.http is not None:
            return probes.http(h.http, h.timeout)
        if h.tcp is not None:
            return probes.tcp(h.tcp, h.timeout)
        if h.file is not None and h.max_age is not None:
            return probes.file(h.file, h.max_age)
        assert h.exec is not None
        return probes.exec_(list(h.exec), h.timeout, self._run_exec)

    async def _run_exec(self, argv: list[str], timeout_s: float) -> ExitStatus | None:
        env = child_environment(self.ctx.base_env, self.cfg.environment)
        spec = SpawnSpec(argv=argv, env=env, cwd=self.cfg.cwd, user=self.cfg.user, capture=False)
        return await run_command(self.ctx, spec, timeout_s)

    def _start_watching(self) -> None:
        if self._probe is not None and self.cfg.health is not None:
            # Until the first success, probe at least every second so dependants start soon.
            self._probe_task = self.ctx.loop.create_task(self._health_loop(self.model.generation))
        if self.cfg.max_memory is not None:
            self._timers["memory"] = self.ctx.loop.call_later(self.cfg.memory_interval, self._check_memory)

    def _stop_watching(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        self._cancel("memory")

    async def _health_loop(self, generation: int) -> None:
        assert self._probe is not None and self.cfg.health is not None
        interval = self.cfg.health.interval
        while self.model.generation == generation and self.model.state is State.RUNNING:
            delay = interval if self.model.health == "healthy" else min(interval, 1.0)
            await asyncio.sleep(delay)
            result = await self._probe()
            self.ctx.on_probe("program", self.name, result.elapsed_s, result.ok)
            if self.model.generation != generation:
                return  # a report about an incarnation that is gone
            if not result.ok:
                self.health_failures_total += 1
            self.dispatch(states.HealthResult(result.ok, result.detail))

    def _check_memory(self) -> None:
        self._timers.pop("memory", None)
        if self.model.state is not State.RUNNING or self.model.pid is None or self.cfg.max_memory is None:
            return
        rss = tree_rss(self.model.pid)
        if rss > self.cfg.max_memory:
            self.dispatch(states.MemoryExceeded(rss))
        else:
            self._timers["memory"] = self.ctx.loop.call_later(self.cfg.memory_interval, self._check_memory)

    # ---- for the daemon ---------------------------------------------------------------

    def ready_for_dependants(self) -> bool:
        """Running, and healthy where there is a health check."""
        return self.model.state is State.RUNNING and self.model.health in (None, "healthy")

    async def wait_down(self) -> None:
        """Return once the program has no process."""
        if self.model.pid is None and self.model.state is not State.STOPPING:
            return
        fut: asyncio.Future[None] = self.ctx.loop.create_future()
        self._stopped_waiters.append(fut)
        await fut

    def close(self) -> None:
        """Release timers and tasks (after the process is gone)."""
        self._stop_watching()
        for name in list(self._timers):
            self._cancel(name)
        for pump in self._pumps:
            pump.close()
        self._pumps = []

    def status(self, rss: dict[int, int] | None = None) -> dict[str, Any]:
        """Return this unit's entry of the status document (``rss``: session sizes, if known)."""
        m = self.model
        now = self.ctx.clock.now()
        last_exit: dict[str, Any] | None = None
        if m.last_exit is not None:
            st = m.last_exit.status
            last_exit = {"code": st.code} if st.signal is None else {"signal": signal.Signals(st.signal).name}
            last_exit["reason"] = m.last_exit.reason.value
        running = m.pid is not None and m.started_at is not None
        return {
            "name": self.name,
            "kind": "program",
            "state": m.state.value,
            "pid": m.pid,
            "uptime_s": round(now - m.started_at, 3) if running and m.started_at is not None else None,
            "restarts": m.restarts,
            "health": m.health,
            "last_exit": last_exit,
            "rss_bytes": (rss.get(m.pid) if rss is not None else tree_rss(m.pid)) if m.pid is not None else None,
            "error": m.error,
        }

    # ---- operator signals (``supervisor signal``) ---------------------------------------

    def send_signal(self, sig: int, group: bool) -> None:
        """Send ``sig`` to the main process, or with ``group`` to its whole process group."""
        pid = self.model.pid
        if pid is None:
            raise ProcessLookupError(f"{self.name} has no process (it is {self.model.state.value})")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        self._log.info("program.signalled", pid=pid, signal=name, group=group)
        if group:
            signal_group(pid, sig)
        else:
            os.kill(pid, sig)
