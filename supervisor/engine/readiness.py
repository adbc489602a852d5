"""Start-up as a service manager sees it: the phase, READY=1, STATUS=, EXTEND_TIMEOUT_USEC=, WATCHDOG=1.

The daemon hands over a ``Snapshot`` after each change of any unit; this object decides what to
tell systemd (or nothing, without ``NOTIFY_SOCKET``) and when start-up is over.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from supervisor.host.systemd import Notifier
from supervisor.machine.record import Record


class Phase(enum.StrEnum):
    """The daemon's own state, as the status document and /healthz spell it."""

    STARTING = "starting"  # start-up is not over (no READY=1 yet)
    RUNNING = "running"
    DRAINING = "draining"  # SIGTERM came: not ready, programs still serving for [supervisor] drain
    STOPPING = "stopping"


@dataclass(frozen=True, repr=False, eq=False)
class SignalReceived(Record):
    """A signal for the daemon arrived (handlers only enqueue this)."""

    signal: int


@dataclass(frozen=True, repr=False, eq=False)
class GiveUpRequested(Record):
    """A unit gave up for good; the daemon stops everything and exits."""

    why: str


@dataclass(frozen=True, repr=False, eq=False)
class Call(Record):
    """Run an operator's request in the main loop's task, in order with signals."""

    fn: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


@dataclass(frozen=True, repr=False, eq=False)
class Stopped(Record):
    """The shutdown is over."""


DaemonEvent = SignalReceived | GiveUpRequested | Call | Stopped


@dataclass(frozen=True, repr=False, eq=False)
class Snapshot(Record):
    """What start-up still waits for."""

    waiting: tuple[str, ...]  # dependencies not ready yet
    jobs: tuple[str, ...]  # jobs not finished (or not started)
    programs_settled: bool  # every program running, held, or given up

    @classmethod
    def of(cls, pending: list[tuple[str, str]]) -> Snapshot:
        """Build from the ``(kind, name)`` of every unit that start-up still waits for."""
        return cls(
            waiting=tuple(n for k, n in pending if k == "dependency"),
            jobs=tuple(n for k, n in pending if k == "job"),
            programs_settled=not any(k == "program" for k, _ in pending),
        )


def status_line(problems: list[str]) -> str:
    """Return systemd's STATUS= once start-up is over: ``running``, or ``degraded:`` and the first problems."""
    return "running" if not problems else "degraded: " + "; ".join(problems[:3])


class Readiness:
    """Tracks start-up and speaks the notify protocol for the daemon."""

    def __init__(
        self, notifier: Notifier, log: Any, now: Callable[[], float], problems: Callable[[], list[str]]
    ) -> None:
        self.notifier = notifier
        self.log = log
        self.now = now
        self.started_at = now()
        self.ready_sent = False
        self._problems = problems

    def report(self, snap: Snapshot, programs: int) -> bool:
        """Tell the service manager where start-up is; return True the moment it is over."""
        if snap.programs_settled and not snap.waiting and not snap.jobs:
            if not self.ready_sent:
                self.ready_sent = True
                self.log.info("supervisor.ready", programs=programs, after_s=round(self.now() - self.started_at, 3))
                self.notifier.send(ready=1, status=status_line(self._problems()) if self.notifier.enabled else "")
                return True
            if self.notifier.enabled:  # the status line reads every unit: only for a listener
                self.notifier.send(status=status_line(self._problems()))
            return False
        if snap.waiting:
            phase = f"waiting for {', '.join(snap.waiting)}"
        elif snap.jobs:
            phase = f"running job {', '.join(snap.jobs)}"
        else:
            phase = "starting programs"
        self.notifier.send(status=phase)
        return False

    def job_running(self, longest_timeout_s: float) -> None:
        """A migration may outlast TimeoutStartSec: ask systemd for more time while it runs."""
        self.notifier.send(extend_timeout_usec=int((longest_timeout_s + 30) * 1e6))

    def watchdog(self, loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
        """Ping from the main loop only, so a wedged loop stops the pings and systemd steps in."""
        self.notifier.send(watchdog=1)
        loop.call_later(interval_s, self.watchdog, loop, interval_s)

    def stopping(self) -> None:
        """Say the service is going down."""
        self.notifier.send(stopping=1, status="stopping")
