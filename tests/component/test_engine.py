"""The real daemon supervising real child processes: restarts, budget, shutdown, reaping."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from tests.conftest import PY, alive, program, programs_of, wait_until


def test_first_restart_is_at_once_and_the_second_waits_the_configured_delay(run_daemon) -> None:
    """The first crash restarts at once; the second waits the backoff's initial delay, not less."""
    d = run_daemon(f"""
[programs.crasher]
command = {program("crasher")}
restart = {{ backoff = {{ initial = "700ms", jitter = 0 }}, max_restarts = 100 }}
""")
    first = d.wait_event("program.started", program="crasher", attempt=1)
    crash1 = d.events("program.exited", program="crasher")[0]
    gap1 = _ts(first["timestamp"]) - _ts(crash1["timestamp"])
    assert gap1 < 0.5, f"the first restart came after {gap1:.3f}s, expected at once"
    second = d.wait_event("program.started", program="crasher", attempt=2)
    crash2 = d.events("program.exited", program="crasher")[1]
    gap2 = _ts(second["timestamp"]) - _ts(crash2["timestamp"])
    assert 0.65 <= gap2 < 5.0, f"the second restart came after {gap2:.3f}s, configured 0.7s"
    backoff = d.events("program.backoff", program="crasher")[0]
    assert backoff["restart_in_s"] == 0.7 and backoff["attempt"] == 2


def test_crash_loop_goes_fatal_and_run_exits_1(run_daemon) -> None:
    """A program that exhausts its restart budget is fatal, and run exits 1 saying which and why."""
    d = run_daemon(f"""
[programs.steady]
command = {program("sleeper")}
[programs.crasher]
command = {program("crasher")}
restart = {{ backoff = {{ initial = "10ms", max = "50ms" }}, max_restarts = 3, window = "1m" }}
""")
    assert d.wait_exit() == 1
    last = d.events()[-1]  # the very last line names the program and the reason
    assert last["event"] == "supervisor.gave_up" and last["exit_code"] == 1
    assert "crasher" in last["why"] and "more than 3 restarts" in last["why"]
    assert len(d.events("program.started", program="crasher")) == 4


def test_on_fatal_stay_keeps_the_others_running(run_daemon) -> None:
    """With on_fatal = stay, a fatal program does not stop the daemon or its siblings."""
    d = run_daemon(f"""
[supervisor]
on_fatal = "stay"
[programs.steady]
command = {program("sleeper")}
[programs.crasher]
command = {program("crasher")}
restart = {{ backoff = {{ initial = "10ms" }}, max_restarts = 1 }}
""")
    d.wait_unit("crasher", state="fatal")
    d.wait_unit("steady", state="running")
    assert d.proc.poll() is None


def test_sigterm_stops_in_reverse_dependency_order_and_exits_0(run_daemon) -> None:
    """SIGTERM stops dependants before what they depend on, then run exits 0."""
    d = run_daemon(f"""
[programs.db]
command = {program("sleeper")}
[programs.app]
command = {program("sleeper")}
depends_on = ["db"]
[programs.edge]
command = {program("sleeper")}
depends_on = ["app"]
""")
    d.wait_ready()
    pids = [d.unit(n)["pid"] for n in ("db", "app", "edge")]
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    stopped = [e["program"] for e in d.events("program.stopped")]
    assert stopped == ["edge", "app", "db"]
    started = [e["program"] for e in d.events("program.started")]
    assert started == ["db", "app", "edge"]
    assert not any(alive(p) for p in pids)


def test_unrelated_branches_stop_side_by_side(run_daemon) -> None:
    """A slow ladder on one branch holds up only what that branch needs, not an unrelated program."""
    d = run_daemon(f"""
[supervisor]
shutdown_timeout = "20s"
[programs.base]
command = {program("sleeper")}
[programs.slow]
command = {program("ignores_sigterm")}
depends_on = ["base"]
stop_timeout = "3s"
[programs.other_base]
command = {program("sleeper")}
[programs.other]
command = {program("sleeper")}
depends_on = ["other_base"]
""")
    d.wait_ready()
    d.wait_event("program.output", program="slow")
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    order = [e["program"] for e in d.events() if e.get("event") in ("program.stopped", "program.kill")]
    # other_base no longer waits behind slow's ladder (the level above it); base still does.
    assert order.index("other_base") < order.index("slow"), order
    assert order.index("slow") < order.index("base"), order


