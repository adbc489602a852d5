"""The data plane: a chatty child is not throttled by the daemon, and long lines are cut."""

from __future__ import annotations

import psutil

from tests.conftest import program, wait_until


def test_a_chatty_child_costs_the_daemon_little_cpu_per_line(run_daemon, tmp_path) -> None:
    """200,000 lines of 100 bytes at full speed: each reaches the log and the ring, for a few µs of CPU."""
    d = run_daemon(f"""
[programs.chatty]
command = {program("chatty", 200_000, 100, tmp_path / "GO")}
""")
    d.wait_ready()
    daemon = psutil.Process(d.proc.pid)
    before = daemon.cpu_times()
    (tmp_path / "GO").touch()
    wait_until(lambda: d.events("program.output", program="chatty", line="chatty done"), 60, "the last line in the log")
    after = daemon.cpu_times()
    cpu = (after.user + after.system) - (before.user + before.system)
    assert len(d.events("program.output", program="chatty")) == 200_001
    code, doc = d.client.request("GET", "/v1/programs/chatty/logs?lines=2")
    assert code == 200 and [row["line"] for row in doc["lines"]] == ["y" * 99, "chatty done"]
    # The goal is 2 µs (bench/logflood.py measures it); one event rendered at a time cost 15 µs.
    assert cpu / 200_000 < 6e-6, f"the daemon spent {cpu / 200_000 * 1e6:.1f} µs of CPU per line"
