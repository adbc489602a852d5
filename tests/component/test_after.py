"""`after`: one program's start waits while another's is under way, and for nothing else."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from tests.conftest import PY, Daemon, program


def at(d: Daemon, event: str, name: str, index: int = 0) -> float:
    """When the ``index``-th ``event`` of program ``name`` was logged (seconds since the epoch)."""
    stamp = d.events(event, program=name)[index]["timestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def followers_of_web(web: str, *names: str, head: str = "", runs: str = "sleeper") -> str:
    """A configuration: web (test program ``runs``, with the lines ``web``), and each of ``names`` after it."""
    text = f"{head}[programs.web]\ncommand = {program(runs)}\n{web}\n"
    for name in names:
        text += f'[programs.{name}]\ncommand = {program("sleeper")}\nmin_uptime = "0"\nafter = ["web"]\n'
    return text


def test_siblings_released_together_start_once_the_named_one_is_ready(run_daemon) -> None:
    """worker and beat, released in the same instant as web, spawn only after web is ready."""
    d = run_daemon(followers_of_web('min_uptime = "600ms"', "worker", "beat"))
    d.wait_ready()
    ready, web_started = at(d, "program.ready", "web"), at(d, "program.started", "web")
    for name in ("worker", "beat"):
        started = at(d, "program.started", name)
        assert started >= ready, f"{name} spawned {ready - started:.3f}s before web was ready"
        assert d.events("program.waiting", program=name, waiting_for=["web"]), d.tail()
    assert ready - web_started >= 0.55, "web was not up for its min_uptime before it counted as ready"
    # The plan, and so the shutdown order, keeps the three on one level.
    assert [u["name"] for u in d.status()["units"]] == ["beat", "web", "worker"]


def test_a_failing_start_does_not_hold_its_followers(run_daemon) -> None:
    """A web whose start fails lets worker start while web backs off: ordering, not a dependency."""
    crashing = 'restart = { backoff = { initial = "60s", jitter = 0 }, max_restarts = 100 }'
    d = run_daemon(followers_of_web(crashing, "worker", head='[supervisor]\non_fatal = "stay"\n', runs="crasher"))
    d.wait_unit("worker", state="running", timeout=10)
    web = d.unit("web")
    assert web["state"] == "backoff", web
    assert at(d, "program.started", "worker") >= at(d, "program.exited", "web"), (
        "worker spawned while web's first start was still under way"
    )


def test_a_stopped_or_running_program_holds_nothing(run_daemon) -> None:
    """With web left stopped, worker starts at once; web's later start and restart leave worker be."""
    d = run_daemon(followers_of_web('autostart = false\nmin_uptime = "300ms"', "worker"))
    d.wait_ready()
    worker = d.unit("worker")
    assert worker["state"] == "running" and d.unit("web")["state"] == "stopped"
    assert d.client.request("POST", "/v1/programs/web/start")[0] == 200
    d.wait_unit("web", state="running")
    assert d.client.request("POST", "/v1/programs/web/restart")[0] == 200
    d.wait_event("program.started", program="web", attempt=0, timeout=10)
    d.wait_unit("web", state="running")
    assert d.unit("worker")["pid"] == worker["pid"], "a running follower was touched by web's start"
    assert len(d.events("program.started", program="worker")) == 1


def test_a_follower_restarted_during_the_named_start_waits_for_it(run_daemon) -> None:
    """Asked to restart while web starts, worker's new start waits until web is ready."""
    d = run_daemon(followers_of_web('min_uptime = "2500ms"', "worker"))
    d.wait_ready()
    # A restart request answers once the program is running again, so web's goes on aside.
    with ThreadPoolExecutor(1) as pool:
        web_restart = pool.submit(d.client.request, "POST", "/v1/programs/web/restart")
        d.wait_unit("web", state="starting")
        # The command answers once worker's old process is gone, and says what it waits for.
        out = subprocess.run(
            [PY, "-m", "supervisor", "restart", "worker", "--socket", d.socket], capture_output=True, text=True
        )
        assert out.returncode == 0 and out.stdout.strip() == "worker: pending, waiting for web", out
        assert web_restart.result(timeout=30)[0] == 200
    assert d.unit("worker")["state"] == "running"
    # Its old process gone while web was starting, it said what it waited for.
    assert d.events("program.waiting", program="worker", waiting_for=["web"]), d.tail()
    restarted, ready = at(d, "program.started", "worker", -1), at(d, "program.ready", "web", -1)
    assert len(d.events("program.ready", program="web")) == 2
    assert restarted >= ready, f"worker restarted {ready - restarted:.3f}s before web was ready again"


def test_start_all_and_restart_all_start_the_named_program_first(run_daemon) -> None:
    """`start all` and `restart all` (stop-first) spawn the followers only once web is ready again."""
    d = run_daemon(followers_of_web('min_uptime = "800ms"', "beat", "worker"))
    d.wait_ready()
    assert d.client.request("POST", "/v1/programs/all/stop")[0] == 200
    for verb in ("start", "restart"):
        assert d.client.request("POST", f"/v1/programs/all/{verb}")[0] == 200, verb
        d.wait_unit("worker", state="running")
        d.wait_unit("beat", state="running")
        ready = at(d, "program.ready", "web", -1)
        for name in ("beat", "worker"):
            started = at(d, "program.started", name, -1)
            assert started >= ready, f"{verb} all: {name} spawned {ready - started:.3f}s before web was ready"
    assert len(d.events("program.ready", program="web")) == 3
