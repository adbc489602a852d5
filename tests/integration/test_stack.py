"""The example stack under the supervisor: real Postgres, Redis, uvicorn, Celery worker and beat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PY, alive, wait_until
from tests.integration.conftest import REDIS_URL, container_argv, server_port, stack_env, with_port

pytestmark = pytest.mark.integration


def rows(url: str) -> dict[str, int]:
    """Rows in the example's events table, by source."""
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall())


def post(port: str, source: str) -> str:
    """Ask the web app to enqueue a task; return its id."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/events?source={source}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.load(resp)["task_id"])


def test_stack_boots_flows_and_recovers_from_worker_faults(
    run_daemon, database: str, queue: str, tmp_path: Path
) -> None:
    """Boot from the container's command; tasks and beat write rows; kill -9 and SIGSTOP are healed."""
    env = stack_env(tmp_path, database, queue)
    d = run_daemon(None, env=env, argv=container_argv())
    doc = d.wait_ready(timeout=60)
    states = {u["name"]: (u["state"], u.get("health")) for u in doc["units"]}
    assert states == {
        "postgres": ("ready", None),
        "redis": ("ready", None),
        "migrate": ("succeeded", None),
        "web": ("running", "healthy"),
        "worker": ("running", "healthy"),
        "beat": ("running", "healthy"),
    }
    status = subprocess.run(
        [PY, "-m", "supervisor", "status", "--json", "--socket", d.socket], capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["units"][2]["revision"] == {"current": ["0003"], "heads": ["0003"]}

    post(env["PORT"], "web")
    wait_until(
        lambda: rows(database).get("web") == 1,
        30,
        "the worker to write the web task's row",
        seen=lambda: rows(database),
    )
    wait_until(lambda: rows(database).get("beat", 0) >= 2, 30, "beat's rows", seen=lambda: rows(database))

    # kill -9 of the worker: restarted, and tasks keep flowing.
    worker = d.unit("worker")
    os.kill(worker["pid"], signal.SIGKILL)
    again = d.wait_unit("worker", state="running", restarts=1, timeout=30)
    assert again["last_exit"] == {"signal": "SIGKILL", "reason": "exit"}
    post(env["PORT"], "after-kill")
    wait_until(
        lambda: rows(database).get("after-kill") == 1,
        60,
        "a task after the worker was killed",
        seen=lambda: (rows(database), d.tail()),
    )

    # SIGSTOP of the worker: its heartbeat goes stale and it is restarted with reason health.
    stopped = d.wait_unit("worker", health="healthy", timeout=30)
    os.kill(stopped["pid"], signal.SIGSTOP)
    replaced = d.wait_unit("worker", state="running", restarts=2, timeout=60)
    assert replaced["last_exit"]["reason"] == "health"
    wait_until(lambda: not alive(stopped["pid"]), 30, "the stopped worker to be gone")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(60) == 0


def test_redis_cut_parks_worker_and_beat_without_spending_budget(
    run_daemon, database: str, queue: str, tmp_path: Path, proxy
) -> None:
    """With Redis cut, crashed worker and beat wait in pending, spend no budget, and resume after."""
    redis_proxy = proxy(server_port(REDIS_URL, 6379))
    redis_proxy.open()
    env = stack_env(tmp_path, database, queue, REDIS_URL=with_port(REDIS_URL, redis_proxy.port))
    d = run_daemon(None, env=env, argv=container_argv())
    d.wait_ready(timeout=60)
    redis_proxy.close()
    d.wait_unit("redis", state="unavailable", timeout=30)
    before = {n: d.unit(n) for n in ("worker", "beat")}
    for unit in before.values():
        os.kill(unit["pid"], signal.SIGKILL)
    for name in ("worker", "beat"):
        parked = d.wait_unit(name, state="pending", timeout=30)
        assert parked["restarts"] == before[name]["restarts"], "a crash while Redis is down spent budget"
    assert d.unit("web")["state"] == "running"  # web does not restart for a dependency outage
    redis_proxy.open()
    for name in ("worker", "beat"):
        back = d.wait_unit(name, state="running", timeout=60)
        assert back["restarts"] == before[name]["restarts"]
    d.signal(signal.SIGTERM)
    assert d.wait_exit(60) == 0
