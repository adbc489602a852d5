"""The configuration's shape: pydantic models that reject, never coerce, what they do not know."""

from __future__ import annotations

import signal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from supervisor.backoff import Backoff
from supervisor.durations import parse_duration, parse_size
from supervisor.interpolation import default_socket

Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Command = Annotated[list[str], Field(min_length=1)]


def _durations(value: object) -> object:
    if isinstance(value, list):
        if not value:
            raise ValueError("name at least one duration")
        return [parse_duration(v) for v in value]
    return parse_duration(value)


Durations = Annotated[float | list[float], BeforeValidator(_durations)]


class Strict(BaseModel):
    """Base of every table: unknown keys are errors, values are never coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BackoffConfig(Strict):
    """``backoff = { initial, factor, max, jitter }``."""

    initial: Duration = 1.0
    factor: float = Field(2.0, ge=1.0)
    max: Duration = 60.0
    jitter: float = Field(0.1, ge=0.0, le=1.0)

    def policy(self) -> Backoff:
        """Return the pure backoff policy."""
        return Backoff(initial_s=self.initial, factor=self.factor, max_s=self.max, jitter=self.jitter)


class SupervisorConfig(Strict):
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


class DependencyConfig(Strict):
    """``[dependencies.NAME]``: something that must answer before units that name it start."""

    type: Literal["postgres", "redis", "tcp", "http"]
    url: str = ""
    interval: Duration = 1.0
    timeout: Duration = 60.0
    on_timeout: Literal["continue", "exit"] = "continue"
    probe_timeout: Duration = 3.0
    primary: bool = False

    @model_validator(mode="after")
    def _fits_type(self) -> DependencyConfig:
        if self.type in ("tcp", "http") and not self.url:
            raise ValueError(f"a {self.type} dependency needs a url")
        if self.type == "tcp":
            parse_address(self.url.removeprefix("tcp://"))
        if self.primary and self.type != "postgres":
            raise ValueError("primary applies to postgres dependencies only")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        return self


class JobConfig(Strict):
    """``[jobs.NAME]``: a one-shot command such as ``alembic upgrade head``."""

    command: Command
    depends_on: list[str] = []
    attempts: int = Field(1, ge=1, le=1000)
    backoff: BackoffConfig = BackoffConfig(initial=2.0, max=64.0)
    timeout: Duration = 3600.0
    on_failure: Literal["continue", "exit"] = "continue"
    lock: str | None = None
    lock_timeout: Duration = 600.0
    alembic_config: str | None = None
    environment: dict[str, str] = {}
    cwd: str | None = None
    user: str | None = None


class RestartConfig(Strict):
    """``restart = { policy, backoff, reset_after, max_restarts, window }``."""

    policy: Literal["always", "on-failure", "never"] = "always"
    backoff: BackoffConfig = BackoffConfig()
    reset_after: Duration = 60.0
    max_restarts: int = Field(10, ge=0)
    window: Duration = 300.0
    order: Literal["stop-first", "start-first"] = "stop-first"
    success_exit_codes: list[Annotated[int, Field(ge=0, le=255)]] = []
    no_restart_exit_codes: list[Annotated[int, Field(ge=0, le=255)]] = [78]


class HealthConfig(Strict):
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

    @model_validator(mode="after")
    def _one_kind(self) -> HealthConfig:
        kinds = [k for k in ("http", "tcp", "exec", "file") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"name exactly one of http, tcp, exec, file (got {', '.join(kinds) or 'none'})")
        if self.file is not None and self.max_age is None:
            raise ValueError("a file check needs max_age")
        if self.max_age is not None and self.file is None:
            raise ValueError("max_age applies to file checks only")
        if self.tcp is not None:
            parse_address(self.tcp)
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        return self

    @property
    def kind(self) -> str:
        """Return which check this is."""
        return next(k for k in ("http", "tcp", "exec", "file") if getattr(self, k) is not None)


class ProgramConfig(Strict):
    """``[programs.NAME]``: a long-running child."""

    command: Command
    depends_on: list[str] = []
    environment: dict[str, str] = {}
    cwd: str | None = None
    user: str | None = None
    stop_signal: str | list[str] = "SIGTERM"
    stop_timeout: Durations = 10.0
    stop_group: bool = False
    min_uptime: Duration = 1.0
    start_timeout: Duration = 60.0
    notify: bool = False
    restart: RestartConfig = RestartConfig()
    health: HealthConfig | None = None
    max_memory: Size | None = None
    memory_interval: Duration = 5.0
    listen: str | None = None
    autostart: bool = True

    @field_validator("stop_signal")
    @classmethod
    def _signal(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("name at least one signal")
            return [_signal_name(v) for v in value]
        return _signal_name(value)

    def stop_ladder(self) -> tuple[tuple[str, float], ...]:
        """Return (signal name, seconds to wait after it) per rung; SIGKILL follows the last."""
        names = self.stop_signal if isinstance(self.stop_signal, list) else [self.stop_signal]
        if isinstance(self.stop_timeout, list):
            waits = list(self.stop_timeout)
        else:
            waits = [self.stop_timeout / len(names)] * len(names)
        return tuple(zip(names, waits, strict=True))

    @property
    def stop_total(self) -> float:
        """Return the whole ladder's length in seconds, before SIGKILL."""
        return sum(wait for _, wait in self.stop_ladder())

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_address(value)
        return value


class Config(BaseSettings):
    """The whole file. Environment variables ``SUPERVISOR_<TABLE>__<KEY>`` override it."""

    model_config = SettingsConfigDict(
        env_prefix="SUPERVISOR_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        env_ignore_empty=False,
    )

    supervisor: SupervisorConfig = SupervisorConfig()
    dependencies: dict[str, DependencyConfig] = {}
    jobs: dict[str, JobConfig] = {}
    programs: dict[str, ProgramConfig] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The file arrives as init values; the environment overrides it."""
        return (env_settings, init_settings)


def _signal_name(value: str) -> str:
    name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
    if name not in signal.Signals.__members__ or name == "SIGKILL":
        raise ValueError(f"{value!r} is not a signal name for a stop ladder (SIGKILL always ends it)")
    return name


def parse_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:80`` for IPv6); raise ``ValueError`` when it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)
