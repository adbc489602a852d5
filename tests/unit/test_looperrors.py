"""The loop's exception handler and the connection budgets under a low open-files limit."""

from __future__ import annotations

import asyncio
import resource

from supervisor.control.connections import TCP_BUDGET, UNIX_BUDGET, budgets
from supervisor.host.looperrors import OUT_OF_RESOURCE, QUIET_S, LoopErrors
from tests.unit.fakes import Log


def test_a_flood_of_accept_failures_is_one_line_that_names_the_limit() -> None:
    """500 EMFILE reports: one supervisor.out_of_files with the limit; after QUIET_S, one more with the count."""
    now = [0.0]
    log = Log()
    errors = LoopErrors(log, clock=lambda: now[0])
    loop = asyncio.new_event_loop()
    try:
        emfile = {"message": f"{OUT_OF_RESOURCE}\nsocket: <...>", "exception": OSError(24, "Too many open files")}
        for _ in range(500):
            errors.handle(loop, emfile)
        assert [x["event"] for x in log.lines] == ["supervisor.out_of_files"]
        first = log.lines[0]
        assert first["limit"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0] and first["times"] == 1
        assert "LimitNOFILE=" in first["hint"]
        now[0] = QUIET_S + 1
        errors.handle(loop, emfile)
        assert log.lines[-1]["times"] == 500
        # Another kind has a line of its own, with its exception for the traceback.
        boom = RuntimeError("boom")
        errors.handle(loop, {"message": "Task exception was never retrieved", "exception": boom})
        assert log.lines[-1]["event"] == "supervisor.loop_error" and log.lines[-1]["exc_info"] is boom
    finally:
        loop.close()


def test_budgets_fit_within_the_open_files_limit() -> None:
    """At the usual raised limit the budgets are whole; under a low one they shrink, never below 4."""
    assert budgets(8192, 30) == (UNIX_BUDGET, TCP_BUDGET)
    unix, tcp = budgets(1024, 30)
    assert unix + tcp + 30 + 64 + 32 <= 1024 and tcp > 500
    assert budgets(48, 20) == (4, 4)


def test_a_second_bug_within_the_quiet_period_has_its_own_line_and_each_line_names_its_task() -> None:
    """Two tasks failing differently: two lines; a task destroyed while pending: a line that says which.

    Keyed on the message alone, the second exception's traceback was never shown; and the task,
    future or callback asyncio's own handler printed was left out of every line.
    """
    log = Log()
    errors = LoopErrors(log, clock=lambda: 0.0)
    loop = asyncio.new_event_loop()
    try:
        for exc in (KeyError("a"), ValueError("b"), KeyError("c")):
            errors.handle(loop, {"message": "Task exception was never retrieved", "exception": exc, "future": "<T1>"})
        assert [x["error"] for x in log.lines] == ["KeyError('a')", "ValueError('b')"]
        assert log.lines[0]["future"] == "'<T1>'"
        errors.handle(loop, {"message": "Task was destroyed but it is pending!", "task": "<Task pending coro=<f()>>"})
        assert log.lines[-1]["task"] == "'<Task pending coro=<f()>>'", log.lines[-1]
    finally:
        loop.close()
