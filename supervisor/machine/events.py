"""The vocabulary of a program's state machine: the events it receives and the actions it returns."""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from supervisor.machine.record import Record


def signal_name(number: int) -> str:
    """Return a signal's name, real-time ones included (``SIGRTMIN+1``), never raising."""
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"SIG{number}"


class Reason(enum.StrEnum):
    """Why a program went down."""

    EXIT = "exit"
    HEALTH = "health"
    MEMORY = "memory"
    OPERATOR = "operator"
    SHUTDOWN = "shutdown"
    RELOAD = "reload"
    START_TIMEOUT = "start_timeout"  # not ready within start_timeout
    HANDOVER = "handover"  # replaced by a newer incarnation that became ready (start-first)
    OOM = "oom"  # killed by the kernel's OOM killer
    MAX_AGE = "max_age"  # recycled: it reached max_age (outside the restart budget)
    FENCE = "fence"  # a singleton that lost its lock connection: another daemon may run it now
    WATCH = "watch"  # a watched file changed (development mode)


# Operator events that are more than news, and their log level; every other event is "info".
EVENT_LEVELS = {
    "program.exited": "warning",
    "program.fatal": "warning",
    "program.unhealthy": "warning",
    "program.kill": "warning",
    "program.spawn_failed": "warning",
    "program.memory_exceeded": "warning",
    "program.oom_killed": "warning",
    "supervisor.oom_group": "warning",
    "program.health_failed": "warning",
    "program.start_timeout": "warning",
    "program.handover_failed": "warning",
    "program.stop_escalated": "warning",
    "program.fenced": "warning",
    "program.exit_deferred": "warning",
    "program.output_suppressed": "warning",
    "dependency.unavailable": "warning",
    "supervisor.cgroup_unreadable": "warning",
    "dependency.timed_out": "error",
}

# What an [alerts.NAME] table may name in `events`: every event above, and those a person should
# hear of although the log gives them at another level. (program.oom_killed comes with OOM
# detection; an alert may name it before this daemon has seen one.)
ALERT_EVENTS = tuple(
    sorted(
        {
            *EVENT_LEVELS,
            "program.oom_killed",
            "program.stack_dump",
            "job.failed",
            "singleton.lock_lost",
            "supervisor.program_fatal",
        }
    )
)

# Every reason a program can be restarted for (a shutdown ends it for good): /metrics exports each.
RESTART_REASONS = tuple(r for r in Reason if r is not Reason.SHUTDOWN)


@dataclass(frozen=True, repr=False, eq=False)
class ExitStatus(Record):
    """How a process ended: an exit code or a signal number."""

    code: int | None = None
    signal: int | None = None
    # A SIGKILL we did not send: True when the kernel's OOM killer sent it (its counters went up),
    # False when the counters could be read and did not move, None when nobody could tell.
    oom: bool | None = None

    @property
    def success(self) -> bool:
        """Whether it exited 0."""
        return self.code == 0 and self.signal is None


# ---- events -------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class DepsChanged(Record):
    """The program's dependencies became (un)available."""

    ok: bool


@dataclass(frozen=True, repr=False, eq=False)
class Start(Record):
    """An operator (or the start-up) asks for the program to run."""


@dataclass(frozen=True, repr=False, eq=False)
class Stop(Record):
    """An operator stops the program and holds it stopped."""


@dataclass(frozen=True, repr=False, eq=False)
class Restart(Record):
    """An operator or a reload asks for a fresh incarnation at once."""

    reason: Reason = Reason.OPERATOR


@dataclass(frozen=True, repr=False, eq=False)
class Shutdown(Record):
    """The supervisor is going down."""


@dataclass(frozen=True, repr=False, eq=False)
class Spawned(Record):
    """The child was forked and exec'd; ``candidate``: the new side of a start-first handover."""

    pid: int
    candidate: bool = False


@dataclass(frozen=True, repr=False, eq=False)
class SpawnFailed(Record):
    """The child could not be exec'd (missing binary, bad cwd, unknown user)."""

    error: str
    candidate: bool = False


