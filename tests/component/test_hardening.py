"""What one program does never becomes the daemon's problem: odd exits, reloads, holds, slow readers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from tests.conftest import PY, alive, free_port, program, wait_until


def test_autostart_false_stays_stopped_and_does_not_hold_back_readiness(run_daemon) -> None:
    """A program with autostart = false is stopped after start-up, ready holds, and start runs it."""
    d = run_daemon(f"""
[programs.main]
command = {program("sleeper")}
min_uptime = 0
[programs.manual]
command = {program("sleeper")}
autostart = false
""")
    doc = d.wait_ready()
    manual = next(u for u in doc["units"] if u["name"] == "manual")
    assert manual["state"] == "stopped" and manual["pid"] is None
    code, _ = d.client.request("POST", "/v1/programs/manual/start")
    assert code == 200
    d.wait_unit("manual", state="running")


def test_a_child_killed_by_a_real_time_signal_leaves_status_answering(run_daemon) -> None:
    """kill -35 of a child: status answers with the signal's name, and the daemon logs no traceback."""
    d = run_daemon(f"""
[programs.rt]
command = {program("sleeper")}
min_uptime = 0
""")
    pid = d.wait_unit("rt", state="running")["pid"]
    os.kill(pid, signal.SIGRTMIN + 1)
    unit = wait_until(lambda: (u := d.unit("rt"))["last_exit"] and u, 10, "the exit to show", seen=d.tail)
    assert unit["last_exit"]["signal"] == "SIGRTMIN+1"
    assert "Traceback" not in d.log_path.read_text()


def test_a_reload_whose_listen_address_is_taken_refuses_that_program_only(run_daemon) -> None:
    """A reload that cannot bind a new listen address keeps the daemon and the program as they were."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = free_port()
    d = run_daemon(f"""
[programs.web]
command = {program("http_ok")}
listen = "127.0.0.1:{port}"
min_uptime = 0
[programs.other]
command = {program("sleeper")}
min_uptime = 0
""")
    pid = d.wait_unit("web", state="running")["pid"]
    d.config.write_text(d.config.read_text().replace(str(port), str(taken.getsockname()[1])))
    d.signal(signal.SIGHUP)
    event = d.wait_event("config.reloaded")
    assert "web" in event["failed"] and "cannot bind" in event["failed"]["web"]
    assert d.proc.poll() is None and d.unit("web")["pid"] == pid and d.unit("other")["state"] == "running"
    taken.close()


def test_an_operator_stop_survives_a_reload_that_changes_the_program(run_daemon) -> None:
    """After stop and an edit to the program, SIGHUP leaves it stopped."""
    d = run_daemon(f"""
[programs.a]
command = {program("sleeper")}
min_uptime = 0
""")
    d.wait_unit("a", state="running")
    assert d.client.request("POST", "/v1/programs/a/stop")[0] == 200
    d.config.write_text(d.config.read_text().replace("min_uptime = 0", "min_uptime = 0\nenvironment = { X = '1' }"))
    d.signal(signal.SIGHUP)
    d.wait_event("config.reloaded", changed=["a"])
    assert d.unit("a")["state"] == "stopped"


def test_a_predecessors_heartbeat_never_makes_a_new_process_healthy(run_daemon, tmp_path: Path) -> None:
    """A fresh heartbeat file written before the incarnation started does not count for it."""
    beat = tmp_path / "beat"
    beat.write_text("")  # fresh, but older than the process
    d = run_daemon(f"""
[programs.w]
command = {program("sleeper")}
health = {{ file = "{beat}", max_age = "60s", interval = "200ms", failure_threshold = 100 }}
""")
    failed = wait_until(
        lambda: len(e := d.events("program.health_failed", program="w")) >= 3 and e,
        15,
        "three failed checks",
        seen=d.tail,
    )
    assert all("before this incarnation started" in e["detail"] for e in failed)
    assert d.unit("w")["state"] == "starting"
    beat.touch()
    d.wait_unit("w", state="running", health="healthy")


def test_a_listen_socket_refuses_connections_until_its_program_first_starts(run_daemon) -> None:
    """Before the program's first start, a client is refused at once instead of left hanging."""
    port = free_port()
    d = run_daemon(f"""
[dependencies.never]
type = "tcp"
url = "127.0.0.1:{free_port()}"
interval = "100ms"
timeout = "1h"
[programs.web]
command = {program("http_ok")}
listen = "127.0.0.1:{port}"
depends_on = ["never"]
""")
    d.wait_unit("web", state="pending")
    started = time.monotonic()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    assert refused and time.monotonic() - started < 1


def test_a_dependant_starts_only_after_its_dependency_stayed_up_min_uptime(run_daemon) -> None:
    """depends_on waits for running: the dependency stayed up min_uptime before the dependant spawns."""
    d = run_daemon(f"""
[programs.a]
command = {program("sleeper")}
min_uptime = "700ms"
[programs.b]
command = {program("sleeper")}
depends_on = ["a"]
min_uptime = 0
""")
    d.wait_unit("b", state="running")
    a = d.events("program.started", program="a")[0]
    b = d.events("program.started", program="b")[0]
    assert _ts(b["timestamp"]) - _ts(a["timestamp"]) >= 0.65


def test_the_stop_signal_goes_to_the_main_process_and_sigkill_to_the_group(run_daemon, tmp_path: Path) -> None:
    """By default the stop signal reaches only the main process; the rest of the group gets SIGKILL at the end."""
    record = tmp_path / "sig"
    d = run_daemon(f"""
[programs.p]
command = {program("records_signals", record, "child")}
stop_timeout = "500ms"
min_uptime = 0
""")
    d.wait_unit("p", state="running")
    child_pid = int(wait_until(lambda: _read(Path(f"{record}.child.pid")), 10, "the child's pid file"))
    assert d.client.request("POST", "/v1/programs/p/stop")[0] == 200
    wait_until(lambda: not alive(child_pid), 10, "the child to be gone")
    assert _read(record).split() == ["SIGTERM"]
    assert _read(Path(f"{record}.child")) == ""


