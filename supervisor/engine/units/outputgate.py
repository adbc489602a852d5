"""Where a program's lines go: its ring for ``logs`` and the daemon's log, through its ``log_limit``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.machine.loglimit import LogLimit

if TYPE_CHECKING:
    from supervisor.config.settings import LogLimitConfig
    from supervisor.engine.units.base import Context, LineBuffer
    from supervisor.machine.clock import Handle


class OutputGate:
    """Hands a program's lines on, dropping what is over its limit and saying so at the window's end.

    The ring and the log get the same lines: what the limit drops is in neither.
    """

    def __init__(self, name: str, limit: LogLimitConfig | None, buffer: LineBuffer, ctx: Context, log: Any) -> None:
        self.name = name
        self.buffer = buffer
        self.ctx = ctx
        self.log = log
        self.limit: LogLimit | None = None
        self.suppressed_total = 0
        self._timer: Handle | None = None
        self.configure(limit)

    def configure(self, limit: LogLimitConfig | None) -> None:
        """Take a new limit (a reload); what the open window dropped is reported first."""
        self._report(self.limit.roll(self.ctx.clock.now(), force=True) if self.limit else {})
        self.limit = None if limit is None else LogLimit(limit.lines, limit.per)

    def take(self, stream: str, lines: list[str]) -> None:
        """Keep and log ``lines`` of ``stream``, as many as the limit lets through."""
        if self.limit is not None:
            now = self.ctx.clock.now()
            allowed, ended = self.limit.admit(now, stream, len(lines))
            self._report(ended)
            if allowed < len(lines):
                lines = lines[:allowed]
                end = self.limit.ends_at
                if self._timer is None and end is not None:  # the window's end says what it dropped
                    self._timer = self.ctx.clock.call_later(max(0.0, end - now), self._window_ended)
            if not lines:
                return
        self.buffer.extend(stream, lines)
        self.ctx.output(self.name, stream, lines)

    def _window_ended(self) -> None:
        self._timer = None
        if self.limit is not None:
            self._report(self.limit.roll(self.ctx.clock.now(), force=True))

    def _report(self, dropped: dict[str, int]) -> None:
        for stream, count in dropped.items():
            self.suppressed_total += count
            self.log.warning("program.output_suppressed", program=self.name, stream=stream, suppressed=count)