@dataclass(frozen=True, repr=False, eq=False)
class Exited(Record):
    """A process of the program was reaped: its main process unless ``pid`` says otherwise."""

    status: ExitStatus
    pid: int | None = None
    # > 0: a dependency it names is being probed (or its kept connection just stirred); its
    # answer is due within this many seconds, and decides whether the exit was the dependency's.
    doubt_s: float = 0.0


@dataclass(frozen=True, repr=False, eq=False)
class Ready(Record):
    """The incarnation ``pid`` said ``READY=1`` on the notify socket, or printed its ``ready_log`` line."""

    pid: int
    by: str = "notify"  # notify | ready_log


@dataclass(frozen=True, repr=False, eq=False)
class HealthResult(Record):
    """A health probe reported; ``pid``: the incarnation probed, when it is not the main one."""

    ok: bool
    detail: str = ""
    pid: int | None = None


@dataclass(frozen=True, repr=False, eq=False)
class MemoryExceeded(Record):
    """The RSS of the program's process tree went over ``max_memory``."""

    rss_bytes: int


@dataclass(frozen=True, repr=False, eq=False)
class Timer(Record):
    """A timer the machine asked for fired; ``generation`` tells a stale one."""

    name: str  # backoff | stop_timeout | min_uptime | start_timeout | handover_timeout | max_age | lock_wait
    generation: int


@dataclass(frozen=True, repr=False, eq=False)
class LockAcquired(Record):
    """A singleton's advisory lock is ours; ``wait_s``: how long to wait before running it."""

    wait_s: float = 0.0  # a Postgres younger than the fence may have lost a holder that still runs


@dataclass(frozen=True, repr=False, eq=False)
class LockLost(Record):
    """A singleton's lock connection failed; ``contact_at``: when a query last went through."""

    contact_at: float
    detail: str = ""
    gone: bool = False  # the connection was closed, not silent: the lock is free already


Event = (
    DepsChanged
    | Start
    | Stop
    | Restart
    | Shutdown
    | Spawned
    | SpawnFailed
    | Exited
    | Ready
    | HealthResult
    | MemoryExceeded
    | Timer
    | LockAcquired
    | LockLost
)

# ---- actions ------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class Spawn(Record):
    """Fork and exec the program, then feed ``Spawned`` or ``SpawnFailed`` back."""

    candidate: bool = False  # beside the running incarnation (start-first)


@dataclass(frozen=True, repr=False, eq=False)
class SendStop(Record):
    """Send one rung's stop signal to the main process (or its group), then SIGCONT to the group."""

    signal: int
    group: bool = False


@dataclass(frozen=True, repr=False, eq=False)
class Retire(Record):
    """Take process ``pid`` down through the stop ladder, then feed ``Exited(status, pid)`` back."""

    pid: int


@dataclass(frozen=True, repr=False, eq=False)
class KillTree(Record):
    """SIGKILL the process group and sweep what is left of the tree."""


@dataclass(frozen=True, repr=False, eq=False)
class SetTimer(Record):
    """Fire ``Timer(name, generation)`` after ``delay_s``."""

    name: str
    delay_s: float
    generation: int


@dataclass(frozen=True, repr=False, eq=False)
class CancelTimers(Record):
    """Cancel every pending timer of the program."""


@dataclass(frozen=True, repr=False, eq=False)
class Log(Record):
    """Emit an operator log event."""

    event: str
    fields: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, repr=False, eq=False)
class BecameFatal(Record):
    """Tell the daemon that this program gave up (``on_fatal`` decides)."""

    why: str


@dataclass(frozen=True, repr=False, eq=False)
class SeekLock(Record):
    """Try for the singleton's lock every second, on a fresh connection, until it is ours."""


@dataclass(frozen=True, repr=False, eq=False)
class ReleaseLock(Record):
    """Close the lock connection (the copy is gone): the lock goes to whoever asks next."""


Action = Spawn | SendStop | Retire | KillTree | SetTimer | CancelTimers | Log | BecameFatal | SeekLock | ReleaseLock
