"""``ready_log``: an incarnation is ready once a line of its own output matches.

Only incarnations that are starting are watched, so a running program's lines pay one set
lookup and no regular expression: the output pump keeps its speed.
"""

from __future__ import annotations

import re


class ReadyLog:
    """The pids still waiting for their ready line, and the pattern they wait for."""

    def __init__(self, pattern: str | None) -> None:
        self.regex = re.compile(pattern) if pattern is not None else None
        self.waiting: set[int] = set()

    def spawned(self, pid: int) -> None:
        """A new incarnation starts: watch its lines."""
        if self.regex is not None:
            self.waiting.add(pid)

    def stop_watching(self, pid: int) -> None:
        """Ready, gone, or no longer starting: its lines are not read any more."""
        self.waiting.discard(pid)

    def matched(self, pid: int, line: str) -> bool:
        """Whether ``line`` is the ready line of waiting ``pid`` (which then stops being watched)."""
        if pid in self.waiting and self.regex is not None and self.regex.search(line):
            self.waiting.discard(pid)
            return True
        return False
