"""A supervisor at a low open-files limit, flooded with idle connections: it answers, and says which limit."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

from tests.conftest import Daemon, program, wait_until

LIMIT = 128
UNDER_A_LOW_LIMIT = ("sh", "-c", f'ulimit -n {LIMIT} && exec "$@"', "sh")


def _healthz(d: Daemon) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/healthz", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def test_idle_connections_past_the_open_files_limit_leave_healthz_and_status_answering(
    run_daemon: Callable[..., Daemon],
) -> None:
    """300 idle TCP connections against a limit of 128: budgets shrink to fit, /healthz and status answer.

    Before, each refused accept was a free-text line: hundreds a second, none naming the limit.
    """
    d = run_daemon(
        f"""
[programs.sleeper]
command = {program("sleeper")}
""",
        prefix=UNDER_A_LOW_LIMIT,
    )
    pid = d.wait_unit("sleeper", state="running")["pid"]
    reduced = d.wait_event("control.budgets_reduced")
    assert reduced["open_files_limit"] == LIMIT and reduced["tcp"] < 64, reduced
    held = []
    try:
        for _ in range(300):
            held.append(socket.create_connection(("127.0.0.1", d.http_port), timeout=5))
        body = wait_until(lambda: _healthz(d), 20, "/healthz to answer on a new connection", seen=d.tail)
        assert '"ok"' in body
        assert d.unit("sleeper")["pid"] == pid
        assert d.client.request("POST", "/v1/programs/sleeper/restart")[0] == 200
    finally:
        for s in held:
            s.close()
    assert d.wait_unit("sleeper", state="running")["pid"] != pid
    raw = [e for e in d.events() if str(e.get("event", "")).startswith("socket.accept()")]
    assert not raw, raw[:2]
    assert len(d.events("supervisor.out_of_files")) <= 2, d.tail()
