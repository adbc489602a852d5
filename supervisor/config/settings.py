"""The validated configuration as plain frozen values: what the daemon runs on.

``supervisor.config`` validates a file with pydantic and hands over these dataclasses,
field for field. The running daemon imports only this module, never pydantic (about
15 MB of resident memory and 75 ms of start-up): a validated configuration reaches it
pickled, from a child that validated it (or from the cache of one), and is read back here
by an unpickler that accepts these classes and nothing else.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PosixPath
from typing import Any

from supervisor.machine.backoff import Backoff
from supervisor.machine.errors import ConfigError, ConfigNotFound
from supervisor.machine.record import Record

DEFAULT_PATH = "conf/supervisor.toml"


def find_path(explicit: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """Return the file from ``--config``, else ``$SUPERVISOR_CONFIG``, else the default."""
    return Path(explicit or environ.get("SUPERVISOR_CONFIG") or DEFAULT_PATH)


def path_origin(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """Say where ``find_path`` took the file's name from, for a message about it."""
    if explicit:
        return "named on the command line"
    return "from $SUPERVISOR_CONFIG" if environ.get("SUPERVISOR_CONFIG") else "the default"


def absolute(path: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """Return ``path`` made absolute as the operator named it, without resolving symbolic links.

    A symlinked release (``/srv/app/current -> releases/42``) is named through its link, so a
    reload after the link moves reads the new release and a restart runs in it. A relative path
    is joined onto the logical working directory: ``$PWD`` when it is the same directory as
    ``.`` (a shell's or a service manager's ``cd /srv/app/current`` keeps the link there, where
    ``os.getcwd()`` has it resolved), else ``os.getcwd()``. ``..`` is kept, never collapsed:
    after a link it names the target's parent, which only the kernel knows, so this joins as
    pathlib does and never normalises as ``os.path.abspath`` does.
    """
    if path.is_absolute():
        return path
    cwd = os.getcwd()
    logical = environ.get("PWD", "")
    if logical.startswith("/") and logical != cwd:
        try:
            same = os.path.samefile(logical, ".")
        except OSError:
            same = False
        cwd = logical if same else cwd
    return Path(cwd, path)


def parse_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:80`` for IPv6); raise ``ValueError`` when it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True, repr=False, eq=False)
class BackoffConfig(Record):
    """``backoff = { initial, factor, max, jitter }``."""

    initial: float
    factor: float
    max: float
    jitter: float

    def policy(self) -> Backoff:
        """Return the pure backoff policy."""
        return Backoff(initial_s=self.initial, factor=self.factor, max_s=self.max, jitter=self.jitter)


@dataclass(frozen=True, repr=False, eq=False)
class LogLimitConfig(Record):
    """``log_limit``: at most ``lines`` output lines in ``per`` seconds."""

    lines: int
    per: float


@dataclass(frozen=True, repr=False, eq=False)
class SupervisorConfig(Record):
    """``[supervisor]``: the daemon itself."""

    socket: str
    group: str | None
    http: str
    shutdown_timeout: float
    on_fatal: str
    log_format: str
    log_level: str
    log_lines: int
    traffic: list[str] | None = None  # the units /readyz answers for; None: every unit
    drain: float = 0.0  # seconds between SIGTERM and the shutdown, not ready meanwhile
    header_timeout: float = 2.0  # the bound on a connection's wait for a whole request head


@dataclass(frozen=True, repr=False, eq=False)
class DependencyConfig(Record):
    """``[dependencies.NAME]``: something that must answer before units that name it start."""

    type: str
    url: str
    interval: float
    ready_interval: float | None
    timeout: float
    on_timeout: str
    probe_timeout: float
    primary: bool
    backoff: BackoffConfig | None


@dataclass(frozen=True, repr=False, eq=False)
class JobConfig(Record):
    """``[jobs.NAME]``: a one-shot command such as ``alembic upgrade head``."""

    command: list[str]
    depends_on: list[str]
    attempts: int
    backoff: BackoffConfig
    timeout: float
    on_failure: str
    lock: str | None
    lock_timeout: float
    alembic_config: str | None
    environment: dict[str, str]
    env_file: tuple[str, ...]
    cwd: str | None
    user: str | None
    from_alembic_cmd: bool = False  # the command came from ``$ALEMBIC_CMD``, not from the file


