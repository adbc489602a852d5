"""``[supervisor] traffic``: /readyz answers for the units that serve traffic, ``status`` still for everything."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import PY, free_port, program, wait_until
from tests.integration.conftest import REDIS_URL, Proxy, server_port, with_port

pytestmark = pytest.mark.integration


def readyz(port: int, query: str = "") -> tuple[int, dict[str, Any]]:
    """GET /readyz (with ``query``); return the code and the JSON body."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz{query}", timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def status_code(socket: str) -> int:
    """Run ``supervisor status`` against the daemon; return its exit code."""
    return subprocess.run([PY, "-m", "supervisor", "status", "--socket", socket], capture_output=True).returncode


def stack(redis_port: int) -> str:
    """A replica: web (HTTP), a worker on Redis, web alone deciding /readyz."""
    return f"""
[supervisor]
traffic = ["web"]

[dependencies.redis]
type = "redis"
url = "{with_port(REDIS_URL, redis_port)}"
interval = "0.2s"

[programs.web]
command = {program("http_ok", free_port())}
depends_on = ["redis"]
min_uptime = 0

[programs.worker]
command = {program("sleeper")}
depends_on = ["redis"]
min_uptime = 0
"""


def test_web_stays_in_rotation_while_redis_is_cut_or_the_worker_is_stopped(run_daemon, proxy: type[Proxy]) -> None:
    """Redis cut, or the worker stopped: /readyz stays 200 for web while `status` exits 1; a stopped web is 503."""
    p = proxy(server_port(REDIS_URL, 6379))
    p.open()
    d = run_daemon(stack(p.port))
    d.wait_ready()
    sup = d.status()["supervisor"]
    assert sup["traffic"] == ["web"] and sup["ready_for_traffic"] is True
    assert readyz(d.http_port) == (200, {"ready": True})

    p.close()  # Redis goes away for this replica only
    wait_until(lambda: d.unit("redis")["state"] == "unavailable", 10, "Redis to be unavailable", seen=d.tail)
    assert readyz(d.http_port) == (200, {"ready": True}), d.tail()
    assert status_code(d.socket) == 1
    sup = d.status()["supervisor"]
    assert sup["ready"] is False and sup["ready_for_traffic"] is True
    code, body = readyz(d.http_port, "?unit=redis")
    assert code == 503 and body["reasons"][0].startswith("redis unavailable"), body

    p.open()
    d.wait_ready()
    stopped = subprocess.run([PY, "-m", "supervisor", "stop", "worker", "--socket", d.socket], capture_output=True)
    assert stopped.returncode == 0, stopped.stderr
    assert readyz(d.http_port) == (200, {"ready": True})
    assert status_code(d.socket) == 1
    worker = {"unit": "worker", "ready": False, "reasons": ["worker is stopped"]}
    assert readyz(d.http_port, "?unit=worker") == (503, worker)
    assert readyz(d.http_port, "?unit=web") == (200, {"unit": "web", "ready": True})

    subprocess.run([PY, "-m", "supervisor", "stop", "web", "--socket", d.socket], capture_output=True, check=True)
    assert readyz(d.http_port) == (503, {"ready": False, "reasons": ["web is stopped"]})
    assert readyz(d.http_port, "?unit=ghost")[0] == 404
