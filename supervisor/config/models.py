"""The configuration file's shape: pydantic models that reject, never coerce, what they do not know.

Validation ends in ``plain()``: the same values as the frozen dataclasses of
``supervisor.config.settings``, which is all the running daemon ever sees.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from supervisor.config import settings
from supervisor.config.alerts import AlertTable
from supervisor.config.fields import (
    Command,
    Duration,
    EnvFiles,
    PositiveDuration,
    Regex,
    Size,
    check_url,
    signal_name,
)
from supervisor.config.ladder import Invalid, read_ladder
from supervisor.config.outputlimit import LogLimitTable
from supervisor.config.settings import parse_address
from supervisor.config.strict import Strict
from supervisor.config.supervisor_table import SupervisorTable
from supervisor.machine.instances import MAX_INSTANCES

__all__ = [
    "AlertTable",
    "BackoffTable",
    "ConfigFile",
    "DependencyTable",
    "HealthTable",
    "JobTable",
    "ProgramTable",
    "RestartTable",
    "SupervisorTable",
    "plain",
    "plain_table",
]

ExitCode = Annotated[int, Field(ge=0, le=255)]


class BackoffTable(Strict):
    """``backoff = { initial, factor, max, jitter }``."""

    initial: Duration = 1.0
    """The first delay."""
    factor: float = Field(2.0, ge=1.0)
    """Each delay is the previous one times this (at least 1)."""
    max: Duration = 60.0
    """The longest delay."""
    jitter: float = Field(0.1, ge=0.0, le=1.0)
    """Each delay is spread by plus or minus this fraction of itself (0 to 1)."""


class DependencyTable(Strict):
    """``[dependencies.NAME]``: something that must answer before units that name it start."""

    type: Literal["postgres", "redis", "tcp", "http"]
    """What to probe: postgres (SELECT 1), redis (PING), tcp (connects) or http (any 2xx)."""
    url: str = ""
    """Where; for postgres an empty url means DB_HOST/DB_PORT, else libpq's PGHOST, PGPORT, PGUSER..."""
    interval: Duration = 1.0
    """Between probes (and the first delay while start-up waits); must be positive."""
    ready_interval: PositiveDuration | None = None
    """Once ready, between probes (unset: `interval`); postgres and redis watch the kept connection in between."""
    timeout: Duration = 60.0
    """How long start-up waits for it before `on_timeout` applies."""
    on_timeout: Literal["continue", "exit"] = "continue"
    """Not ready within `timeout`: continue (start the rest degraded) or exit (69)."""
    probe_timeout: PositiveDuration = 3.0
    """The bound on one probe."""
    primary: bool = False
    """postgres only: ready only while pg_is_in_recovery() is false (a primary, not a standby)."""
    backoff: BackoffTable | None = None
    """Between probes while start-up waits; unset: from `interval` up to max(interval, 5s), factor 1.5."""

    @field_validator("url")
    @classmethod
    def _url_fits_type(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        if value and kind is not None:
            check_url(kind, value)
        return value

    @field_validator("backoff")
    @classmethod
    def _backoff_waits(cls, value: BackoffTable | None) -> BackoffTable | None:
        # A program's backoff may be 0 (restart at once, bounded by max_restarts); between
        # probes it would probe a refusing server back to back, for as long as the timeout.
        if value is not None and (value.initial <= 0 or value.max <= 0):
            raise ValueError("initial and max must be positive: with 0 the probes would run back to back")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> DependencyTable:
        if self.type in ("tcp", "http") and not self.url:
            raise ValueError(f"a {self.type} dependency needs a url")
        if self.primary and self.type != "postgres":
            raise ValueError("primary applies to postgres dependencies only")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        return self


class JobTable(Strict):
    """``[jobs.NAME]``: a one-shot command such as ``alembic upgrade head``."""

    command: Command
    """The argv to run, as a list; its first word must resolve on the job's PATH."""
    depends_on: list[str] = []
    """Units it waits for: dependencies ready, jobs finished, programs running."""
    attempts: int = Field(1, ge=1, le=1000)
    """Runs before the job fails; an alembic job retries only transient database errors."""
    backoff: BackoffTable = BackoffTable(initial=2.0, max=64.0)
    """The wait between attempts."""
    timeout: Duration = 3600.0
    """The bound on each attempt; on timeout the job's whole process tree is killed."""
    on_failure: Literal["continue", "exit"] = "continue"
    """The last attempt failed: continue (its dependants start anyway) or exit (69)."""
    lock: str | None = None
    """A postgres dependency's name: hold pg_advisory_lock on its database while running."""
    lock_timeout: Duration = 600.0
    """The bound on the wait for the lock."""
    alembic_config: str | None = None
    """An alembic.ini: skip the job at head, refuse a database ahead of the scripts."""
    environment: dict[str, str] = {}
    """Variables for the command, on top of `env_file`'s."""
    env_file: EnvFiles = ()
    """Dotenv files read at each start, below `environment`: "path" or ["path", "-optional"]."""
    cwd: str | None = None
    """The working directory; relative to the configuration file's directory."""
    user: str | None = None
    """Run as this user (when the supervisor runs as root)."""


class RestartTable(Strict):
    """``restart = { policy, order, backoff, reset_after, max_restarts, window, *_exit_codes }``."""

    policy: Literal["always", "on-failure", "never"] = "always"
    """always, on-failure (an exit not in 0 and `success_exit_codes`, or a signal) or never."""
    order: Literal["stop-first", "start-first"] = "stop-first"
    """stop-first, or start-first: the new process starts beside the old, which stops once the new one is ready."""
    backoff: BackoffTable = BackoffTable()
    """The wait before each restart after the first, which comes at once after a stable run."""
    reset_after: Duration = 60.0
    """A program up this long is stable again: its next restart comes at once."""
    max_restarts: int = Field(10, ge=0)
    """More restarts than this within `window` make the program fatal."""
    window: Duration = 300.0
    """The period over which `max_restarts` counts."""
    success_exit_codes: list[ExitCode] = []  # besides 0, which always counts as success
    """Exit codes that count as success besides 0, which always does."""
    no_restart_exit_codes: list[ExitCode] = [78]  # EX_CONFIG: a restart would fail the same way
    """Exit codes (0..255, no success code) after which the program is fatal at once; 78 is EX_CONFIG."""

    @model_validator(mode="after")
    def _disjoint(self) -> RestartTable:
        both = sorted({0, *self.success_exit_codes} & set(self.no_restart_exit_codes))
        if both:
            codes = ", ".join(map(str, both))
            raise ValueError(f"exit code {codes} cannot be both a success and a no-restart code (0 is always success)")
        return self


class HealthTable(Strict):
    """``health = { http | tcp | exec | file, ... }``: exactly one kind of check."""

    http: str | None = None
    """A URL to GET: healthy on any 2xx."""
    tcp: str | None = None
    """host:port or tcp://host:port: healthy when it connects."""
    exec: Command | None = None
    """A command, spawned and reaped by the supervisor: healthy when it exits 0."""
    file: str | None = None
    """A heartbeat file: healthy while modified within `max_age`, after the current process was spawned."""
    max_age: Duration | None = None
    """For `file` checks only: how old the file may get."""
    interval: Duration = 10.0
    """Between checks once one has passed (until then at least every second)."""
    timeout: Duration = 3.0
    """The bound on one check."""
    failure_threshold: int = Field(3, ge=1)
    """Consecutive failures that restart the program with reason health."""
    start_period: Duration = 0.0
    """Failures within this time of a start do not count."""

    @field_validator("http", "tcp")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.field_name is not None:
            check_url(info.field_name, value.replace("${SUPERVISOR_INSTANCE}", "0"))  # as instance 0 has it
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> HealthTable:
        kinds = [k for k in settings.HEALTH_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            one_of = ", ".join(settings.HEALTH_KINDS)
            raise ValueError(f"name exactly one of {one_of} (got {', '.join(kinds) or 'none'})")
        if self.file is not None and self.max_age is None:
            raise ValueError("a file check needs max_age")
        if self.max_age is not None and self.file is None:
            raise ValueError("max_age applies to file checks only")
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        return self


class ProgramTable(Strict):
    """``[programs.NAME]``: a long-running child."""

    command: Command
    """The argv to run, as a list; its first word must resolve on the program's PATH."""
    depends_on: list[str] = []
    """Units it waits for: dependencies ready, jobs finished, programs running."""
    environment: dict[str, str] = {}
    """Variables for the program, on top of `env_file`'s."""
    env_file: EnvFiles = ()
    """Dotenv files read at each start, below `environment`: "path" or ["path", "-optional"]."""
    cwd: str | None = None
    """The working directory; relative to the configuration file's directory."""
    user: str | None = None
    """Drop privileges to this user (when the supervisor runs as root)."""
    # A list of stop signals (and of timeouts) is a ladder: _ladder has its rungs. Here
    # stop_signal is the first rung's signal and stop_timeout the whole ladder up to SIGKILL.
    stop_signal: str = "SIGTERM"
    """The stop signal, or a ladder of them such as ["SIGTERM", "SIGQUIT"]; SIGKILL always ends it, unlisted."""
    stop_timeout: Duration = 10.0
    """The wait before SIGKILL, split evenly between the rungs, or one per rung such as ["20s", "5s"]."""
    stop_group: bool = False
    """Send the stop signal to the whole process group, not only the main process."""
    min_uptime: Duration = 1.0
    """Without notify or a health check: running once up this long (0: at once)."""
    start_timeout: PositiveDuration = 60.0
    """Not ready within it (READY=1, first passing check, min_uptime): a failed start."""
    notify: bool = False
    """The program sends READY=1 (and STATUS=) to $NOTIFY_SOCKET, as under systemd."""
    restart: RestartTable = RestartTable()
    """When and how the program is restarted."""
    health: HealthTable | None = None
    """A health check: exactly one of http, tcp, exec or file."""
    max_memory: Size | None = None
    """Restart gracefully (reason memory) above this RSS of the program's whole process tree, e.g. "512MB"."""
    memory_interval: PositiveDuration = 10.0  # a leak guard: supervisord's memmon looks every 60 s
    """How often that RSS is sampled (only with `max_memory`)."""
    listen: str | None = None
    """An address such as "0.0.0.0:8000", bound once and handed to every incarnation as fd 3."""
    autostart: bool = True
    """Start with the daemon; false: stopped until `supervisor start NAME`."""
    after: list[str] = []
    """Programs whose starts delay this one's (ordering only, as systemd's After= without Requires=)."""
    singleton: str | None = None
    """A postgres dependency's name: among every daemon sharing its database, run in one at a time."""
    singleton_key: str | None = None
    """The name the singleton's advisory-lock key is derived from (unset: the program's name)."""
    singleton_fence: PositiveDuration = 10.0
    """Having lost its lock connection, the holder stops the program (SIGKILL at the end) within this."""
    max_age: PositiveDuration | None = None
    """Recycle: restart it (reason max_age, outside the restart budget) once it has run this long."""
    max_age_jitter: float = Field(0.1, ge=0, le=1)
    """A random fraction of `max_age` added per incarnation, so that replicas do not recycle together."""
    watch: list[Annotated[str, Field(min_length=1)]] = []
    """Development: globs (relative to `cwd`) whose changes restart it, only under `run --dev` or SUPERVISOR_DEV=1."""
    watch_debounce: PositiveDuration = 0.3
    """How long the watched files must stay quiet before the restart: a burst of changes is one restart."""
    instances: int | None = Field(None, ge=1, le=MAX_INSTANCES)
    """Run N copies (1 to 1000), X:0 ... X:N-1, with SUPERVISOR_INSTANCE=i, sharing `listen`; unset: one, named X."""
    ready_log: Regex | None = None
    """A regular expression: running once a line of this incarnation's output matches (valid for start-first)."""
    stack_dump: bool = True
    """Before a SIGKILL (failed health, start_timeout, exhausted ladder): SIGABRT, then log the traceback."""
    oom_score_adj: int | None = Field(None, ge=-1000, le=1000)
    """The children's OOM score adjustment, -1000..1000; unset: the daemon's own plus 500, at most 1000."""
    log_limit: LogLimitTable | None = None
    """At most `lines` output lines in `per` (`{ lines = 1000, per = "30s" }`); the rest dropped and counted."""
    _ladder: tuple[tuple[str, float], ...] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _ladder_lists(cls, data: Any, handler: ModelWrapValidatorHandler[ProgramTable]) -> ProgramTable:
        """Read list forms of stop_signal/stop_timeout into a ladder; the fields keep its summary."""
        lists = isinstance(data, dict) and any(isinstance(data.get(k), list) for k in ("stop_signal", "stop_timeout"))
        if not lists:
            return handler(data)
        data = dict(data)
        ladder, data["stop_signal"], data["stop_timeout"] = read_ladder(
            data.get("stop_signal", "SIGTERM"), data.get("stop_timeout", 10.0)
        )
        model = handler(data)
        model._ladder = ladder
        return model

    @field_validator("stop_signal", "stop_timeout", mode="before")
    @classmethod
    def _valid_ladder(cls, value: object) -> object:
        if isinstance(value, Invalid):
            raise ValueError(value.message)
        return value

    @field_validator("stop_signal")
    @classmethod
    def _signal(cls, value: str) -> str:
        return signal_name(value)

    @field_validator("max_age")
    @classmethod
    def _longer_than_min_uptime(cls, value: float | None, info: ValidationInfo) -> float | None:
        min_uptime = info.data.get("min_uptime")
        if value is not None and min_uptime is not None and value < min_uptime:
            raise ValueError(f"max_age ({value:g}s) is shorter than min_uptime ({min_uptime:g}s)")
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_address(value)
        return value


class ConfigFile(BaseModel):
    """The whole file. Environment variables ``SUPERVISOR_<TABLE>__<KEY>`` override it (see ``load()``).

    A plain model, not a pydantic-settings one: that library costs ~100 ms to import, so
    ``load()`` imports it only when such an override is actually set.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, validate_default=True, use_attribute_docstrings=True
    )

    supervisor: SupervisorTable = SupervisorTable()
    """The daemon itself."""
    dependencies: dict[str, DependencyTable] = {}
    """Services that must answer before the units that name them start."""
    jobs: dict[str, JobTable] = {}
    """One-shot commands, such as migrations."""
    programs: dict[str, ProgramTable] = {}
    """Long-running children."""
    alerts: dict[str, AlertTable] = {}
    """Commands and webhooks that hear of chosen events."""


_PLAIN: dict[type[BaseModel], type] = {
    LogLimitTable: settings.LogLimitConfig,
    BackoffTable: settings.BackoffConfig,
    SupervisorTable: settings.SupervisorConfig,
    AlertTable: settings.AlertConfig,
    DependencyTable: settings.DependencyConfig,
    JobTable: settings.JobConfig,
    RestartTable: settings.RestartConfig,
    HealthTable: settings.HealthConfig,
    ProgramTable: settings.ProgramConfig,
    ConfigFile: settings.Config,
}


def plain_table(value: Any) -> Any:
    """Return a table (or a dict or list of them) as ``supervisor.config.settings`` values."""
    if isinstance(value, BaseModel):
        fields = {name: plain_table(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, ProgramTable):
            fields["ladder"] = value._ladder
        return _PLAIN[type(value)](**fields)
    if isinstance(value, dict):
        return {k: plain_table(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_table(v) for v in value]
    return value


def plain(config: ConfigFile) -> settings.Config:
    """Return the validated file as the frozen dataclasses the daemon runs on."""
    out: settings.Config = plain_table(config)
    return out