@dataclass(frozen=True, repr=False, eq=False)
class RestartConfig(Record):
    """``restart = { policy, order, backoff, reset_after, max_restarts, window, *_exit_codes }``."""

    policy: str
    order: str
    backoff: BackoffConfig
    reset_after: float
    max_restarts: int
    window: float
    success_exit_codes: list[int]
    no_restart_exit_codes: list[int]


# The kinds of health check, each a key of ``health``: models, the check's kind and the watch read this.
HEALTH_KINDS = ("http", "tcp", "exec", "file")


@dataclass(frozen=True, repr=False, eq=False)
class HealthConfig(Record):
    """``health = { http | tcp | exec | file, ... }``: exactly one kind of check."""

    http: str | None
    tcp: str | None
    exec: list[str] | None
    file: str | None
    max_age: float | None
    interval: float
    timeout: float
    failure_threshold: int
    start_period: float

    @property
    def kind(self) -> str:
        """Return which check this is."""
        return next(k for k in HEALTH_KINDS if getattr(self, k) is not None)


@dataclass(frozen=True, repr=False, eq=False)
class ProgramConfig(Record):
    """``[programs.NAME]``: a long-running child."""

    command: list[str]
    depends_on: list[str]
    environment: dict[str, str]
    env_file: tuple[str, ...]
    cwd: str | None
    user: str | None
    stop_signal: str  # the first rung's signal
    stop_timeout: float  # the whole ladder, up to SIGKILL
    stop_group: bool
    min_uptime: float
    start_timeout: float
    notify: bool
    restart: RestartConfig
    health: HealthConfig | None
    max_memory: int | None
    memory_interval: float
    listen: str | None
    autostart: bool
    ladder: tuple[tuple[str, float], ...] | None = None  # list forms of stop_signal/stop_timeout
    after: list[str] = field(default_factory=list)  # ordering only: programs whose start goes first
    max_age: float | None = None  # recycle after this long
    max_age_jitter: float = 0.1
    watch: list[str] = field(default_factory=list)  # globs whose changes restart it, in dev mode only
    watch_debounce: float = 0.3
    instances: int | None = None  # a template's count (`instances = N`); None: one program, no instances
    instance_of: str | None = None  # an instance's program (``web`` for ``web:1``), see config.instances
    instance: int | None = None  # an instance's index
    singleton: str | None = None  # a postgres dependency: one copy among the daemons sharing it
    singleton_key: str | None = None
    singleton_fence: float = 10.0
    ready_log: str | None = None  # a regex: running once a line of its output matches
    stack_dump: bool = True  # SIGABRT and a traceback before a SIGKILL
    oom_score_adj: int | None = None  # unset: the daemon's own plus 500
    log_limit: LogLimitConfig | None = None  # unset: no limit on its output lines

    def stop_ladder(self) -> tuple[tuple[str, float], ...]:
        """Return each rung as (signal name, seconds to wait after it); SIGKILL follows the last."""
        return self.ladder or ((self.stop_signal, self.stop_timeout),)

    @property
    def stop_total(self) -> float:
        """Return the whole ladder's length in seconds, before SIGKILL."""
        return self.stop_timeout


@dataclass(frozen=True, repr=False, eq=False)
class AlertConfig(Record):
    """``[alerts.NAME]``: events, and a command or a webhook that hears of them."""

    events: list[str]
    command: list[str] | None
    webhook: str | None
    lines: int
    min_interval: float


