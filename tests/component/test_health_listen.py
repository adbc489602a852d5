"""Health checks restart what stops answering; the listen hand-off refuses no connection."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

from tests.conftest import PY, alive, free_port, program, wait_until


def test_sigstopped_http_child_is_restarted_with_reason_health(run_daemon) -> None:
    """A hung (SIGSTOPped) HTTP server fails its checks and is replaced; the ladder reaches it."""
    port = free_port()
    d = run_daemon(f"""
[programs.web]
command = {program("http_ok", port)}
stop_timeout = "1s"
restart = {{ backoff = {{ initial = "100ms" }} }}
health = {{ http = "http://127.0.0.1:{port}/", interval = "300ms", timeout = "300ms", failure_threshold = 2 }}
""")
    first = d.wait_unit("web", health="healthy")
    os.kill(first["pid"], signal.SIGSTOP)
    d.wait_event("program.unhealthy", program="web")
    second = d.wait_unit("web", state="running", health="healthy", restarts=1)
    assert second["pid"] != first["pid"]
    assert second["last_exit"]["reason"] == "health"
    assert not alive(first["pid"])


def test_status_shows_a_failing_check_before_its_threshold_and_no_health_when_stopped(
    run_daemon, tmp_path: Path
) -> None:
    """A check that fails below failure_threshold reads failing N/T (JSON: health_failures); stopped reads -."""
    flag = tmp_path / "up"
    flag.touch()
    d = run_daemon(f"""
[programs.worker]
command = ["sleep", "100"]
health = {{ exec = ["test", "-e", "{flag}"], interval = "200ms", failure_threshold = 1000 }}
""")
    d.wait_unit("worker", health="healthy")

    def table_health() -> str:
        out = subprocess.run(
            [PY, "-m", "supervisor", "status", "--socket", d.socket], capture_output=True, text=True, timeout=60
        )
        row = next(line for line in out.stdout.splitlines() if line.startswith("worker"))
        return " ".join(row.split()[6:8])

    assert table_health().startswith("healthy")
    flag.unlink()
    failing = wait_until(
        lambda: (u := d.unit("worker")).get("health_failures", 0) >= 1 and u,
        10,
        "a failed check counted",
        seen=lambda: d.unit("worker"),
    )
    assert failing["health"] == "healthy" and failing["health_failure_threshold"] == 1000  # health keeps its meaning
    assert table_health().startswith("failing ") and table_health().endswith("/1000")
    flag.touch()
    wait_until(lambda: d.unit("worker")["health_failures"] == 0, 10, "a passing check", seen=lambda: d.unit("worker"))
    stop = subprocess.run(
        [PY, "-m", "supervisor", "stop", "worker", "--socket", d.socket], capture_output=True, timeout=60
    )
    assert stop.returncode == 0, stop
    stopped = d.wait_unit("worker", state="stopped")
    assert stopped["health"] == "unknown"  # the JSON as before
    assert table_health().startswith("- ")


def test_exec_tcp_and_file_checks(run_daemon, tmp_path: Path) -> None:
    """exec (exit 0), tcp (connect) and file (fresh mtime) checks each report health."""
    port = free_port()
    beat = tmp_path / "beat"
    d = run_daemon(f"""
[programs.by_exec]
command = ["sleep", "100"]
health = {{ exec = ["true"], interval = "200ms" }}
[programs.by_tcp]
command = {program("http_ok", port)}
health = {{ tcp = "127.0.0.1:{port}", interval = "200ms" }}
[programs.by_file]
command = ["sh", "-c", "while true; do touch {beat}; sleep 0.2; done"]
health = {{ file = "{beat}", max_age = "2s", interval = "200ms" }}
[programs.stale]
command = ["sleep", "100"]
health = {{ file = "{tmp_path / "never"}", max_age = "1s", interval = "200ms", failure_threshold = 1 }}
restart = {{ backoff = {{ initial = "5s" }} }}
""")
    for name in ("by_exec", "by_tcp", "by_file"):
        d.wait_unit(name, health="healthy")
    d.wait_event("program.unhealthy", program="stale")
    failed = d.events("program.unhealthy", program="stale")[0]
    assert "does not exist" in failed["detail"]
    # The failing check restarts only its own program: the others stay healthy, never restarted.
    wait_until(
        lambda: (d.unit("stale")["last_exit"] or {}).get("reason") == "health",
        10,
        "stale to be stopped for its failing check",
        seen=lambda: d.unit("stale"),
    )
    for name in ("by_exec", "by_tcp", "by_file"):
        unit = d.unit(name)
        assert (unit["health"], unit["restarts"], unit["last_exit"]) == ("healthy", 0, None), unit


def test_listen_hand_off_refuses_no_connection_across_20_restarts(run_daemon) -> None:
    """The socket is bound once and handed on as fd 3: 20 restarts under load refuse nothing."""
    port = free_port()
    d = run_daemon(f"""
[programs.web]
command = {program("http_ok")}
listen = "127.0.0.1:{port}"
stop_timeout = "5s"
min_uptime = "200ms"
""")
    d.wait_unit("web", state="running")
    url = f"http://127.0.0.1:{port}/"
    failures: list[str] = []
    served_by: set[str] = set()
    count = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal count
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    served_by.add(resp.read().decode().split()[1])
                    count += 1
            except Exception as exc:  # every failure counts, refused or reset
                failures.append(repr(exc))

    client = threading.Thread(target=load)
    client.start()
    try:
        for _ in range(20):
            before = d.unit("web")["pid"]
            code, doc = d.client.request("POST", "/v1/programs/web/restart")
            assert code == 200, doc
            new = wait_until(
                lambda b=before: (pid := d.unit("web")["pid"]) not in (None, b) and pid, 10, "a new incarnation"
            )
            # Each incarnation serves the load before the next restart: the hand-off is tested 20 times.
            wait_until(
                lambda n=new: str(n) in served_by, 10, f"a request served by {new}", seen=lambda: (count, failures[:3])
            )
    finally:
        stop.set()
        client.join(30)
    assert failures == [], f"{len(failures)} failed requests out of {count}: {failures[:3]}"
    assert len(served_by) == 21, f"{count} requests, served by {len(served_by)} pids"  # the first and 20 more
    assert d.unit("web")["restarts"] == 20
