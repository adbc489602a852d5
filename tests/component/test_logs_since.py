"""``supervisor logs --since`` against the real daemon: only the lines from then on, then following."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import UTC, datetime

from tests.component.test_operator import cli
from tests.conftest import PY, wait_until

ONE = """
[programs.a]
command = ["sh", "-c", "echo \\"a start $$\\"; exec sleep 1000"]
"""


def restart(d, name: str) -> int:  # type: ignore[no-untyped-def]
    """Restart a program and wait for its new start line; return the new pid."""
    old = d.unit(name)["pid"]
    assert cli("restart", name, "--socket", d.socket).returncode == 0
    pid = d.wait_unit(name, pid=d.unit(name)["pid"])["pid"]
    assert pid != old
    d.wait_event("program.output", program=name, line=f"a start {pid}")
    return int(pid)


def test_since_a_time_shows_only_the_lines_from_then_on(run_daemon) -> None:
    """A first incarnation's line, the cut, a second one's: --since the cut shows the second only, in any form."""
    d = run_daemon(ONE)
    first = d.wait_unit("a", state="running")["pid"]
    d.wait_event("program.output", program="a", line=f"a start {first}")
    cut = time.time()
    second = restart(d, "a")
    forms = [
        datetime.fromtimestamp(cut).isoformat(timespec="microseconds"),  # no zone: local time
        datetime.fromtimestamp(cut, UTC).isoformat(timespec="microseconds"),  # +00:00
        datetime.fromtimestamp(cut, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    ]
    for since in forms:
        out = cli("logs", "--since", since, "--socket", d.socket)
        assert out.returncode == 0, out.stderr
        assert f"a start {second}" in out.stdout and f"a start {first}" not in out.stdout, (since, out.stdout)
    both = cli("logs", "--since", "1h", "--socket", d.socket).stdout
    assert f"a start {first}" in both and f"a start {second}" in both
    last = cli("logs", "--since", "1h", "-n", "1", "--socket", d.socket).stdout.splitlines()
    assert len(last) == 1 and f"a start {second}" in last[0]


def test_since_with_follow_starts_from_then_and_goes_on(run_daemon) -> None:
    """logs -f --since: the lines since the cut, not the older ones, then the new incarnation's."""
    d = run_daemon(ONE)
    first = d.wait_unit("a", state="running")["pid"]
    d.wait_event("program.output", program="a", line=f"a start {first}")
    cut = datetime.fromtimestamp(time.time()).isoformat()
    second = restart(d, "a")
    follower = subprocess.Popen(
        [PY, "-m", "supervisor", "logs", "-f", "--since", cut, "--socket", d.socket], stdout=subprocess.PIPE, text=True
    )
    seen: list[str] = []

    def pump() -> None:
        assert follower.stdout is not None
        seen.extend(follower.stdout)

    threading.Thread(target=pump, daemon=True).start()
    try:
        wait_until(lambda: any(f"a start {second}" in s for s in seen), 15, "the line since the cut", lambda: seen)
        third = restart(d, "a")
        wait_until(lambda: any(f"a start {third}" in s for s in seen), 15, "the followed line", lambda: seen)
        assert not any(f"a start {first}" in s for s in seen), seen
    finally:
        follower.kill()
        follower.wait()


def test_a_bad_since_is_exit_2_saying_what_it_takes() -> None:
    """--since yesterdayish: exit 2 (usage), naming the value and the forms it takes; nothing is asked of a daemon."""
    out = cli("logs", "--since", "10 minutes", "--socket", "/nonexistent.sock")
    assert out.returncode == 2
    assert "--since '10 minutes'" in out.stderr and "1h30m" in out.stderr and "2026-12-04T10:00:00" in out.stderr
