"""The vocabulary of a program's state machine: the events it receives and the actions it returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reason(enum.StrEnum):
    """Why a program went down."""

    EXIT = "exit"
    HEALTH = "health"
    MEMORY = "memory"
    OPERATOR = "operator"
    SHUTDOWN = "shutdown"
    RELOAD = "reload"


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code or a signal number."""

    code: int | None = None
    signal: int | None = None

    @property
    def success(self) -> bool:
        """Whether it exited 0."""
        return self.code == 0 and self.signal is None


# ---- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class DepsChanged:
    """The program's dependencies became (un)available."""

    ok: bool


@dataclass(frozen=True)
class Start:
    """An operator (or the start-up) asks for the program to run."""


@dataclass(frozen=True)
class Stop:
    """An operator stops the program and holds it stopped."""


@dataclass(frozen=True)
class Restart:
    """An operator or a reload asks for a fresh incarnation at once."""

    reason: Reason = Reason.OPERATOR


@dataclass(frozen=True)
class Shutdown:
    """The supervisor is going down."""


@dataclass(frozen=True)
class Spawned:
    """The child was forked and exec'd."""

    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    """The child could not be exec'd (missing binary, bad cwd, unknown user)."""

    error: str


@dataclass(frozen=True)
class Exited:
    """The program's main process was reaped."""

    status: ExitStatus


@dataclass(frozen=True)
class HealthResult:
    """A health probe reported."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class MemoryExceeded:
    """The RSS of the program's process tree went over ``max_memory``."""

    rss_bytes: int


@dataclass(frozen=True)
class Timer:
    """A timer the machine asked for fired; ``generation`` tells a stale one."""

    name: str  # "backoff" | "stop_timeout"
    generation: int


Event = (
    DepsChanged
    | Start
    | Stop
    | Restart
    | Shutdown
    | Spawned
    | SpawnFailed
    | Exited
    | HealthResult
    | MemoryExceeded
    | Timer
)

# ---- actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    """Fork and exec the program, then feed ``Spawned`` or ``SpawnFailed`` back."""


@dataclass(frozen=True)
class SignalGroup:
    """Send the program's stop signal to its process group, then SIGCONT."""


@dataclass(frozen=True)
class KillTree:
    """SIGKILL the process group and sweep what is left of the tree."""


@dataclass(frozen=True)
class SetTimer:
    """Fire ``Timer(name, generation)`` after ``delay_s``."""

    name: str
    delay_s: float
    generation: int


@dataclass(frozen=True)
class CancelTimers:
    """Cancel every pending timer of the program."""


@dataclass(frozen=True)
class Log:
    """Emit an operator log event."""

    event: str
    fields: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class BecameFatal:
    """Tell the daemon that this program gave up (``on_fatal`` decides)."""

    why: str


Action = Spawn | SignalGroup | KillTree | SetTimer | CancelTimers | Log | BecameFatal
