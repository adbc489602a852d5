"""The example's uvicorn under load: start-first restarts fail no request and never wait out a boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.component.test_handover import Load
from tests.conftest import wait_until
from tests.integration.conftest import container_argv, stack_env

pytestmark = pytest.mark.integration


def test_restarting_the_real_web_app_under_load_fails_no_request(
    run_daemon, database: str, queue: str, tmp_path: Path
) -> None:
    """Three `restart web` of the example app (start-first, READY=1 from its lifespan) under 4 clients: 0 failures."""
    env = stack_env(tmp_path, database, queue)
    d = run_daemon(None, env=env, argv=container_argv())
    d.wait_ready(timeout=60)
    port = int(env["PORT"])
    with Load(port, clients=4, path="/livez") as load:
        wait_until(lambda: len(load.latencies) > 20, 30, "requests to flow", seen=d.tail)
        for n in range(3):
            code, doc = d.client.request("POST", "/v1/programs/web/restart")
            assert code == 200, doc
            assert doc["programs"][0]["restarts"] == n + 1 and doc["programs"][0]["state"] == "running"
        served = len(load.latencies)
        wait_until(lambda: len(load.latencies) > served + 20, 30, "requests after the restarts", seen=d.tail)
    done = d.events("program.handover_done", program="web")
    assert len(done) == 3
    boot = min(e["ready_after_s"] for e in done)
    assert load.failures == [], load.failures[:5]
    assert max(load.latencies) < boot, f"a request waited {max(load.latencies):.2f}s; uvicorn boots in {boot:.2f}s"
