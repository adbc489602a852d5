"""Stray signals: one line per signal at most every QUIET_S, with how many came since the last."""

from __future__ import annotations

import signal

from supervisor.host.stray import QUIET_S, StraySignals
from tests.unit.fakes import Log


def test_a_storm_is_one_line_then_one_more_with_its_count_after_the_quiet_period() -> None:
    """100 USR1 at once: one line; the next after QUIET_S says 100; USR2 has lines of its own."""
    now = [0.0]
    log = Log()
    stray = StraySignals(log, clock=lambda: now[0])
    for _ in range(100):
        stray.receive(signal.SIGUSR1)
    stray.receive(signal.SIGUSR2)
    assert [(x["signal"], x["times"]) for x in log.lines] == [("SIGUSR1", 1), ("SIGUSR2", 1)]
    now[0] = QUIET_S - 0.1
    stray.receive(signal.SIGUSR1)
    assert len(log.lines) == 2
    now[0] = QUIET_S + 0.1
    stray.receive(signal.SIGUSR1)
    assert (log.lines[-1]["signal"], log.lines[-1]["times"]) == ("SIGUSR1", 101)
    assert stray.received == {signal.SIGUSR1: 102, signal.SIGUSR2: 1}
    assert all(x["event"] == "supervisor.signal_ignored" for x in log.lines)
