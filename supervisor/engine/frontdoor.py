"""The daemon's front door: the operator verbs of ``ControlTarget`` and the status document.

``Daemon`` inherits them; the attributes declared on ``FrontDoor`` are all they read of it.
Requests that change anything run in the daemon's main task (``call``), in order with signals.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from supervisor import __version__
from supervisor.config.settings import Loaded
from supervisor.engine import instances, logstream
from supervisor.engine.instances import check_scale
from supervisor.engine.readiness import Call, DaemonEvent, Phase, Readiness
from supervisor.engine.target import (
    Conflict,
    Figures,
    LogRow,
    LogTail,
    NotFound,
    ProbeLatencies,
    ProgramCounters,
    ScaleDone,
    SignalSent,
    Verb,
)
from supervisor.engine.units.base import LineBuffer, Unit
from supervisor.engine.units.program import ProgramRunner
from supervisor.engine.usage import UsageSampler
from supervisor.host import process
from supervisor.host.logwriter import LogWriter
from supervisor.machine.clock import Clock
from supervisor.machine.events import Reason, Restart, Start, Stop
from supervisor.machine.instances import members, select
from supervisor.machine.model import DOWN_STATES
from supervisor.machine.status import ProgramEntry, StatusDocument, UnitEntry, traffic_reasons, unit_problems
from supervisor.machine.timeline import Document as TimelineDocument
from supervisor.machine.timeline import Timeline, document

T = TypeVar("T")


class FrontDoor:
    """What an operator may ask of the daemon: act on programs, signal, logs, status, timeline, figures."""

    units: dict[str, Unit]
    state: Phase
    log: Any
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[DaemonEvent]
    clock: Clock
    started_at: float
    startup: Timeline
    readiness: Readiness
    loaded: Loaded
    log_writer: LogWriter | None
    usage: UsageSampler
    probe_latencies: ProbeLatencies

    @property
    def programs(self) -> list[ProgramRunner]:
        """Every program runner, in start-up order."""
        return [u for u in self.units.values() if isinstance(u, ProgramRunner)]

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` (an async function) in the main loop's task, in order with signals."""
        fut: asyncio.Future[T] = self.loop.create_future()
        self.queue.put_nowait(Call(fn, fut))
        return await fut

    def _program(self, name: str) -> ProgramRunner:
        """Return the program named ``name``, or raise ``NotFound`` naming the programs there are."""
        unit = self.units.get(name)
        if not isinstance(unit, ProgramRunner):
            known = ", ".join(p.name for p in self.programs)
            raise NotFound(f"no program named {name!r} (programs: {known})")
        return unit

    def _targets(self, name: str) -> list[ProgramRunner]:
        """Return the programs ``name`` stands for: every one (``all``), a program, or all of its instances."""
        if name == "all":
            return self.programs
        found = [u for n in members(name, self.units) if isinstance(u := self.units[n], ProgramRunner)]
        return found or [self._program(name)]

    def _refuse_while_leaving(self) -> None:
        """Raise ``Conflict`` once the supervisor is on its way out: draining or stopping."""
        if self.state is Phase.STOPPING:
            raise Conflict("the supervisor is shutting down")
        if self.state is Phase.DRAINING:
            raise Conflict("the supervisor is draining before its shutdown")

    async def scale(self, name: str, count: object) -> ScaleDone:
        """Run ``count`` instances of program ``name``; ``Refused`` for a bad count, ``NotFound`` for no program."""
        self._refuse_while_leaving()
        known = list(dict.fromkeys(p.cfg.instance_of or p.name for p in self.programs))
        count = check_scale(self.loaded, name, count, known)
        return await instances.scale(self, name, count)  # type: ignore[arg-type]  # Daemon is the host

    # ---- verbs ----------------------------------------------------------------------

    def _recompute(self) -> None:
        """Gate every unit again on what the others are doing now (the daemon's)."""
        raise NotImplementedError

    def _after_levels(self, targets: list[ProgramRunner]) -> list[list[ProgramRunner]]:
        """Return ``targets`` in plan order, in levels: each after the ones it starts after (``after``)."""
        programs = self.loaded.config.programs
        names = {p.name for p in targets}
        depth: dict[str, int] = {}

        def deepest(name: str, path: frozenset[str]) -> int:
            if name not in depth:
                after = programs[name].after if name in programs else []
                firsts = [m for a in after for m in members(a, names) if m not in path]  # `after = ["web"]`: web:0...
                depth[name] = 1 + max((deepest(a, path | {name}) for a in firsts), default=-1)
            return depth[name]

        levels: dict[int, list[ProgramRunner]] = {}
        for prog in targets:
            levels.setdefault(deepest(prog.name, frozenset()), []).append(prog)
        return [levels[level] for level in sorted(levels)]

    async def act(self, name: str, verb: Verb, reason: Reason = Reason.OPERATOR) -> list[ProgramEntry]:
        """Start, stop or restart one program (or ``all``); wait (bounded) until it settles."""
        self._refuse_while_leaving()
        targets = self._targets(name)
        if verb == "restart" and name != "all" and name not in self.units:  # a program's instances
            return await instances.rolling_restart(self, name, targets, reason)  # type: ignore[arg-type]
        event: Start | Stop | Restart = Start() if verb == "start" else Stop() if verb == "stop" else Restart(reason)

        async def dispatch() -> None:
            for level in self._after_levels(targets):
                # Gate again first: a follower's start (`after`) sees the starts just asked for. Once a
                # level, not once a program: `start web` of 1,000 instances was 1,000 whole passes.
                self._recompute()
                for prog in level:
                    self.log.info("control.request", program=prog.name, action=verb)
                    prog.dispatch(event)

        await self.call(dispatch)
        waits = [asyncio.ensure_future(p.wait_settled()) for p in targets]
        if waits:
            timeout = max(p.cfg.stop_total + p.cfg.start_timeout for p in targets) + 5.0
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for fut in pending:
                fut.cancel()
        statuses = [p.status() for p in targets]
        failed = [s for s in statuses if verb == "restart" and (s["error"] or "").startswith("restart failed")]
        if failed:
            raise Conflict("; ".join(f"{s['name']}: {s['error']}" for s in failed), statuses)
        return statuses

    async def send_signal(self, name: str, sig: int, group: bool) -> SignalSent:
        """Signal one program's main process (or its group); ``Conflict`` when it is not running."""
        prog = self._program(name)

        async def send() -> SignalSent:
            pid = prog.model.pid
            if pid is None or prog.model.state in DOWN_STATES:
                raise Conflict(f"{name} is not running (it is {prog.model.state.value})")
            try:
                prog.send_signal(sig, group)
            except ProcessLookupError:
                raise Conflict(f"{name} is not running (its process is gone)") from None
            return {"program": name, "pid": pid, "signal": sig, "group": group}

        return await self.call(send)

    def _buffers(self) -> dict[str, LineBuffer]:
        return {n: u.buffer for n, u in self.units.items() if u.buffer is not None}

    def tail_logs(self, names: Sequence[str], lines: int) -> LogTail:
        """Return the last ``lines`` lines of the named programs and jobs (all without names), merged.

        A program with instances names them all, merged.
        """
        buffers = self._buffers()
        chosen, unknown = select(names, buffers)
        return logstream.tail(buffers, chosen + unknown, lines)

    def follow_logs(self, names: Sequence[str]) -> AsyncGenerator[LogRow, None]:
        """Yield each new line of the named programs and jobs (all, and those a reload adds, without names).

        A program with instances names them all, those a scale adds too.
        """
        return logstream.follow(self._buffers, names)

    def timeline(self) -> TimelineDocument:
        """Return the start-up as it happened: each unit's instants and the critical chain."""
        programs = self.loaded.config.programs

        def each(names: list[str]) -> list[str]:  # a program with instances: each of them
            return [m for name in names for m in members(name, self.units) or [name]]

        units = [
            (n, u.kind, each(u.depends_on), each(programs[n].after if n in programs else []), u.startup_pending())
            for n, u in self.units.items()
        ]
        return document(self.startup, units, self.clock.now() - self.started_at)

    # ---- what it shows --------------------------------------------------------------

    def _entries(self, rss: dict[int, int]) -> list[UnitEntry]:
        """Return every unit's entry, in start-up order, with its instants."""
        entries: list[UnitEntry] = []
        for unit in self.units.values():
            entry = unit.status(rss)
            entry["timeline"] = self.startup.of(unit.name)
            entries.append(entry)
        return entries

    def problems(self) -> list[str]:
        """Return what keeps the units from being as ``status`` exit 0 requires (no pass over /proc)."""
        return unit_problems(self._entries({}))

    def status(self, rss_pass: bool = True) -> StatusDocument:
        """Return the status document; ``ready`` is live, as ``/readyz`` answers.

        ``rss_pass=False`` leaves RSS out and saves the /proc pass.
        """
        self.usage.asked()  # someone looks: CPU and MEM are sampled every 5 s for a while
        pids = {p.model.pid for p in self.programs if p.model.pid is not None}
        units = self._entries(process.trees_rss(pids) if rss_pass else {})
        traffic = self.loaded.config.supervisor.traffic
        return {
            "supervisor": {
                "pid": os.getpid(),
                "version": __version__,
                "state": self.state,
                "uptime_s": round(self.clock.now() - self.started_at, 3),
                "ready": self.state is Phase.RUNNING and not unit_problems(units),
                "ready_for_traffic": not traffic_reasons(self.state, units, traffic),
                "traffic": traffic,
                "started": self.readiness.ready_sent,
                "config": str(self.loaded.path),
                "time": time.time(),
            },
            "units": units,
        }

    def figures(self) -> Figures:
        """Return what ``/metrics`` shows: the status document and the counters beside it."""
        programs: dict[str, ProgramCounters] = {}
        for prog in self.programs:
            le = prog.model.last_exit
            code = None if le is None else (le.status.code or 0) if le.status.signal is None else -le.status.signal
            programs[prog.name] = {
                "restarts_by_reason": dict(prog.restarts_by_reason),
                "health_failures": prog.health_failures_total,
                "output_suppressed": prog.outlet.suppressed_total,
                "last_exit_code": code,
            }
        return {
            "status": self.status(),
            "programs": programs,
            "probes": self.probe_latencies.series(),
            "log_lines_dropped": self.log_writer.dropped_total if self.log_writer is not None else 0,
        }
