"""The program runner driven by a fake clock and a fake spawner: no process, no real time."""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from supervisor.config.models import ProgramTable, plain_table
from supervisor.config.settings import HealthConfig
from supervisor.engine.units.base import Context
from supervisor.engine.units.program import ProgramRunner
from supervisor.host.process import Child, Reaper, SpawnSpec
from supervisor.machine.clock import FakeClock
from supervisor.machine.events import ExitStatus, Ready
from supervisor.machine.model import State


class FakeSpawner:
    """Hands out pids and records every signal, as the operating system would receive them."""

    def __init__(self) -> None:
        self.next_pid = 100
        self.spawned: list[int] = []
        self.signals: list[tuple[int, str, bool]] = []
        self.killed: list[int] = []

    def spawn(self, spec: SpawnSpec) -> Child:
        self.next_pid += 1
        self.spawned.append(self.next_pid)
        return Child(self.next_pid)

    def signal(self, pid: int, sig: int, group: bool = False) -> bool:
        if sig != signal.SIGCONT:
            self.signals.append((pid, signal.Signals(sig).name, group))
        return True

    def kill_tree(self, pid: int) -> None:
        self.killed.append(pid)

    def sweep(self, sid: int) -> None:
        pass


class Harness:
    """A runner with its fakes; ``exit(pid, ...)`` plays the reaper's part."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **program: Any) -> None:
        self.clock = FakeClock()
        self.spawner = FakeSpawner()
        self.reaper = Reaper()
        self.fatal: list[str] = []
        self.ctx = Context(
            loop=loop,
            clock=self.clock,
            reaper=self.reaper,
            log=structlog.get_logger("test"),
            base_env={},
            rng=random.Random(3),
            fatal=lambda name, why: self.fatal.append(why),
            spawner=self.spawner,
        )
        cfg = plain_table(ProgramTable.model_validate({"command": ["app"], **program}))
        self.runner = ProgramRunner("app", cfg, self.ctx)

    def start(self) -> None:
        from supervisor.machine.events import DepsChanged, Start

        self.runner.dispatch(Start())
        self.runner.dispatch(DepsChanged(True))

    def exit(self, pid: int, code: int | None = None, sig: int | None = None) -> None:
        self.reaper.owners.pop(pid)(ExitStatus(code=code, signal=sig))

    @property
    def state(self) -> State:
        return self.runner.model.state


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop that is never run: the runner only creates futures on it."""
    loop = asyncio.new_event_loop()
    yield loop
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks))  # let cancelled probes unwind
    loop.close()


def test_crash_restarts_at_once_then_after_the_backoff_then_goes_fatal(loop) -> None:
    """Crash -> respawn at once -> crash -> backoff timer -> respawn -> budget spent -> fatal."""
    h = Harness(loop, min_uptime=0, restart={"backoff": {"initial": "2s", "jitter": 0}, "max_restarts": 2})
    h.start()
    assert h.spawner.spawned == [101] and h.state is State.RUNNING
    h.exit(101, code=1)
    assert h.spawner.spawned == [101, 102]  # at once, no time passed
    h.exit(102, code=1)
    assert h.state is State.BACKOFF and h.spawner.spawned == [101, 102]
    h.clock.advance(1.9)
    assert h.spawner.spawned == [101, 102]
    h.clock.advance(0.1)
    assert h.spawner.spawned == [101, 102, 103] and h.state is State.RUNNING
    h.exit(103, code=1)
    assert h.state is State.FATAL and h.fatal and "more than 2 restarts" in h.fatal[0]


def test_min_uptime_decides_running(loop) -> None:
    """Without notify or a health check, the program is starting until min_uptime has passed."""
    h = Harness(loop, min_uptime="1s")
    h.start()
    assert h.state is State.STARTING
    h.clock.advance(0.99)
    assert h.state is State.STARTING
    h.clock.advance(0.01)
    assert h.state is State.RUNNING


