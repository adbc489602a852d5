"""A hung Celery task's stack: before the worker's SIGKILL, the dump names the function it hangs in."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PY, wait_until
from tests.integration.conftest import container_argv, stack_env

pytestmark = pytest.mark.integration


def test_a_hung_task_shows_where_it_hangs(run_daemon, database: str, queue: str, tmp_path: Path) -> None:
    """POST /hang, then stop the worker: its stop ladder runs out, and the stack dump names hang_on_purpose."""
    # The shipped ladder (20 s of warm shutdown, 5 s of cold) shortened, for the test's sake only.
    env = stack_env(tmp_path, database, queue, SUPERVISOR_PROGRAMS__WORKER__STOP_TIMEOUT="4s")
    d = run_daemon(None, env=env, argv=container_argv())
    d.wait_ready(timeout=90)
    request = urllib.request.Request(f"http://127.0.0.1:{env['PORT']}/hang", method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        task = json.load(resp)["task_id"]
    wait_until(
        lambda: any(task in e.get("line", "") and "received" in e.get("line", "") for e in d.events("program.output")),
        30,
        "the worker to receive the hanging task",
        seen=d.tail,
    )
    stop = subprocess.run(
        [PY, "-m", "supervisor", "stop", "worker", "--socket", d.socket], capture_output=True, text=True, timeout=60
    )
    assert stop.returncode == 0, (stop.stdout, stop.stderr, d.tail())
    dump = d.wait_event("program.stack_dump", 30, program="worker")
    assert any("in hang_on_purpose" in line for line in dump["traceback"]), dump
    logs = subprocess.run(
        [PY, "-m", "supervisor", "logs", "worker", "-n", "200", "--socket", d.socket],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "in hang_on_purpose" in logs and "program.stack_dump" in logs, logs
