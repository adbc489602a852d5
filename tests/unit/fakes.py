"""A logger that keeps what it was given, for units that take a structlog-like ``log``."""

from __future__ import annotations

from typing import Any


class Log:
    """Keeps each line as a dict: its event, its level and its fields."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def _keep(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self.lines.append({"event": event, "level": level, **fields})

    def info(self, event: str, **fields: Any) -> None:
        """Keep one info line."""
        self._keep("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Keep one warning line."""
        self._keep("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Keep one error line."""
        self._keep("error", event, fields)