def test_stop_ladder_term_then_quit_then_sigkill_to_the_group(loop) -> None:
    """A stop goes TERM to the main process, QUIT after its rung, SIGABRT for its stack, then SIGKILL to the tree."""
    h = Harness(loop, min_uptime=0, stop_signal=["SIGTERM", "SIGQUIT"], stop_timeout=["3s", "1s"])
    h.start()
    from supervisor.machine.events import Stop

    h.runner.dispatch(Stop())
    assert h.spawner.signals == [(101, "SIGTERM", False)]
    h.clock.advance(3)
    assert h.spawner.signals[-1] == (101, "SIGQUIT", False) and h.spawner.killed == []
    h.clock.advance(1)
    assert h.spawner.signals[-1] == (101, "SIGABRT", False) and h.spawner.killed == []
    h.clock.advance(2)
    assert h.spawner.killed == [101]
    h.exit(101, sig=signal.SIGKILL)
    assert h.state is State.STOPPED and h.runner.model.held


def test_health_failures_stop_through_the_ladder_and_restart(loop) -> None:
    """Three failed checks after start_period restart: TERM, then SIGKILL (no SIGABRT without stack_dump)."""
    from supervisor.machine.events import HealthResult

    health = {"file": "/nonexistent", "max_age": "10s", "failure_threshold": 3}
    h = Harness(loop, health=health, stop_timeout="5s", stack_dump=False)
    h.start()
    h.runner.dispatch(HealthResult(True))
    assert h.state is State.RUNNING
    for _ in range(3):
        h.runner.dispatch(HealthResult(False, "stale"))
    assert h.state is State.STOPPING and h.spawner.signals == [(101, "SIGTERM", False)]
    h.clock.advance(5)
    assert h.spawner.killed == [101]
    h.exit(101, sig=signal.SIGKILL)
    assert h.state is State.STARTING and h.spawner.spawned == [101, 102]  # the first restart is at once
    assert h.runner.status()["last_exit"] == {"signal": "SIGKILL", "reason": "health"}
    h.runner.close()


def test_start_first_stops_the_old_one_only_once_the_new_one_is_ready(loop) -> None:
    """A restart spawns a candidate; the old process gets TERM only after the candidate's READY=1."""
    from supervisor.machine.events import Restart

    h = Harness(loop, notify=True, listen="127.0.0.1:1", restart={"order": "start-first"})
    h.start()
    h.runner.dispatch(Ready(101))
    h.runner.dispatch(Restart())
    assert h.spawner.spawned == [101, 102] and h.spawner.signals == []
    assert h.runner.status()["handover"] == {"pid": 102, "reason": "operator"}
    h.runner.dispatch(Ready(102))
    assert h.spawner.signals == [(101, "SIGTERM", False)] and h.runner.model.pid == 102
    assert h.runner.pids() == [102, 101]
    h.exit(101, sig=signal.SIGTERM)
    assert h.runner.pids() == [102] and h.state is State.RUNNING


def test_every_health_kind_makes_a_probe() -> None:
    """Each kind that the configuration accepts has a probe: a kind added in one place fails here."""
    from supervisor.config.settings import HEALTH_KINDS
    from supervisor.engine.units.watch import Watch

    values = {"http": "http://127.0.0.1:1/", "tcp": "127.0.0.1:1", "exec": ["true"], "file": "/tmp/hb"}
    assert set(values) == set(HEALTH_KINDS)
    for kind in HEALTH_KINDS:
        health = HealthConfig(
            http=None,
            tcp=None,
            exec=None,
            file=None,
            max_age=None,
            interval=1.0,
            timeout=1.0,
            failure_threshold=1,
            start_period=0.0,
        )
        health = replace(health, **{kind: values[kind]}, max_age=5.0 if kind == "file" else None)
        runner = SimpleNamespace(cfg=SimpleNamespace(health=health), spawned_wall={})
        watch = Watch(runner, lambda argv, timeout_s: asyncio.sleep(0, None))  # type: ignore[arg-type]
        assert watch._make_probe(1) is not None, kind


