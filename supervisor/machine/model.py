"""A program's supervision state: its states, its policy and its model, as plain frozen data.

``states.transition`` (and ``handover``) move a ``Model`` from one value to the next; nothing
here decides anything.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, field

from supervisor.machine.backoff import Backoff
from supervisor.machine.events import ExitStatus, Reason
from supervisor.machine.record import Record


class State(enum.StrEnum):
    """A program's states, as the status document spells them."""

    PENDING = "pending"  # waiting on its dependencies, or on a start it comes after (`after`)
    STARTING = "starting"  # spawned (or being spawned), not yet ready
    RUNNING = "running"  # ready: READY=1, a passing health check, or up for min_uptime
    BACKOFF = "backoff"  # waiting before the next start
    STOPPING = "stopping"  # going down through its stop ladder
    STOPPED = "stopped"  # stopped by an operator or the shutdown
    EXITED = "exited"  # exited and its policy does not restart it
    FATAL = "fatal"  # exhausted its restart budget, or cannot be spawned
    STANDBY = "standby"  # a singleton whose lock another daemon holds: it tries again every second


class Health(enum.StrEnum):
    """A program's health, where it has a check (``None`` where it has none)."""

    UNKNOWN = "unknown"  # no check has passed in this incarnation yet
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # failure_threshold failures in a row


# Named groups of states, as supervisord keeps RUNNING_STATES beside its states.
DOWN_STATES = frozenset({State.STOPPED, State.EXITED, State.FATAL})
# Well as far as this daemon goes: readiness, status's exit code and dependants take both.
UP_STATES = frozenset({State.RUNNING, State.STANDBY})


class Lock(enum.StrEnum):
    """Where a singleton stands with its advisory lock."""

    NONE = "none"  # neither held nor sought: not a singleton, or down
    SEEKING = "seeking"  # trying every second (standby)
    HELD = "held"  # ours: the program may run
    LOST = "lost"  # the lock connection failed: fenced, its connection kept open until the copy is gone


class After(enum.StrEnum):
    """What a stopping program does once it has exited."""

    RESTART = "restart"  # through the backoff and the restart budget (health, memory)
    START_NOW = "start_now"  # at once, outside the budget (operator restart, reload)
    STAY_STOPPED = "stay_stopped"


@dataclass(frozen=True, repr=False, eq=False)
class RestartPolicy(Record):
    """Everything ``transition`` needs to know of a program's configuration."""

    policy: str = "always"  # always | on-failure | never
    backoff: Backoff = field(default_factory=Backoff)
    reset_after_s: float = 60.0
    max_restarts: int = 10
    window_s: float = 300.0
    stop_timeout_s: float = 10.0
    # (signal, seconds to wait after it) per rung; empty: one SIGTERM rung of stop_timeout_s
    stop_ladder: tuple[tuple[int, float], ...] = ()
    stop_group: bool = False
    has_health: bool = False
    health_failure_threshold: int = 3
    health_start_period_s: float = 0.0
    min_uptime_s: float = 0.0
    start_timeout_s: float = 60.0
    notify: bool = False
    ready_log: bool = False  # a line of its output says it is ready
    start_first: bool = False
    success_codes: frozenset[int] = frozenset()
    no_restart_codes: frozenset[int] = frozenset({78})
    max_age_s: float = 0.0  # recycle after this long (0: never)
    max_age_jitter: float = 0.1  # a fraction of max_age, added at random
    singleton: bool = False  # runs only while it holds its advisory lock
    fence_s: float = 10.0  # from the lock's last sign of life to SIGKILL, at most

    @property
    def says_ready(self) -> bool:
        """Whether the incarnation itself says when it is ready (READY=1, or its ready_log line)."""
        return self.notify or self.ready_log

    def ladder(self) -> tuple[tuple[int, float], ...]:
        """Return the stop ladder's rungs; SIGKILL follows the last one."""
        return self.stop_ladder or ((int(signal.SIGTERM), self.stop_timeout_s),)

    def succeeded(self, status: ExitStatus) -> bool:
        """Whether an exit counts as a success for ``on-failure``."""
        return status.signal is None and (status.code == 0 or status.code in self.success_codes)


@dataclass(frozen=True, repr=False, eq=False)
class LastExit(Record):
    """The last exit as the status document shows it."""

    status: ExitStatus
    reason: Reason


@dataclass(frozen=True, repr=False, eq=False)
class Model(Record):
    """A program's supervision state; replaced, never mutated."""

    state: State = State.PENDING
    deps_ok: bool = False
    held: bool = False  # an operator stop holds the program down until a start
    pid: int | None = None
    generation: int = 0  # bumped at every spawn; timers carry it so stale ones are ignored
    started_at: float | None = None
    attempt: int = 0  # restarts since the last stable run; drives the backoff
    restarts: int = 0  # every restart ever, for the status document
    restart_times: tuple[float, ...] = ()  # inside the budget window
    health: Health | None = None  # None: the program has no check
    health_failures: int = 0
    stop_reason: Reason | None = None
    after: After | None = None
    rung: int = 0  # the stop ladder's rung reached
    killed: bool = False  # the stop ladder reached SIGKILL
    last_exit: LastExit | None = None
    error: str | None = None  # why fatal, or why the last handover failed
    exit_deferred: bool = False  # pending on a crash until a dependency's probe answers (machine.deferral)
    # start-first: the new incarnation started beside the serving one, and old ones going down
    next_pid: int | None = None
    next_started_at: float | None = None
    handover_id: int = 0  # the handover_timeout timer carries it
    handover_reason: Reason | None = None
    # The incarnation a handover replaced, still retiring, and why: its exit becomes last_exit.
    replaced_pid: int | None = None
    replaced_reason: Reason | None = None
    retiring: tuple[int, ...] = ()
    lock: Lock = Lock.NONE  # a singleton's advisory lock
