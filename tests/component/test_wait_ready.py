"""``supervisor wait --ready`` against the real daemon: its exit code is the stack's readiness."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import PY, program


def wait_ready(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``supervisor wait --ready`` as a script would."""
    argv = [PY, "-m", "supervisor", "wait", "--ready", "--socket", socket, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_exits_0_once_the_stack_is_ready(run_daemon) -> None:
    """Started at the same moment as the daemon, it returns 0, and the daemon then says ready."""
    d = run_daemon(f'[programs.alpha]\ncommand = {program("sleeper")}\nmin_uptime = "1s"\n')
    done = wait_ready(d.socket, "--timeout", "30")
    assert done.returncode == 0, done.stderr + d.tail()
    assert d.status()["supervisor"]["ready"] is True


def test_exits_1_when_a_program_goes_fatal(run_daemon) -> None:
    """A program that exhausts its budget (the daemon stays, on_fatal = stay): exit 1 naming it, before the timeout."""
    d = run_daemon(f"""
[supervisor]
on_fatal = "stay"
[programs.steady]
command = {program("sleeper")}
[programs.crasher]
command = {program("crasher")}
restart = {{ backoff = {{ initial = "10ms" }}, max_restarts = 1 }}
""")
    started = time.monotonic()
    done = wait_ready(d.socket, "--timeout", "50")
    assert done.returncode == 1, done.stderr + d.tail()
    assert "crasher is fatal" in done.stderr
    assert time.monotonic() - started < 40


def test_exits_1_at_the_timeout(run_daemon) -> None:
    """A program that never becomes ready within the timeout: exit 1, naming it."""
    d = run_daemon(f'[programs.slow]\ncommand = {program("sleeper")}\nmin_uptime = "60s"\n')
    d.wait_unit("slow", state="starting")  # the daemon answers: the 1.5 s are the stack's, not its start's
    done = wait_ready(d.socket, "--timeout", "1.5")
    assert done.returncode == 1, done.stderr + d.tail()
    assert "not ready after 1.5s" in done.stderr and "slow is starting" in done.stderr


def test_exits_3_when_no_daemon_answers(tmp_path: Path) -> None:
    """No daemon on the socket: exit 3, saying where it looked."""
    done = wait_ready(str(tmp_path / "none.sock"), "--timeout", "1")
    assert done.returncode == 3
    assert "none.sock" in done.stderr