def test_a_dump_collects_stderr_until_the_exit_and_names_an_empty_one(loop) -> None:
    """After SIGABRT, stderr lines until the exit become the program.stack_dump event; none: the event says so."""
    from supervisor.machine.events import Start, Stop

    h = Harness(loop, min_uptime=0, stop_timeout="1s")
    h.start()
    h.runner.dispatch(Stop())
    h.clock.advance(1)
    assert h.spawner.signals[-1] == (101, "SIGABRT", False)
    h.runner.last_words.lines(101, "stderr", ["Fatal Python error: Aborted", '  File "app.py", line 3 in spin'])
    h.runner.last_words.lines(101, "stdout", ["not part of it"])
    with structlog.testing.capture_logs() as logs:
        h.exit(101, sig=signal.SIGABRT)
        h.runner.last_words.lines(101, "stderr", ['  File "pool.py", line 9 in child'])  # a child's, just after
        h.clock.advance(0.3)
    dump = next(e for e in logs if e["event"] == "program.stack_dump")
    assert dump["traceback"] == [
        "Fatal Python error: Aborted",
        '  File "app.py", line 3 in spin',
        '  File "pool.py", line 9 in child',
    ]
    assert dump["reason"] == "operator" and "hint" not in dump
    assert h.spawner.killed == []  # it exited within the wait: nothing left to kill
    assert h.runner.buffer.tail(1)[0][1:] == (
        "event",
        "program.stack_dump pid=101 reason=operator: 3 lines of stderr after SIGABRT",
    )
    h.runner.dispatch(Start())
    h.runner.dispatch(Stop())
    h.clock.advance(1)
    with structlog.testing.capture_logs() as logs:
        h.clock.advance(2)
    dump = next(e for e in logs if e["event"] == "program.stack_dump")
    assert dump["traceback"] == [] and "closed its stderr" in dump["hint"] and "SIGKILL" in dump["next"]
    assert h.spawner.killed == [102]  # the kill goes on


def test_a_sigkill_we_did_not_send_with_the_oom_counter_up_is_an_oom_kill(loop) -> None:
    """A running program SIGKILLed while the kernel's oom_kill counter went up exits with reason oom."""
    h = Harness(loop, min_uptime=0)
    h.runner.last_words.oom_killed = lambda: True
    h.start()
    with structlog.testing.capture_logs() as logs:
        h.exit(101, sig=signal.SIGKILL)
    assert h.runner.status()["last_exit"] == {"signal": "SIGKILL", "reason": "oom"}
    assert next(e for e in logs if e["event"] == "program.oom_killed")["pid"] == 101
    assert h.runner.restarts_by_reason == {"oom": 1}
    h.runner.last_words.oom_killed = lambda: False
    with structlog.testing.capture_logs() as logs:
        h.exit(102, sig=signal.SIGKILL)
    assert h.runner.status()["last_exit"] == {"signal": "SIGKILL", "reason": "exit"}
    exited = next(e for e in logs if e.get("signal") == "SIGKILL")
    assert exited["hint"] == "killed by SIGKILL, not by the OOM killer (its counters did not move)"


def test_a_sigkill_with_no_oom_counter_to_read_may_have_been_out_of_memory(loop) -> None:
    """Without a counter (no cgroup file, no /proc/vmstat), a SIGKILL we did not send says perhaps out of memory."""
    h = Harness(loop, min_uptime=0)
    h.runner.last_words.oom_killed = lambda: None
    h.start()
    with structlog.testing.capture_logs() as logs:
        h.exit(101, sig=signal.SIGKILL)
    assert h.runner.status()["last_exit"] == {"signal": "SIGKILL", "reason": "exit"}
    assert next(e for e in logs if e.get("signal") == "SIGKILL")["hint"] == "killed by SIGKILL, perhaps out of memory"


def test_a_health_failure_sends_sigabrt_before_the_kill(loop) -> None:
    """Failed checks whose stop ladder runs out end in SIGABRT for the stack, then SIGKILL 2 s later."""
    from supervisor.machine.events import HealthResult

    h = Harness(loop, health={"file": "/nonexistent", "max_age": "10s", "failure_threshold": 1}, stop_timeout="5s")
    h.start()
    h.runner.dispatch(HealthResult(True))
    h.runner.dispatch(HealthResult(False, "stale"))
    h.clock.advance(5)
    assert h.spawner.signals[-1] == (101, "SIGABRT", False) and h.spawner.killed == []
    assert h.runner.last_words.dumping[101].reason == "health"
    h.clock.advance(2)
    assert h.spawner.killed == [101]