def test_ignoring_sigterm_gets_sigkill_after_stop_timeout(run_daemon) -> None:
    """A child that ignores its stop signal is SIGKILLed once stop_timeout has passed."""
    d = run_daemon(f"""
[programs.stubborn]
command = {program("ignores_sigterm")}
stop_timeout = "500ms"
""")
    d.wait_event("program.output", program="stubborn")
    pid = d.unit("stubborn")["pid"]
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    took = time.monotonic() - began
    kill = d.events("program.kill", program="stubborn")
    assert kill and kill[0]["after_s"] == 0.5
    assert 0.4 < took < 10
    assert not alive(pid)


def test_grandchild_leaves_no_zombie_and_no_survivor(run_daemon, tmp_path: Path) -> None:
    """A child that forks a grandchild and exits leaves neither a zombie nor a live grandchild."""
    pidfile = tmp_path / "grandchild.pid"
    d = run_daemon(f"""
[programs.forker]
command = {program("forks_grandchild", pidfile, 0.3)}
restart = {{ policy = "never" }}
""")
    d.wait_unit("forker", state="exited")
    grandchild = int(pidfile.read_text())
    wait_until(lambda: not alive(grandchild), 5, f"grandchild {grandchild} to be gone")
    wait_until(
        lambda: not programs_of(d.proc.pid),
        5,
        "no child of the supervisor, zombie or not, but its guard",
        seen=lambda: [(c.pid, c.status()) for c in programs_of(d.proc.pid)],
    )


def test_orphans_reparented_to_us_are_reaped(run_daemon, tmp_path: Path) -> None:
    """A grandchild whose parent exits re-parents to the supervisor (subreaper) and is reaped."""
    script = (
        "import os,sys,time\n"
        "if os.fork()==0:\n os.setsid()\n time.sleep(0.5)\n os._exit(0)\n"
        "time.sleep(0.1)\nsys.exit(0)\n"
    )
    (tmp_path / "orphaner.py").write_text(script)
    d = run_daemon(f"""
[programs.orphaner]
command = ["{PY}", "{tmp_path / "orphaner.py"}"]
restart = {{ policy = "never" }}
""")
    d.wait_unit("orphaner", state="exited")
    wait_until(
        lambda: not programs_of(d.proc.pid),
        10,
        "the orphan to be reaped",
        seen=lambda: [(c.pid, c.status()) for c in programs_of(d.proc.pid)],
    )
    assert d.events("process.orphan_reaped"), "the orphan was not reaped by the supervisor"


def test_sigkill_of_the_supervisor_leaves_no_child(run_daemon) -> None:
    """Children get PDEATHSIG: a SIGKILLed supervisor leaves no child alive."""
    d = run_daemon(
        "".join(
            f"""
[programs.p{i}]
command = {program("ignores_sigterm")}
"""
            for i in range(3)
        )
    )
    d.wait_ready()
    pids = [d.unit(f"p{i}")["pid"] for i in range(3)]
    assert all(alive(p) for p in pids)
    d.proc.kill()
    d.proc.wait()
    wait_until(
        lambda: not any(alive(p) for p in pids),
        5,
        "every child to die with the supervisor",
        seen=lambda: [p for p in pids if alive(p)],
    )


def test_flooding_child_neither_blocks_nor_bloats_the_supervisor(run_daemon) -> None:
    """100 MB of output as fast as possible: the loop keeps answering and RSS stays bounded."""
    d = run_daemon(f"""
[programs.flood]
command = {program("flood", 100)}
[programs.steady]
command = {program("sleeper")}
""")
    d.wait_ready()
    supervisor = psutil.Process(d.proc.pid)
    peak = 0
    answers = 0
    deadline = time.monotonic() + 90
    while True:  # asked at least once, however soon the flood is over
        finished = d.events("program.output", program="flood", line="flood done")
        assert time.monotonic() < deadline, "the flood did not finish in 90s"
        began = time.monotonic()
        assert d.unit("steady")["state"] == "running"
        assert time.monotonic() - began < 5, "status took over 5s during the flood"
        answers += 1
        peak = max(peak, supervisor.memory_info().rss)
        if finished:
            break
    assert answers >= 1
    assert peak < 150 * 1024 * 1024, f"supervisor RSS peaked at {peak / 2**20:.0f} MB"
    code, doc = d.client.request("GET", "/v1/programs/flood/logs?lines=5")
    assert code == 200 and doc["lines"][-1]["line"] == "flood done"


