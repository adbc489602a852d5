"""``[programs.X] log_limit``: a rate limit on a program's output lines, as journald's."""

from __future__ import annotations

from pydantic import Field

from supervisor.config.fields import PositiveDuration
from supervisor.config.strict import Strict


class LogLimitTable(Strict):
    """``log_limit = { lines = N, per = "30s" }``: lines beyond N in a window are dropped, and counted."""

    lines: int = Field(ge=1)
    """The most lines (stdout and stderr together) let through in one window."""
    per: PositiveDuration = 30.0
    """The window's length."""
