"""log_limit: lines beyond N in a window are dropped from the ring and the log alike, and said once at its end."""

from __future__ import annotations

from typing import Any

from supervisor.config.settings import LogLimitConfig
from supervisor.engine.units.base import Context, LineBuffer
from supervisor.engine.units.outputgate import OutputGate
from supervisor.machine.clock import FakeClock
from supervisor.machine.loglimit import LogLimit


def test_a_window_lets_n_lines_through_and_hands_back_what_it_dropped_when_it_ends() -> None:
    """Within 30 s, 5 lines pass; the rest are counted per stream; the next window starts with the next line."""
    limit = LogLimit(lines=5, per_s=30.0)
    assert limit.admit(0.0, "stdout", 3) == (3, {})
    assert limit.admit(10.0, "stdout", 4) == (2, {})
    assert limit.admit(20.0, "stderr", 2) == (0, {})
    assert limit.roll(29.9) == {}
    assert limit.admit(31.0, "stdout", 1) == (1, {"stdout": 2, "stderr": 2})
    assert limit.ends_at == 61.0


class Log:
    """Keeps warnings."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        """Keep one."""
        self.events.append((event, fields))


def test_the_ring_and_the_log_get_the_same_lines_and_one_event_per_window_says_what_was_dropped() -> None:
    """Flood of 100 lines with lines = 10: both keep the first 10; at the window's end one event says 90 (or 95)."""
    clock = FakeClock()
    logged: list[str] = []
    ctx = Context(loop=None, clock=clock, reaper=None, log=None, base_env={})  # type: ignore[arg-type]
    ctx.output = lambda unit, stream, lines: logged.extend(lines)
    log = Log()
    buffer = LineBuffer(1000)
    gate = OutputGate("web", LogLimitConfig(lines=10, per=1.0), buffer, ctx, log)
    gate.take("stdout", [f"o{i}" for i in range(95)])
    gate.take("stderr", [f"e{i}" for i in range(5)])
    assert logged == [f"o{i}" for i in range(10)]
    assert [line for _, _, line in buffer.tail(1000)] == logged
    assert log.events == []
    clock.advance(1.0)
    assert log.events == [
        ("program.output_suppressed", {"program": "web", "stream": "stdout", "suppressed": 85}),
        ("program.output_suppressed", {"program": "web", "stream": "stderr", "suppressed": 5}),
    ]
    assert gate.suppressed_total == 90
    gate.take("stdout", ["next"])  # a new window
    assert logged[-1] == "next"
    clock.advance(5.0)
    assert len(log.events) == 2  # a window that dropped nothing says nothing


def test_without_a_limit_every_line_goes_through() -> None:
    """The default: no limit."""
    clock = FakeClock()
    logged: list[str] = []
    ctx = Context(loop=None, clock=clock, reaper=None, log=None, base_env={})  # type: ignore[arg-type]
    ctx.output = lambda unit, stream, lines: logged.extend(lines)
    OutputGate("web", None, LineBuffer(10), ctx, Log()).take("stdout", ["a"] * 10_000)
    assert len(logged) == 10_000