@dataclass(frozen=True, repr=False, eq=False)
class Config(Record):
    """The whole file."""

    supervisor: SupervisorConfig
    dependencies: dict[str, DependencyConfig]
    jobs: dict[str, JobConfig]
    programs: dict[str, ProgramConfig]  # instances expanded: ``web:0``, ``web:1`` in place of ``web``
    templates: dict[str, ProgramConfig] = field(default_factory=dict)  # programs with `instances`, unexpanded
    alerts: dict[str, AlertConfig] = field(default_factory=dict)

    def members(self, name: str) -> list[str]:
        """Return the programs ``name`` stands for: itself, or the instances of a program with ``instances``."""
        if name in self.templates:
            return [n for n, p in self.programs.items() if p.instance_of == name]
        return [name] if name in self.programs else []

    def job_database(self, name: str) -> tuple[DependencyConfig | None, DependencyConfig | None]:
        """Return job ``name``'s lock dependency and the postgres dependency whose database it reads.

        The lock's database when it takes a lock, else the first postgres dependency it names.
        """
        job = self.jobs[name]
        lock = self.dependencies.get(job.lock) if job.lock else None
        named = (self.dependencies[d] for d in job.depends_on if d in self.dependencies)
        return lock, lock or next((d for d in named if d.type == "postgres"), None)

    def stop_before(self) -> dict[str, set[str]]:
        """For each program, the programs that must be down before it stops: those that need it.

        A program needs another when it names it in ``depends_on``, directly or through jobs and
        dependencies that do. Programs on unrelated branches need nothing of each other, so they
        stop side by side.
        """
        needs: dict[str, set[str]] = {}
        for name in self.programs:
            found: set[str] = set()
            todo = list(self.programs[name].depends_on)
            seen: set[str] = set()
            while todo:
                unit = todo.pop()
                if unit in seen:
                    continue
                seen.add(unit)
                if unit in self.programs or unit in self.templates:
                    found.update(self.members(unit))
                elif unit in self.jobs:
                    todo.extend(self.jobs[unit].depends_on)
            needs[name] = found
        return {name: {other for other, wanted in needs.items() if name in wanted} for name in self.programs}

    def shutdown_span(self) -> float:
        """The longest time the stop ladders can take when independent branches stop side by side."""
        before = self.stop_before()
        spans: dict[str, float] = {}

        def span(name: str) -> float:
            if name not in spans:
                spans[name] = 0.0  # the graph has no cycle (checked); this only guards the recursion
                first = max((span(d) for d in before[name]), default=0.0)
                spans[name] = first + self.programs[name].stop_total
            return spans[name]

        return max((span(n) for n in self.programs), default=0.0)


@dataclass(frozen=True, repr=False, eq=False)
class Loaded(Record):
    """A valid configuration with its file, its start-up plan and its warnings."""

    path: Path
    config: Config
    plan: list[list[str]]  # start-up order: each level only needs earlier ones
    warnings: list[str] = field(default_factory=list)  # from the file and environment: see globs.all_warnings

    def kind_of(self, name: str) -> str:
        """Return ``dependency``, ``job`` or ``program`` for a unit name."""
        if name in self.config.dependencies:
            return "dependency"
        if name in self.config.jobs:
            return "job"
        return "program"


# What a validating child may send: a configuration, or the problems it found.
_ALLOWED: dict[tuple[str, str], type] = {
    (cls.__module__, cls.__qualname__): cls
    for cls in (
        BackoffConfig,
        LogLimitConfig,
        SupervisorConfig,
        AlertConfig,
        DependencyConfig,
        JobConfig,
        RestartConfig,
        HealthConfig,
        ProgramConfig,
        Config,
        Loaded,
        ConfigError,
        ConfigNotFound,
        PosixPath,
    )
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        cls = _ALLOWED.get((module, name))
        if cls is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a configuration")
        return cls


def dumps(value: Loaded | ConfigError) -> bytes:
    """Serialise a validated configuration (or the error that refused one) for ``loads``."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Loaded | ConfigError:
    """Read what ``dumps`` wrote; raise ``ValueError`` for anything else."""
    try:
        value = _Unpickler(io.BytesIO(data)).load()
    except Exception as exc:  # truncated, foreign or hostile bytes alike
        raise ValueError(f"not a configuration: {exc}") from None
    if not isinstance(value, Loaded | ConfigError):
        raise ValueError(f"not a configuration: {type(value).__name__}")
    return value


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where validated configurations and migration heads are cached: ``$SUPERVISOR_CACHE_DIR``, else XDG's."""
    if environ.get("SUPERVISOR_CACHE_DIR"):
        return Path(environ["SUPERVISOR_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or "/tmp", ".cache")
    return Path(base) / "supervisor"
