"""Before the SIGKILL of a hung Python program, SIGABRT makes it write its stack, which becomes one event."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import PY, Daemon, program

HUNG = """
[programs.hung]
command = {command}
notify = true              # never sends READY=1: start_timeout runs out
start_timeout = "1s"
stop_timeout = "500ms"     # SIGTERM is ignored: the ladder runs out too
restart = {{ backoff = {{ initial = "60s", max = "60s" }} }}
"""


@pytest.mark.parametrize(
    ("mode", "function"), [("spin", "spin_forever"), ("sleep", "sleep_forever"), ("gil", "hold_the_gil")]
)
def test_the_dump_names_where_it_hung(run_daemon: Callable[..., Daemon], mode: str, function: str) -> None:
    """A busy loop, a sleep and a C call holding the GIL each leave a traceback naming the function."""
    d = run_daemon(HUNG.format(command=program("hangs", mode)))
    dump = d.wait_event("program.stack_dump", 20, program="hung")
    assert dump["reason"] == "start_timeout", dump
    assert any(f"in {function}" in line for line in dump["traceback"]), dump["traceback"]
    assert any("Fatal Python error: Aborted" in line for line in dump["traceback"]), dump["traceback"]
    assert d.unit("hung")["last_exit"] == {"signal": "SIGABRT", "reason": "start_timeout"}, d.tail()
    logs = subprocess.run(
        [PY, "-m", "supervisor", "logs", "hung", "--socket", d.socket], capture_output=True, text=True, timeout=30
    ).stdout
    assert f"in {function}" in logs and "program.stack_dump" in logs, logs


def test_a_program_without_stderr_gives_an_empty_dump_and_is_still_killed(run_daemon: Callable[..., Daemon]) -> None:
    """A program that closed its stderr writes nothing: the event says so, and the kill goes on."""
    d = run_daemon(HUNG.format(command=program("hangs", "closed")))
    dump = d.wait_event("program.stack_dump", 20, program="hung")
    assert dump["traceback"] == [] and "closed its stderr" in dump["hint"], dump
    d.wait_unit("hung", state="backoff")
    assert d.unit("hung")["last_exit"]["reason"] == "start_timeout"


def test_stack_dump_false_kills_without_sigabrt(run_daemon: Callable[..., Daemon]) -> None:
    """With stack_dump = false there is no SIGABRT and no dump: SIGKILL straight after the ladder."""
    d = run_daemon(HUNG.format(command=program("hangs", "sleep")) + "stack_dump = false\n")
    d.wait_unit("hung", state="backoff", timeout=20)
    assert d.unit("hung")["last_exit"] == {"signal": "SIGKILL", "reason": "start_timeout"}
    assert not d.events("program.stack_dump")
