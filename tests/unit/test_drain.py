"""``[supervisor] drain``: its bounds in the file, and the wait itself on a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from supervisor.cli import main
from supervisor.config import load
from supervisor.engine.drain import Drain
from supervisor.host.systemd import Notifier
from supervisor.machine.clock import FakeClock


class Log:
    """Records events as (name, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


def test_drain_defaults_to_zero_and_takes_durations(tmp_path: Path) -> None:
    """No drain unless asked; "5s" reads as 5 seconds."""
    path = tmp_path / "s.toml"
    path.write_text('[programs.web]\ncommand = ["true"]\n')
    assert load(path, environ={}).config.supervisor.drain == 0.0
    path.write_text('[supervisor]\ndrain = "5s"\n[programs.web]\ncommand = ["true"]\n')
    assert load(path, environ={}).config.supervisor.drain == 5.0


def test_a_negative_drain_exits_78_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """drain below 0 is refused by `check` with exit 78, naming the file and supervisor.drain."""
    path = tmp_path / "s.toml"
    path.write_text('[supervisor]\ndrain = -1\n[programs.web]\ncommand = ["true"]\n')
    assert main(["check", "--config", str(path)]) == 78
    assert f"{path}: supervisor.drain: " in capsys.readouterr().err


def test_the_drain_lasts_its_time_unless_skipped() -> None:
    """wait() returns once the drain's time has passed on the clock, or at once after skip()."""

    async def scenario() -> None:
        clock, log = FakeClock(), Log()
        drain = Drain(clock, log, Notifier(None))
        await asyncio.wait_for(drain.wait(), 1)  # none began: nothing to wait for
        drain.begin(5.0)
        waiting = asyncio.ensure_future(drain.wait())
        clock.advance(4.9)
        await asyncio.sleep(0)
        assert not waiting.done() and drain.active
        clock.advance(0.1)
        await asyncio.wait_for(waiting, 1)
        assert not drain.active and [e for e, _ in log.events] == ["supervisor.draining", "supervisor.drained"]

        skipped = Drain(clock, log, Notifier(None))
        skipped.begin(60.0)
        waiting = asyncio.ensure_future(skipped.wait())
        skipped.skip("second SIGTERM")
        await asyncio.wait_for(waiting, 1)
        assert log.events[-1] == (
            "supervisor.drain_skipped",
            {"after_s": 0.0, "why": "second SIGTERM", "next": "stopping"},
        )

    asyncio.run(scenario())
