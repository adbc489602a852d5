"""``max_age`` with real processes: recycled at its age, outside the budget, start-first where configured."""

from __future__ import annotations

import subprocess
import urllib.request

from tests.conftest import PY, free_port, program, wait_until


def test_a_program_is_recycled_at_max_age_again_and_again_never_fatal(run_daemon) -> None:
    """max_age 1s with max_restarts 1: three recycles (more than the budget), each a new pid, reason max_age."""
    d = run_daemon(f"""
[programs.leaky]
command = {program("sleeper")}
min_uptime = "0.2s"
max_age = "1s"
max_age_jitter = 0
restart = {{ max_restarts = 1, window = "1m" }}
""")
    first = d.wait_unit("leaky", state="running")["pid"]
    d.wait_event("program.max_age", pid=first)
    pids = wait_until(
        lambda: len(p := {e["pid"] for e in d.events("program.started")}) >= 4 and p,
        20,
        "four incarnations of leaky",
        seen=d.tail,
    )
    assert first in pids
    unit = d.wait_unit("leaky", state="running")
    assert unit["last_exit"]["reason"] == "max_age" and unit["last_exit"]["code"] == 0  # SIGTERM -> exit 0
    assert unit["restarts"] >= 3
    assert not d.events("program.fatal")
    ages = [e["age_s"] for e in d.events("program.max_age")]
    assert all(1.0 <= a < 10 for a in ages), ages
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=10).read().decode()
    line = next(x for x in metrics.splitlines() if 'program="leaky"' in x and 'reason="max_age"' in x)
    assert float(line.split()[-1]) >= 3, line


def test_start_first_recycles_with_the_new_one_ready_before_the_old_one_goes(run_daemon) -> None:
    """With start-first, the new incarnation says READY=1 before the old one is retired."""
    port = free_port()
    d = run_daemon(f"""
[programs.web]
command = {program("slow_http", 0.2)}
listen = "127.0.0.1:{port}"
notify = true
max_age = "2s"
max_age_jitter = 0
restart = {{ order = "start-first" }}
""")
    first = d.wait_unit("web", state="running")["pid"]
    done = d.wait_event("program.handover_done", old_pid=first, timeout=20)
    assert done["reason"] == "max_age"
    retired = d.wait_event("program.retired", pid=first)
    assert retired
    unit = d.wait_unit("web", state="running", pid=done["pid"])
    assert unit["last_exit"]["reason"] == "max_age"


def test_max_age_under_min_uptime_is_exit_78_naming_the_key(tmp_path) -> None:
    """`supervisor check` refuses max_age shorter than min_uptime, naming the file and the key."""
    path = tmp_path / "supervisor.toml"
    path.write_text('[programs.w]\ncommand = ["sleep", "1"]\nmin_uptime = "5s"\nmax_age = "2s"\n')
    done = subprocess.run(
        [PY, "-m", "supervisor", "check", "-c", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78
    assert f"{path}: programs.w.max_age: " in done.stderr and "shorter than min_uptime" in done.stderr
