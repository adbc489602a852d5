"""status shows what each program costs: CPU of its whole tree over the last seconds, and its RSS."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable

from tests.conftest import PY, Daemon, wait_until

BUSY = (
    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'while True: pass']); import time; time.sleep(600)"
)


def test_a_busy_tree_shows_cpu_and_an_idle_one_shows_none(run_daemon: Callable[..., Daemon]) -> None:
    """A program whose child spins shows its CPU (the whole tree's); a sleeper shows about none; both show RSS."""
    d = run_daemon(
        f"""
[programs.busy]
command = {json.dumps([PY, "-c", BUSY])}
[programs.idle]
command = ["sleep", "600"]
"""
    )
    d.wait_ready()

    def sampled() -> dict[str, dict[str, object]] | None:
        _, doc = d.client.request("GET", "/v1/status?rss=0")
        units = {u["name"]: u for u in doc["units"] if u["kind"] == "program"}
        return units if all(u.get("cpu_percent") is not None for u in units.values()) else None

    units = wait_until(sampled, 20, "a CPU figure for every program", seen=d.tail)
    busy, idle = units["busy"], units["idle"]
    # Generous bounds: on a loaded 2-core machine a spinning process may get a tenth of a CPU.
    assert isinstance(idle["cpu_percent"], float) and idle["cpu_percent"] < 5, idle
    assert isinstance(busy["cpu_percent"], float) and busy["cpu_percent"] > max(3.0, idle["cpu_percent"]), busy
    assert isinstance(busy["rss_bytes"], int) and busy["rss_bytes"] > 1_000_000, busy
    table = subprocess.run(
        [PY, "-m", "supervisor", "status", "--socket", d.socket], capture_output=True, text=True, timeout=30
    ).stdout
    head = table.splitlines()[0].split()
    assert head[7:9] == ["CPU", "MEM"], table
    row = next(line for line in table.splitlines() if line.startswith("busy")).split()
    assert row[7].endswith("%") and row[8][-1] in "KMG", table
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=10).read().decode()
    assert 'supervisor_program_cpu_percent{program="busy"}' in metrics, metrics
