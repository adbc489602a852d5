"""A listener's budget: room is made by closing the oldest idle connection, never a busy one, and it is told."""

from __future__ import annotations

import asyncio
from typing import Any

from supervisor.control.connections import Budget


class Transport:
    """Records whether the connection was closed."""

    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        """Close at once."""
        self.aborted = True


class Writer:
    """A StreamWriter stand-in."""

    def __init__(self) -> None:
        self.transport = Transport()


class Log:
    """Keeps the events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        """Keep one."""
        self.events.append((event, fields))


def test_a_full_budget_closes_the_oldest_idle_connection_and_reports_once_per_window() -> None:
    """Full: the oldest idle one goes (a busy one stays); every busy: the newcomer is refused; one event a window."""
    loop = asyncio.new_event_loop()
    try:
        log = Log()
        budget = Budget("tcp", 3, log, loop)
        writers = [Writer() for _ in range(3)]
        slots = [budget.admit(w) for w in writers]  # type: ignore[arg-type]
        assert all(slots)
        slots[0].idle = False  # type: ignore[union-attr]  # the oldest is answering a request
        assert budget.admit(Writer()) is not None  # type: ignore[arg-type]
        assert [w.transport.aborted for w in writers] == [False, True, False]
        assert budget.admit(Writer()) is not None  # type: ignore[arg-type]
        assert writers[2].transport.aborted
        assert len(budget) == 3
        assert [e for e, _ in log.events] == ["control.connections_evicted"]  # the rest wait for the window's end
        for slot in list(budget._slots):
            slot.idle = False
        assert budget.admit(Writer()) is None  # type: ignore[arg-type]
        assert (budget.evicted_total, budget.refused_total) == (2, 1)
        budget._flush()  # the window ends
        assert log.events[-1][1]["evicted"] == 1 and log.events[-1][1]["total"] == 2
    finally:
        loop.close()
