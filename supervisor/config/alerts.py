"""``[alerts.NAME]``: who hears of an event, by a command or a webhook, and how often."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from supervisor.config.fields import Command, Duration, check_url
from supervisor.config.strict import Strict
from supervisor.machine.events import ALERT_EVENTS


def _known_event(name: str) -> str:
    if name not in ALERT_EVENTS:
        raise ValueError(f"unknown event {name!r} (one of: {', '.join(ALERT_EVENTS)})")
    return name


class AlertTable(Strict):
    """``[alerts.NAME]``: events, and either a command or a webhook that hears of them."""

    events: list[Annotated[str, AfterValidator(_known_event)]] = Field(min_length=1)
    """The events that fire it, such as ["program.fatal", "program.oom_killed"]."""
    command: Command | None = None
    """A command that gets the event as one JSON document on stdin (or `webhook`, not both)."""
    webhook: str | None = None
    """An http(s) URL that gets the same document as a POST (or `command`, not both)."""
    lines: int = Field(20, ge=0, le=1000)
    """The program's last log lines put in the document."""
    min_interval: Duration = Field(60.0, ge=0)
    """At most one alert per event and program within this time; the others are dropped."""

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_url("http", value)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> AlertTable:
        if (self.command is None) == (self.webhook is None):
            got = "both are set" if self.command is not None else "neither is set"
            raise ValueError(f"give exactly one of command and webhook ({got})")
        return self