def test_stop_group_and_a_two_rung_ladder(run_daemon, tmp_path: Path) -> None:
    """stop_group sends each rung to the whole group; the ladder goes TERM, then QUIT, then SIGKILL."""
    record = tmp_path / "sig"
    d = run_daemon(f"""
[programs.p]
command = {program("records_signals", record, "child")}
stop_signal = ["SIGTERM", "SIGQUIT"]
stop_timeout = ["1s", "1s"]  # room for the handler to record each rung before the next one comes
stop_group = true
min_uptime = 0
""")
    d.wait_unit("p", state="running")
    wait_until(lambda: _read(Path(f"{record}.child.pid")), 10, "the child's pid file")
    assert d.client.request("POST", "/v1/programs/p/stop")[0] == 200
    assert _read(record).split() == ["SIGTERM", "SIGQUIT"]
    assert _read(Path(f"{record}.child")).split() == ["SIGTERM", "SIGQUIT"]
    assert d.events("program.kill", program="p")


def test_sigcont_follows_each_stop_rung_to_the_whole_group(run_daemon, tmp_path: Path) -> None:
    """A SIGSTOPped group still stops: after each rung's signal to the main process, SIGCONT goes to the group."""
    record = tmp_path / "sig"
    d = run_daemon(f"""
[programs.p]
command = {program("records_signals", record, "child", "cont")}
stop_signal = ["SIGTERM", "SIGQUIT"]
stop_timeout = ["1s", "1s"]
min_uptime = 0
stack_dump = false
""")
    pid = d.wait_unit("p", state="running")["pid"]
    child_pid = int(wait_until(lambda: _read(Path(f"{record}.child.pid")), 10, "the child's pid file"))
    os.killpg(pid, signal.SIGSTOP)
    stopped = lambda: all(psutil.Process(p).status() == psutil.STATUS_STOPPED for p in (pid, child_pid))  # noqa: E731
    wait_until(stopped, 10, "the group to be stopped")
    assert d.client.request("POST", "/v1/programs/p/stop")[0] == 200
    d.wait_unit("p", state="stopped")
    # Each rung: its signal to the main process alone, then SIGCONT to the group (the child sees only those).
    # No stack dump at the end (stack_dump = false): its own SIGCONT would come on top.
    assert sorted(_read(record).split()) == ["SIGCONT", "SIGCONT", "SIGQUIT", "SIGTERM"]
    assert _read(Path(f"{record}.child")).split() == ["SIGCONT", "SIGCONT"]
    assert d.events("program.kill", program="p")


def test_a_success_exit_code_and_a_no_restart_exit_code(run_daemon, tmp_path: Path) -> None:
    """An exit in success_exit_codes stays exited under on-failure; exit 78 is fatal at once and run exits 1."""
    termination = tmp_path / "termination-log"
    termination.write_text("")  # as Kubernetes provides it
    ok = run_daemon(f"""
[programs.done]
command = {program("crasher", 3)}
restart = {{ policy = "on-failure", success_exit_codes = [3] }}
""")
    unit = ok.wait_unit("done", state="exited")
    assert unit["last_exit"]["code"] == 3 and unit["restarts"] == 0
    d = run_daemon(
        f"""
[programs.broken]
command = {program("crasher", 78)}
restart = {{ max_restarts = 100 }}
""",
        env={"SUPERVISOR_TERMINATION_LOG": str(termination)},
    )
    assert d.wait_exit() == 1
    last = d.events()[-1]
    assert last["event"] == "supervisor.gave_up" and "broken" in last["why"] and "78" in last["why"]
    assert len(d.events("program.started", program="broken")) == 1
    assert "broken" in termination.read_text()


def test_a_reader_that_never_reads_does_not_stall_the_daemon(tmp_path: Path) -> None:
    """With stdout a pipe nobody reads, status keeps answering, lines are dropped and counted, then reported."""
    config = tmp_path / "s.toml"
    sock = tmp_path / "s.sock"
    config.write_text(f"""
[supervisor]
socket = "{sock}"
http = ""
log_format = "json"
[programs.flood]
command = {program("flood", 20)}
min_uptime = 0
restart = {{ policy = "never" }}
""")
    proc = subprocess.Popen([PY, "-m", "supervisor", "run", "--config", str(config)], stdout=subprocess.PIPE)
    try:
        # 20 MB of output while nobody reads: the daemon keeps taking it in and keeps answering.
        done = lambda: (_last_line(sock, "flood") or "").endswith("flood done")  # noqa: E731
        wait_until(done, 60, "the whole flood to be taken in")
        assert _status(sock, "flood") == "running"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [json.loads(line) for line in out.splitlines() if line.startswith(b"{")]
    dropped = [e for e in events if e.get("event") == "log.dropped"]
    assert dropped and dropped[0]["lines"] > 0
    assert proc.returncode == 0


def _status(sock: Path, name: str) -> str | None:
    out = subprocess.run(
        [PY, "-m", "supervisor", "status", "--json", "--socket", str(sock)], capture_output=True, timeout=10
    )
    if not out.stdout:
        return None
    doc = json.loads(out.stdout)
    return next((u["state"] for u in doc["units"] if u["name"] == name), None)


def _last_line(sock: Path, name: str) -> str | None:
    out = subprocess.run(
        [PY, "-m", "supervisor", "logs", name, "-n", "1", "--socket", str(sock)], capture_output=True, timeout=10
    )
    return out.stdout.decode().strip() or None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
