"""The daemon's own stdout refusing writes (a full disk) costs log lines, never the daemon."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Callable

from tests.conftest import Daemon, program, wait_until

# The daemon's stdout on /dev/full: every write fails with ENOSPC, as on a full disk behind
# `supervisor run >> /var/log/stack.log`. Its stderr stays in the test's log, for a traceback.
ON_A_FULL_DISK = ("sh", "-c", 'exec "$@" >/dev/full', "sh")


def _dropped(d: Daemon) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=10).read().decode()
    line = next(x for x in body.splitlines() if x.startswith("supervisor_log_lines_dropped_total "))
    return float(line.split()[1])


def test_a_full_disk_under_the_log_drops_lines_and_the_daemon_goes_on(run_daemon: Callable[..., Daemon]) -> None:
    """Status answers, a program's output is counted as dropped, a restart works, SIGTERM ends cleanly."""
    d = run_daemon(
        f"""
[programs.talker]
command = {program("chatty", 200, 40)}
min_uptime = 0
""",
        prefix=ON_A_FULL_DISK,
    )
    first = wait_until(
        lambda: d.proc.poll() is None and d.unit("talker")["state"] == "running" and d.unit("talker")["pid"],
        20,
        "talker to run under a daemon whose stdout is full",
        seen=lambda: f"exit {d.proc.poll()}\n{d.tail()}",
    )
    wait_until(lambda: _dropped(d) >= 200, 20, "the talker's 200 lines to be counted as dropped", seen=d.tail)
    assert d.client.request("POST", "/v1/programs/talker/restart")[0] == 200
    assert d.unit("talker")["pid"] != first
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0, d.tail()
    assert "Traceback" not in d.tail(200), d.tail(200)


def test_a_daemon_started_with_stdin_and_stdout_closed_runs_on_dev_null(run_daemon: Callable[..., Daemon]) -> None:
    """`supervisor run >&- <&-`: 0 and 1 are /dev/null before anything else can take their numbers."""
    d = run_daemon(
        f"""
[programs.talker]
command = {program("chatty", 100, 40)}
""",
        prefix=("sh", "-c", 'exec "$@" >&- <&-', "sh"),
    )
    wait_until(
        lambda: d.proc.poll() is None and d.unit("talker")["state"] == "running",
        20,
        "talker to run under a daemon started with 0 and 1 closed",
        seen=lambda: f"exit {d.proc.poll()}\n{d.tail()}",
    )
    assert [os.readlink(f"/proc/{d.proc.pid}/fd/{fd}") for fd in (0, 1)] == ["/dev/null", "/dev/null"]
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0, d.tail()
