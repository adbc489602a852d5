"""``[supervisor]``: the daemon's own table, apart from the tables of units."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from supervisor.config.fields import Duration, PositiveDuration
from supervisor.config.interpolation import default_socket
from supervisor.config.settings import parse_address
from supervisor.config.strict import Strict


class SupervisorTable(Strict):
    """``[supervisor]``: the daemon itself."""

    socket: str = Field(default_factory=default_socket)
    """The control socket; unset: $SUPERVISOR_SOCKET, else a default per user that any client finds."""
    group: str | None = None
    """Opens the control socket (mode 0660 instead of 0600) to this group's members."""
    http: str = "127.0.0.1:9001"
    """The read-only TCP address of /healthz, /readyz and /metrics; "" turns it off."""
    shutdown_timeout: Duration = 30.0
    """The bound on the whole shutdown; `check` warns when the stop ladders cannot fit in it."""
    on_fatal: Literal["exit", "stay"] = "exit"
    """When a program exhausts its restart budget: exit (stop everything, exit 1) or stay (keep the others)."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """The daemon's log: auto (JSON lines, console lines on a terminal), json or console."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """The lowest level of the daemon's own events that is written."""
    log_lines: int = Field(1000, ge=10, le=100_000)
    """Lines kept per program and job for `supervisor logs`."""
    header_timeout: PositiveDuration = 2.0
    """A control or TCP connection that has not sent a whole request head by then is closed."""
    traffic: list[str] | None = None
    """The units whose readiness decides /readyz, e.g. ["web"]; unset: every unit, as `status` exit 0."""
    drain: Duration = Field(0.0, ge=0)
    """After SIGTERM: not ready at once (/readyz 503) while programs keep serving this long, then the shutdown."""

    @field_validator("http")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            parse_address(value)
        return value
