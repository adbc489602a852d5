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
from supervisor.config.fields import (
    Command,
    Duration,
    EnvFiles,
    PositiveDuration,
    Size,
    check_url,
    parse_from_env,
    signal_name,
)
from supervisor.config.interpolation import default_socket
from supervisor.config.ladder import Invalid, read_ladder
from supervisor.config.settings import parse_address

__all__ = [
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


class Strict(BaseModel):
    """Base of every table: unknown keys are errors, values are never coerced across types."""

    # A field's docstring (the string literal below it) is its description: the schema and the
    # configuration reference are generated from it.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _parse_env_strings(cls, data: Any) -> Any:
        """Strings from the environment may become the key's type; nothing else is converted."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: parse_from_env(fields[k].annotation, v) if k in fields else v for k, v in data.items()}


class BackoffTable(Strict):
    """``backoff = { initial, factor, max, jitter }``."""

    initial: Duration = 1.0
    factor: float = Field(2.0, ge=1.0)
    max: Duration = 60.0
    jitter: float = Field(0.1, ge=0.0, le=1.0)


class SupervisorTable(Strict):
    """``[supervisor]``: the daemon itself."""

    socket: str = Field(default_factory=default_socket)
    group: str | None = None
    http: str = "127.0.0.1:9001"
    shutdown_timeout: Duration = 30.0
    on_fatal: Literal["exit", "stay"] = "exit"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_lines: int = Field(1000, ge=10, le=100_000)

    @field_validator("http")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            parse_address(value)
        return value


class DependencyTable(Strict):
    """``[dependencies.NAME]``: something that must answer before units that name it start."""

    type: Literal["postgres", "redis", "tcp", "http"]
    url: str = ""
    interval: Duration = 1.0
    # Once ready, between probes; unset: `interval`. A kept connection is watched in between.
    ready_interval: PositiveDuration | None = None
    timeout: Duration = 60.0
    on_timeout: Literal["continue", "exit"] = "continue"
    probe_timeout: PositiveDuration = 3.0
    primary: bool = False
    # Between probes while start-up waits; unset: from `interval` up to max(interval, 5s), factor 1.5.
    backoff: BackoffTable | None = None

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
    depends_on: list[str] = []
    attempts: int = Field(1, ge=1, le=1000)
    backoff: BackoffTable = BackoffTable(initial=2.0, max=64.0)
    timeout: Duration = 3600.0
    on_failure: Literal["continue", "exit"] = "continue"
    lock: str | None = None
    lock_timeout: Duration = 600.0
    alembic_config: str | None = None
    environment: dict[str, str] = {}
    env_file: EnvFiles = ()
    cwd: str | None = None
    user: str | None = None


class RestartTable(Strict):
    """``restart = { policy, order, backoff, reset_after, max_restarts, window, *_exit_codes }``."""

    policy: Literal["always", "on-failure", "never"] = "always"
    order: Literal["stop-first", "start-first"] = "stop-first"
    backoff: BackoffTable = BackoffTable()
    reset_after: Duration = 60.0
    max_restarts: int = Field(10, ge=0)
    window: Duration = 300.0
    success_exit_codes: list[ExitCode] = []  # besides 0, which always counts as success
    no_restart_exit_codes: list[ExitCode] = [78]  # EX_CONFIG: a restart would fail the same way

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
    tcp: str | None = None
    exec: Command | None = None
    file: str | None = None
    max_age: Duration | None = None
    interval: Duration = 10.0
    timeout: Duration = 3.0
    failure_threshold: int = Field(3, ge=1)
    start_period: Duration = 0.0

    @field_validator("http", "tcp")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.field_name is not None:
            check_url(info.field_name, value)
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
    depends_on: list[str] = []
    environment: dict[str, str] = {}
    env_file: EnvFiles = ()
    cwd: str | None = None
    user: str | None = None
    # A list of stop signals (and of timeouts) is a ladder: _ladder has its rungs. Here
    # stop_signal is the first rung's signal and stop_timeout the whole ladder up to SIGKILL.
    stop_signal: str = "SIGTERM"
    stop_timeout: Duration = 10.0
    stop_group: bool = False
    min_uptime: Duration = 1.0
    start_timeout: PositiveDuration = 60.0
    notify: bool = False
    restart: RestartTable = RestartTable()
    health: HealthTable | None = None
    max_memory: Size | None = None
    memory_interval: PositiveDuration = 10.0  # a leak guard: supervisord's memmon looks every 60 s
    listen: str | None = None
    autostart: bool = True
    after: list[str] = []
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

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)

    supervisor: SupervisorTable = SupervisorTable()
    dependencies: dict[str, DependencyTable] = {}
    jobs: dict[str, JobTable] = {}
    programs: dict[str, ProgramTable] = {}


_PLAIN: dict[type[BaseModel], type] = {
    BackoffTable: settings.BackoffConfig,
    SupervisorTable: settings.SupervisorConfig,
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
