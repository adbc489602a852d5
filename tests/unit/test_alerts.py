"""``[alerts.NAME]``: what the file may say, and which events reach which alert, how often."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from supervisor.cli import main
from supervisor.config import load
from supervisor.config.settings import AlertConfig
from supervisor.engine.alerts import Alerts, Watched
from supervisor.engine.units.base import Context, LineBuffer
from supervisor.host.process import Reaper
from supervisor.machine.clock import FakeClock
from supervisor.machine.events import ALERT_EVENTS, EVENT_LEVELS

PROGRAM = '[programs.web]\ncommand = ["true"]\n'


def check(tmp_path: Path, alert: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `check` on a file with this alert table; assert exit 78 and return what it printed."""
    path = tmp_path / "s.toml"
    path.write_text(PROGRAM + "[alerts.page]\n" + alert)
    assert main(["check", "--config", str(path)]) == 78
    return capsys.readouterr().err


def test_both_command_and_webhook_or_neither_exit_78_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An alert names exactly one of command and webhook; otherwise exit 78 names alerts.NAME."""
    both = check(tmp_path, 'events = ["program.fatal"]\ncommand = ["mail"]\nwebhook = "https://x/"\n', capsys)
    assert "alerts.page: give exactly one of command and webhook (both are set)" in both
    neither = check(tmp_path, 'events = ["program.fatal"]\n', capsys)
    assert "alerts.page: give exactly one of command and webhook (neither is set)" in neither


def test_an_unknown_event_exits_78_naming_its_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Event names are checked against the events' vocabulary; a typo is named with its place in the list."""
    err = check(tmp_path, 'events = ["program.fatal", "program.fatl"]\nwebhook = "https://x/"\n', capsys)
    assert "alerts.page.events[1]: unknown event 'program.fatl'" in err
    err = check(tmp_path, 'events = []\nwebhook = "https://x/"\n', capsys)
    assert "alerts.page.events:" in err
    err = check(tmp_path, 'events = ["program.fatal"]\nwebhook = "ftp://x/"\n', capsys)
    assert "alerts.page.webhook:" in err


def test_a_good_alert_loads_with_its_defaults(tmp_path: Path) -> None:
    """lines defaults to 20 and min_interval to a minute; every warning event can be named."""
    path = tmp_path / "s.toml"
    path.write_text(PROGRAM + '[alerts.page]\nevents = ["program.fatal", "program.oom_killed"]\ncommand = ["mail"]\n')
    alert = load(path, environ={}).config.alerts["page"]
    assert (alert.events, alert.command, alert.webhook, alert.lines, alert.min_interval) == (
        ["program.fatal", "program.oom_killed"],
        ["mail"],
        None,
        20,
        60.0,
    )
    assert set(EVENT_LEVELS) <= set(ALERT_EVENTS)


class Log:
    """A logger that records (level, event, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def bind(self, **fields: Any) -> Any:
        return self

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.events.append((level, event, fields))


def test_events_reach_the_alerts_that_name_them_once_per_interval() -> None:
    """A named event is delivered with the unit's last lines; the same event and unit within min_interval is not."""

    async def scenario() -> None:
        clock, log = FakeClock(), Log()
        ctx = Context(loop=asyncio.get_running_loop(), clock=clock, reaper=Reaper(), log=log, base_env={})
        cfg = AlertConfig(
            events=["program.fatal"], command=None, webhook="http://127.0.0.1:9/", lines=2, min_interval=60
        )
        buffer = LineBuffer(10)
        for line in ("one", "two", "three"):
            buffer.add("stderr", line)
        alerts = Alerts(ctx, lambda: {"page": cfg}, lambda name: buffer if name == "web" else None)
        sent: list[dict[str, Any]] = []

        async def deliver(name: str, cfg: AlertConfig, event: str, doc: dict[str, Any]) -> None:
            sent.append(doc)

        alerts._deliver = deliver  # type: ignore[method-assign]
        watched = alerts.watch(log).bind(program="web")
        watched.warning("program.exited", code=1)  # not named by the alert
        watched.warning("program.fatal", why="11 restarts in 5m")
        watched.warning("program.fatal", why="again")  # within min_interval: dropped
        clock.advance(61)
        alerts.watch(log).bind(program="worker").warning("program.fatal", why="other unit")
        watched.warning("program.fatal", why="a minute later")
        await alerts.settle()
        assert [(d["unit"], d["fields"]["why"], d["suppressed"]) for d in sent] == [
            ("web", "11 restarts in 5m", 0),
            ("worker", "other unit", 0),
            ("web", "a minute later", 1),
        ]
        assert sent[0]["lines"] == ["two", "three"] and sent[1]["lines"] == []
        assert sent[0]["text"].endswith("program.fatal web: 11 restarts in 5m")
        assert [e for _, e, _ in log.events].count("program.fatal") == 4  # the log itself misses nothing

    asyncio.run(scenario())


def test_check_finds_an_alert_command_that_does_not_resolve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An alert's command must resolve on the PATH, as a program's: `check` exits 78 naming it."""
    err = check(tmp_path, 'events = ["program.fatal"]\ncommand = ["no-such-mailer-here", "-s", "x"]\n', capsys)
    assert "alerts.page.command[0]: 'no-such-mailer-here' is not found on the PATH" in err


def test_an_alert_that_breaks_never_keeps_the_event_from_the_log() -> None:
    """Whatever goes wrong while an event is handed to the alerts, the event is logged and alert.failed says why."""
    log = Log()

    def broken(level: str, event: str, fields: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    Watched(log, {}, broken).bind(program="web").warning("program.fatal", why="x")
    assert [(e, f.get("error")) for _, e, f in log.events] == [
        ("alert.failed", "RuntimeError: boom"),
        ("program.fatal", None),
    ]
