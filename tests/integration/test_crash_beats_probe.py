"""A crash that beats the probe: a worker that notices Redis going before the daemon does spends no restart."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PY
from tests.integration.conftest import REDIS_URL, server_port, with_port

pytestmark = pytest.mark.integration

# Connected to Redis through the proxy; exits 1 as soon as that connection ends (or is refused).
WORKER = "import os, socket; s = socket.create_connection(('127.0.0.1', {port})); s.recv(1); os._exit(1)"


def test_a_worker_that_exits_before_the_probe_notices_redis_is_gone_spends_no_restart(run_daemon, proxy) -> None:
    """The proxy closes; the worker exits first; its exit waits for the probe, which finds Redis down: no restart."""
    redis_proxy = proxy(server_port(REDIS_URL, 6379))
    redis_proxy.open()
    d = run_daemon(f"""
[dependencies.redis]
type = "redis"
url = "{with_port(REDIS_URL, redis_proxy.port)}"
interval = "3s"
ready_interval = "30s"
[programs.worker]
command = {json.dumps([PY, "-c", WORKER.format(port=redis_proxy.port)])}
depends_on = ["redis"]
restart = {{ max_restarts = 1 }}
""")
    d.wait_ready()
    # The kept connection stirs at once, but the next probe waits for `interval` since the last
    # one: the worker's exit comes first, as it does when a worker notices before the daemon.
    redis_proxy.close()
    d.wait_unit("redis", state="unavailable", timeout=30)
    parked = d.wait_unit("worker", state="pending", timeout=30)
    assert parked["restarts"] == 0, "the worker's exit was counted, though Redis was gone"
    assert d.events("program.exit_deferred", program="worker")
    redis_proxy.open()
    back = d.wait_unit("worker", state="running", timeout=30)
    assert back["restarts"] == 0
