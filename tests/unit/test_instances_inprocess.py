"""A rolling restart and a scale of a program's instances, in-process with a fake clock and fake processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from supervisor.engine.target import Conflict
from tests.unit.test_daemon_inprocess import Stack, run

WEB = """
[programs.web]
command = ["web-${SUPERVISOR_INSTANCE}"]
instances = 3
min_uptime = "1s"
restart = { backoff = { initial = "10s" } }
"""


def test_restart_replaces_each_instance_only_once_the_one_before_is_running(tmp_path: Path) -> None:
    """web:1 gets its stop signal only after web:0's successor has stayed up min_uptime, and so on."""

    async def scenario() -> None:
        s = Stack(tmp_path, WEB)
        s.daemon.begin()
        await s.settle()
        await s.advance(1.1)
        assert [s.state(f"web:{i}") for i in range(3)] == ["running"] * 3
        s.procs.spawned.clear()
        rolling = asyncio.ensure_future(s.daemon.act("web", "restart"))
        await s.settle()
        assert s.procs.terms == ["web-0"] and s.procs.spawned == ["web-0"]
        await s.advance(0.9)
        assert s.procs.terms == ["web-0"], "web:1 was stopped before web:0 was running again"
        await s.advance(0.2)
        assert s.procs.terms == ["web-0", "web-1"] and s.procs.spawned == ["web-0", "web-1"]
        await s.advance(1.1)
        await s.advance(1.1)
        entries = await asyncio.wait_for(rolling, 5)  # on the fake clock: never the real-time bound
        assert s.procs.spawned == ["web-0", "web-1", "web-2"]
        assert [(e["name"], e["state"], e["restarts"]) for e in entries] == [
            (f"web:{i}", "running", 1) for i in range(3)
        ]

    run(scenario)


def test_a_rolling_restart_stops_at_an_instance_that_does_not_come_back(tmp_path: Path) -> None:
    """web:0's successor keeps crashing: the roll ends with a Conflict naming it; web:1 and web:2 are untouched."""

    async def scenario() -> None:
        s = Stack(tmp_path, WEB)
        s.daemon.begin()
        await s.settle()
        await s.advance(1.1)
        first = {i: s.procs.pid_of(f"web-{i}") for i in range(3)}
        rolling = asyncio.ensure_future(s.daemon.act("web", "restart"))
        await s.settle()
        for _ in range(2):  # the successor crashes, and again: now it backs off (10 s)
            s.procs.exit(s.procs.pid_of("web-0"), 1)
            await s.settle()
        with pytest.raises(Conflict, match=r"rolling restart of web stopped: web:0 is backoff.*web:1, web:2 left"):
            await rolling
        assert {i: s.procs.pid_of(f"web-{i}") for i in (1, 2)} == {i: first[i] for i in (1, 2)}

    run(scenario)


def test_scale_starts_the_new_indexes_and_stops_the_highest(tmp_path: Path) -> None:
    """scale 3 -> 5 spawns web-3 and web-4 only; 5 -> 2 stops web:2..4 only; the survivors keep their pids."""

    async def scenario() -> None:
        s = Stack(tmp_path, WEB)
        s.daemon.begin()
        await s.settle()
        await s.advance(1.1)
        kept = {i: s.procs.pid_of(f"web-{i}") for i in range(3)}
        s.procs.spawned.clear()
        up = asyncio.ensure_future(s.daemon.scale("web", 5))
        await s.settle()
        await s.advance(1.1)
        done = await asyncio.wait_for(up, 5)
        assert (done["was"], done["added"], s.procs.spawned) == (3, ["web:3", "web:4"], ["web-3", "web-4"])
        down = await s.daemon.scale("web", 2)
        assert down["removed"] == ["web:2", "web:3", "web:4"]
        assert sorted(s.procs.terms) == ["web-2", "web-3", "web-4"]
        assert {i: s.procs.pid_of(f"web-{i}") for i in range(2)} == {i: kept[i] for i in range(2)}
        assert [n for n in s.daemon.units if n.startswith("web")] == ["web:0", "web:1"]

    run(scenario)