def test_programs_get_pythonfaulthandler_and_a_higher_oom_score_adj() -> None:
    """The spec of a program sets PYTHONFAULTHANDLER=1 (unless it sets its own, or stack_dump = false)
    and an oom_score_adj; its probes get neither adjustment."""
    from supervisor.host import oomscore
    from supervisor.host.prestart import program_spec

    def spec(**program: Any) -> SpawnSpec:
        return program_spec(plain_table(ProgramTable.model_validate({"command": ["app"], **program})), {})

    assert spec().env["PYTHONFAULTHANDLER"] == "1"
    assert spec().oom_score_adj == oomscore.child_default()
    assert spec(environment={"PYTHONFAULTHANDLER": "0"}).env["PYTHONFAULTHANDLER"] == "0"
    assert "PYTHONFAULTHANDLER" not in spec(stack_dump=False).env
    assert spec(oom_score_adj=-200).oom_score_adj == -200
    probe = program_spec(plain_table(ProgramTable.model_validate({"command": ["app"]})), {}, argv=["check"])
    assert probe.oom_score_adj is None


def test_sigabrt_goes_to_the_children_one_at_a_time_then_to_the_main_process() -> None:
    """Stacks written at once to one pipe interleave: children get SIGABRT 0.1 s apart, the main process last."""
    from supervisor.engine.units.lastwords import LastWords

    clock = FakeClock()
    sent: list[tuple[float, int, int, bool]] = []

    def signal_pid(pid: int, sig: int, group: bool) -> bool:
        sent.append((round(clock.now() - start, 3), pid, sig, group))
        return True

    start = clock.now()
    words = LastWords(clock, signal_pid, lambda pid: None, structlog.get_logger(), lambda lines: None, lambda: False)
    words.descendants = lambda pid: [201, 202]
    words.kill(101, "health", stack_dump=True)
    clock.advance(0.5)
    aborts = [(t, pid) for t, pid, sig, _ in sent if sig == signal.SIGABRT]
    assert aborts == [(0.0, 201), (0.1, 202), (0.2, 101)]
    assert sent[0] == (0.0, 101, signal.SIGCONT, True)  # a stopped tree is continued first


def test_status_counts_failed_checks_before_the_threshold_and_shows_them(loop) -> None:
    """One failed check of two: health stays healthy, health_failures says 1 of 2, HEALTH reads failing 1/2."""
    from supervisor.machine.events import HealthResult, Stop
    from supervisor.machine.status import table_rows

    health = {"file": "/nonexistent", "max_age": "10s", "failure_threshold": 2}
    h = Harness(loop, health=health, stop_timeout="5s", stack_dump=False)
    h.start()
    h.runner.dispatch(HealthResult(True))
    entry = h.runner.status()
    assert (entry["health"], entry.get("health_failures"), entry.get("health_failure_threshold")) == ("healthy", 0, 2)
    h.runner.dispatch(HealthResult(False, "stale"))
    entry = h.runner.status()
    assert (entry["health"], entry.get("health_failures")) == ("healthy", 1)
    doc: Any = {"supervisor": {}, "units": [entry]}
    assert table_rows(doc)[1][6] == "failing 1/2"
    h.runner.dispatch(HealthResult(True))
    entry = h.runner.status()
    assert entry.get("health_failures") == 0 and table_rows({**doc, "units": [entry]})[1][6] == "healthy"
    h.runner.dispatch(Stop())
    h.exit(101, code=0)
    stopped = h.runner.status()
    assert stopped["state"] == "stopped" and stopped["health"] == "unknown"  # the JSON as before
    assert table_rows({**doc, "units": [stopped]})[1][6] == "-"  # a program that does not run has no health
    h.runner.close()
