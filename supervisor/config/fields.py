"""Value types of the configuration: durations, sizes, addresses, URLs, signal names.

Values keep their TOML types. The one exception is a string that came from the
environment (``${VAR}`` or a ``SUPERVISOR_*`` override): it is a string by nature,
so it may be parsed into the key's type (``max_restarts = "${MAX:-10}"``).
"""

from __future__ import annotations

import functools
import re
import signal
import typing
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError, WithJsonSchema

from supervisor.config.interpolation import FromEnv
from supervisor.config.settings import parse_address
from supervisor.machine.durations import parse_duration, parse_size

# What `supervisor schema` says each takes: the schema is for editors, so it shows the written forms.
DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
    ]
}
SIZE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]?|[bB])?\s*$"},
    ]
}
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]


def _positive(seconds: float) -> float:
    if not seconds > 0:
        raise ValueError("must be positive")
    return seconds


# For a period or a limit where 0 means nothing sensible: a loop that never waits, a probe that
# cannot answer in time.
PositiveDuration = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(_positive), WithJsonSchema(DURATION_SCHEMA)
]
Size = Annotated[int, BeforeValidator(parse_size), WithJsonSchema(SIZE_SCHEMA)]
Command = Annotated[list[str], Field(min_length=1)]


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]

_SCHEMES: dict[str, tuple[str, ...]] = {
    "postgres": ("postgresql", "postgres"),
    "redis": ("redis", "rediss", "unix"),
    "http": ("http", "https"),
}


def check_url(kind: str, url: str) -> None:
    """Raise ``ValueError`` unless ``url`` suits a ``kind`` (postgres, redis, http or tcp) target."""
    if kind == "tcp":
        address = url.removeprefix("tcp://")
        if "/" in address:
            raise ValueError(f"{url!r} is not a tcp address: use host:port or tcp://host:port")
        parse_address(address)
        return
    schemes = _SCHEMES[kind]
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in schemes or "://" not in url:
        wanted = ", ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{url!r} is not a {kind} URL: it must start with {wanted}")
    if kind == "http" and not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    if kind == "redis":
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError(f"{url!r} names no socket path")
        elif parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(f"{url!r}: the database (the path) must be a number, such as /0")
    if port == 0:
        raise ValueError(f"{url!r}: port 0 is not a port to connect to")


def signal_name(value: str) -> str:
    """Return ``SIGTERM`` for ``"SIGTERM"``, ``"term"`` or ``"TERM"``; raise ``ValueError`` otherwise."""
    name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
    if name not in signal.Signals.__members__:
        raise ValueError(f"{value!r} is not a signal name")
    return name


def env_files(value: object) -> object:
    """Accept one path or a list of paths for ``env_file``; store them as a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(value)
    return value


EnvFiles = Annotated[
    tuple[str, ...],
    BeforeValidator(env_files),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


@functools.lru_cache(maxsize=64)
def _lax(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def parse_from_env(annotation: Any, value: object) -> object:
    """Parse a string from the environment into ``annotation`` (leniently); leave anything else alone."""
    if isinstance(value, FromEnv):
        try:
            return _lax(annotation).validate_python(str(value), strict=False)
        except (ValidationError, TypeError):
            return value  # the strict validation that follows names the problem
    if isinstance(value, list) and any(isinstance(v, FromEnv) for v in value):
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is list and args:
            return [parse_from_env(args[0], v) for v in value]
    return value
