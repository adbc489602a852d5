"""The example's uvicorn as three instances on one socket: a rolling restart under load fails no request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.component.test_handover import Load
from tests.conftest import wait_until
from tests.integration.conftest import container_argv, stack_env

pytestmark = pytest.mark.integration


# The real stack, three uvicorns and a load generator: in make test-all and CI. make test keeps
# the same rolling restart on plain sockets (tests/component/test_instances.py) and the real web
# app's start-first handover under load (test_web_handover.py).
@pytest.mark.slow
def test_rolling_restarts_of_three_web_instances_under_load_fail_no_request(
    run_daemon, database: str, queue: str, tmp_path: Path
) -> None:
    """Two rolling `restart web` of 3 instances (start-first each, READY=1) under 4 clients: 0 failed requests."""
    env = stack_env(tmp_path, database, queue, SUPERVISOR_PROGRAMS__WEB__INSTANCES="3")
    d = run_daemon(None, env=env, argv=container_argv())
    d.wait_ready(timeout=90)
    names = [u["name"] for u in d.status()["units"] if u["name"].startswith("web")]
    assert names == ["web:0", "web:1", "web:2"]
    port = int(env["PORT"])
    # Four clients, one per instance and one more, each asking again the moment it is answered.
    with Load(port, clients=4, path="/livez") as load:
        wait_until(lambda: len(load.latencies) > 50, 30, "requests to flow", seen=d.tail)
        for n in range(2):
            code, doc = d.client.request("POST", "/v1/programs/web/restart")
            assert code == 200, doc
            assert [(p["state"], p["restarts"]) for p in doc["programs"]] == [("running", n + 1)] * 3
        served = len(load.latencies)
        wait_until(lambda: len(load.latencies) > served + 50, 30, "requests after the restarts", seen=d.tail)
    assert load.failures == [], f"{len(load.failures)} of {len(load.latencies)}: {load.failures[:5]}"
    for i in range(3):
        assert len(d.events("program.handover_done", program=f"web:{i}")) == 2
    # One at a time: each instance's handover began only after the one before had finished.
    handovers = [
        (e["event"], e["program"])
        for e in d.events()
        if e.get("event") in ("program.handover_started", "program.handover_done")
    ]
    assert handovers == [
        (k, f"web:{i}")
        for _ in range(2)
        for i in range(3)
        for k in ("program.handover_started", "program.handover_done")
    ]
