"""``[supervisor] drain``: after SIGTERM not ready at once, programs serving for the drain, then the shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import PY, free_port, program, wait_until


def get(url: str) -> int:
    """GET ``url``; return the status code (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def web(drain: str, port: int) -> str:
    return f"""
[supervisor]
drain = "{drain}"

[programs.web]
command = {program("http_ok", port)}
min_uptime = 0
"""


def test_sigterm_turns_readyz_503_at_once_and_programs_serve_until_the_drain_is_over(run_daemon) -> None:
    """During the drain /readyz is 503 and says draining, the program still answers, and the exit comes after it."""
    port = free_port()
    d = run_daemon(web("3s", port))
    d.wait_ready()
    readyz = f"http://127.0.0.1:{d.http_port}/readyz"
    wait_until(lambda: get(f"http://127.0.0.1:{port}/") == 200, 10, "web to serve", seen=d.tail)
    assert get(readyz) == 200
    sent_at = time.monotonic()
    d.signal(signal.SIGTERM)
    wait_until(lambda: get(readyz) == 503, 1, "/readyz to fail at once", seen=d.tail)
    reasons = json.load(urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/healthz"))
    assert reasons["state"] == "draining"  # /healthz still 200: the loop is alive
    assert d.status()["supervisor"]["ready"] is False and d.unit("web")["state"] == "running"
    served = 0
    while time.monotonic() - sent_at < 2.0:  # well inside the 3 s drain
        assert get(f"http://127.0.0.1:{port}/") == 200, "web stopped serving during the drain"
        served += 1
    assert d.wait_exit() == 0
    took = time.monotonic() - sent_at
    assert took >= 2.9, f"exited {took:.1f}s after SIGTERM, inside the 3 s drain"
    assert served > 0 and d.events("supervisor.drained") and d.events("supervisor.draining", drain_s=3.0)


def test_a_second_sigterm_skips_the_rest_of_the_drain(run_daemon) -> None:
    """A minute of drain, and a second SIGTERM stops at once."""
    d = run_daemon(web("60s", free_port()))
    d.wait_ready()
    d.signal(signal.SIGTERM)
    d.wait_event("supervisor.draining")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(timeout=20) == 0
    assert d.events("supervisor.drain_skipped", why="second SIGTERM")


def test_sigint_and_a_zero_drain_stop_without_waiting(run_daemon) -> None:
    """Ctrl-C (SIGINT) does not drain, and neither does SIGTERM with the default drain of 0."""
    for config, sig in ((web("60s", free_port()), signal.SIGINT), (web("0s", free_port()), signal.SIGTERM)):
        d = run_daemon(config)
        d.wait_ready()
        d.signal(sig)
        assert d.wait_exit(timeout=20) == 0
        assert not d.events("supervisor.draining")


def test_notify_says_draining_then_stopping(run_daemon, tmp_path: Path) -> None:
    """Under a service manager, STATUS=draining goes out at SIGTERM, STOPPING=1 once the shutdown begins."""
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(10)
    try:
        d = run_daemon(web("1s", free_port()), env={"NOTIFY_SOCKET": path})
        messages = [listener.recv(4096).decode()]
        while "READY=1" not in messages[-1]:
            messages.append(listener.recv(4096).decode())
        d.signal(signal.SIGTERM)
        while "STOPPING=1" not in messages[-1]:
            messages.append(listener.recv(4096).decode())
        draining = next(i for i, m in enumerate(messages) if "STATUS=draining" in m)
        assert "STOPPING=1" not in messages[draining], messages
        assert messages[draining + 1 :] == ["STOPPING=1\nSTATUS=stopping"], messages  # nothing says running again
        assert d.wait_exit() == 0
    finally:
        listener.close()


def test_a_program_giving_up_ends_the_drain_and_operators_are_refused_meanwhile(run_daemon) -> None:
    """During a drain `stop` is refused (409, exit 1); a program that goes fatal ends the drain, and run exits 1."""
    d = run_daemon(f"""
[supervisor]
drain = "60s"

[programs.web]
command = {program("sleeper")}
restart = {{ max_restarts = 0 }}
""")
    d.wait_ready()
    pid = d.unit("web")["pid"]
    d.signal(signal.SIGTERM)
    d.wait_event("supervisor.draining")
    refused = subprocess.run(
        [PY, "-m", "supervisor", "stop", "web", "--socket", d.socket], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "draining" in refused.stderr + refused.stdout, refused
    os.kill(pid, signal.SIGKILL)  # its budget is 0: fatal at once, and on_fatal = "exit" gives up
    assert d.wait_exit(timeout=20) == 1
    (skipped,) = d.events("supervisor.drain_skipped")
    assert skipped["why"].startswith("gave up: program web is fatal"), skipped


def test_a_sighup_during_the_drain_is_refused_in_the_log(run_daemon) -> None:
    """SIGHUP (systemctl reload) while draining changes nothing and says so, instead of vanishing in silence."""
    d = run_daemon(web("60s", free_port()))
    d.wait_ready()
    d.signal(signal.SIGTERM)
    d.wait_event("supervisor.draining")
    d.signal(signal.SIGHUP)
    refused = d.wait_event("config.reload_refused")
    assert refused["why"] == "the supervisor is draining", refused
    assert not d.events("config.reloaded")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(timeout=20) == 0
