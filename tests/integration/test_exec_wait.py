"""``supervisor exec`` waits for Postgres itself (through a TCP proxy the test opens), then runs the command."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import PY, wait_until
from tests.integration.conftest import Proxy, server_port, with_port

pytestmark = pytest.mark.integration

QUERY = "import os, psycopg; print(psycopg.connect(os.environ['DATABASE_URL']).execute('SELECT 41 + 1').fetchone()[0])"


def config(tmp_path: Path, url: str) -> Path:
    """web waits on migrate, which waits on postgres: exec --like web must wait for postgres through the job."""
    path = tmp_path / "supervisor.toml"
    path.write_text(f"""
[supervisor]
log_format = "json"
[dependencies.postgres]
type = "postgres"
url = "{url}"
timeout = "60s"
interval = "200ms"
[jobs.migrate]
command = ["true"]
depends_on = ["postgres"]
[programs.web]
command = ["sleep", "60"]
depends_on = ["migrate"]
environment = {{ DATABASE_URL = "{url}" }}
""")
    return path


def test_exec_waits_for_the_dependency_then_runs_the_command(tmp_path: Path, database: str, proxy: type[Proxy]) -> None:
    """With Postgres unreachable the command does not run; once the proxy opens, it runs and its output is clean."""
    gate = proxy(server_port(database, 5432))
    path = config(tmp_path, with_port(database, gate.port))
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_SOCKET", "SUPERVISOR_CONFIG")}
    proc = subprocess.Popen(
        [PY, "-m", "supervisor", "exec", "-c", str(path), "--like", "web", "--", PY, "-c", QUERY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    logged: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        logged.extend(proc.stderr)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any('"dependency.not_ready"' in line for line in logged), 20, "a failed probe", lambda: logged
        )
        assert proc.poll() is None, "the command ran before Postgres answered"
        gate.open()
        # stderr has one reader, the pump: communicate() would read it too, and take lines from it.
        proc.wait(timeout=30)
        assert proc.stdout is not None
        out = proc.stdout.read()
        reader.join(10)
        assert proc.returncode == 0, logged
        assert out == "42\n"  # stdout is the command's alone: the waiting was logged on stderr
        events = [json.loads(line)["event"] for line in logged if line.startswith("{")]
        assert "dependency.ready" in events
    finally:
        proc.kill()
        proc.wait()


def test_no_wait_runs_the_command_at_once(tmp_path: Path, database: str, proxy: type[Proxy]) -> None:
    """--no-wait: the command runs with Postgres still unreachable, and its failure is its exit code."""
    gate = proxy(server_port(database, 5432))
    path = config(tmp_path, with_port(database, gate.port))
    done = subprocess.run(
        [PY, "-m", "supervisor", "exec", "-c", str(path), "--no-wait", "--", PY, "-c", QUERY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "psycopg" in done.stderr and "dependency" not in done.stderr