def test_memory_hog_is_restarted_with_reason_memory(run_daemon) -> None:
    """A program whose tree goes over max_memory is restarted gracefully with reason memory."""
    d = run_daemon(f"""
[programs.hog]
command = {program("memory_hog", 120)}
max_memory = "60MB"
memory_interval = "200ms"
min_uptime = 0
restart = {{ backoff = {{ initial = "100ms" }} }}
""")
    d.wait_event("program.memory_exceeded", program="hog")
    unit = d.wait_unit("hog", state="running", restarts=1)
    assert unit["last_exit"]["reason"] == "memory"


def test_spawn_failure_is_reported_and_goes_fatal(run_daemon, tmp_path: Path) -> None:
    """A command that cannot be executed is reported clearly and ends fatal, not in a tight loop."""
    # `run` refuses a missing executable up front (exit 78): this one goes away after its first start.
    ghost, flag = tmp_path / "ghost", tmp_path / "flag"
    ghost.write_text(f"#!/bin/sh\nwhile [ ! -e {flag} ]; do sleep 0.05; done\nexit 1\n")
    ghost.chmod(0o755)
    d = run_daemon(f"""
[supervisor]
on_fatal = "stay"
[programs.ghost]
command = ["{ghost}"]
restart = {{ backoff = {{ initial = "10ms" }}, max_restarts = 2 }}
""")
    d.wait_unit("ghost", state="running")
    ghost.unlink()
    flag.touch()
    unit = d.wait_unit("ghost", state="fatal")
    assert "No such file" in unit["error"] or "not found" in unit["error"]


def test_environment_is_clean_and_configured(run_daemon, tmp_path: Path) -> None:
    """Children get the configured environment, never NOTIFY_SOCKET, WATCHDOG_* or LISTEN_*."""
    out = tmp_path / "env.txt"
    d = run_daemon(
        f"""
[programs.env]
command = ["sh", "-c", "env > {out}; exec sleep 100"]
environment = {{ GREETING = "hello" }}
""",
        env={"WATCHDOG_USEC": "1000", "LISTEN_FDS": "4", "NOTIFY_SOCKET": "/nowhere"},
    )
    d.wait_ready()
    wait_until(lambda: out.exists() and out.read_text(), 5, "the child to dump its environment")
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["GREETING"] == "hello"
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"} & env.keys()


def test_user_drop_when_root(run_daemon, tmp_path: Path) -> None:
    """user = "nobody" runs the child as nobody when the supervisor is root."""
    if os.geteuid() != 0:
        import pytest

        pytest.skip("needs root to drop privileges")
    d = run_daemon("""
[programs.nobody]
command = ["sleep", "100"]
user = "nobody"
""")
    d.wait_ready()
    pid = d.unit("nobody")["pid"]
    # The spawn goes through setpriv, which drops privileges and then execs: wait for the drop.
    uid = lambda: psutil.Process(pid).uids().real  # noqa: E731
    wait_until(lambda: uid() == 65534, 10, f"{pid} to run as nobody (65534)", seen=uid)


def test_second_sigint_kills_at_once(run_daemon) -> None:
    """A second SIGINT during a slow shutdown kills everything at once."""
    d = run_daemon(f"""
[programs.stubborn]
command = {program("ignores_sigterm")}
stop_timeout = "60s"
""")
    d.wait_event("program.output", program="stubborn")
    pid = d.unit("stubborn")["pid"]
    d.signal(signal.SIGINT)
    d.wait_event("program.stopping", program="stubborn")
    d.signal(signal.SIGINT)
    assert d.wait_exit(timeout=10) == 0
    assert d.events("supervisor.kill_now")
    assert not alive(pid)


def _ts(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_shutdown_timeout_bounds_the_whole_shutdown(run_daemon) -> None:
    """A ladder longer than shutdown_timeout is cut short: what is left is killed, and run exits 0."""
    d = run_daemon(f"""
[supervisor]
shutdown_timeout = "1s"
[programs.stubborn]
command = {program("ignores_sigterm")}
stop_timeout = "60s"
""")
    d.wait_event("program.output", program="stubborn")
    pid = d.unit("stubborn")["pid"]
    began = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(timeout=30) == 0
    assert time.monotonic() - began < 15, "the 60 s ladder was not cut at shutdown_timeout"
    assert d.events("supervisor.shutdown_timeout")
    assert not alive(pid)
