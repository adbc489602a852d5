"""A program's log rate limit, as journald's: at most ``lines`` in a window of ``per_s`` seconds.

Pure: the caller passes the time. A window begins with the first line after the previous one
ended; lines beyond the bound are dropped and counted per stream, and the counts are handed
back once, when the window ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LogLimit:
    """The window that is open, the lines it let through, and what it dropped per stream."""

    lines: int
    per_s: float
    start: float | None = None
    used: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def ends_at(self) -> float | None:
        """When the open window ends (None: none is open)."""
        return None if self.start is None else self.start + self.per_s

    def admit(self, now: float, stream: str, count: int) -> tuple[int, dict[str, int]]:
        """Return how many of ``count`` lines go through, and what an ended window dropped (to report)."""
        ended = self.roll(now)
        if self.start is None:
            self.start = now
        allowed = max(0, min(count, self.lines - self.used))
        self.used += allowed
        if allowed < count:
            self.dropped[stream] = self.dropped.get(stream, 0) + count - allowed
        return allowed, ended

    def roll(self, now: float, force: bool = False) -> dict[str, int]:
        """End the open window when its time is over (or ``force``); return what it dropped."""
        end = self.ends_at
        if end is None or (now < end and not force):
            return {}
        ended, self.dropped = self.dropped, {}
        self.start, self.used = None, 0
        return ended
