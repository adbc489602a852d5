"""``[alerts.NAME]``: a fatal program reaches a person, and no alert can hold up or leak from the daemon."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import PY, program, wait_until


def documents(path: Path) -> list[dict[str, Any]]:
    """The JSON documents an alert command appended to ``path``, one a line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def appender(path: Path) -> str:
    """A command that appends its stdin (one JSON document) and a newline to ``path``."""
    return json.dumps(["sh", "-c", f'cat >> "{path}"; echo >> "{path}"'])


def status_time(socket_path: str) -> float:
    """Run `supervisor status --json`; return how long it took (it must answer)."""
    began = time.monotonic()
    out = subprocess.run([PY, "-m", "supervisor", "status", "--json", "--socket", socket_path], capture_output=True)
    assert out.returncode in (0, 1), out.stderr
    return time.monotonic() - began


def fd_targets(pid: int) -> list[str]:
    """What each file descriptor of process ``pid`` points at."""
    out = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    return out


def idle_fds(pid: int) -> list[str]:
    """The file descriptors of process ``pid`` once the same three reads in a row (a status request's is gone)."""
    reads: list[list[str]] = []

    def steady() -> list[str] | None:
        reads.append(fd_targets(pid))
        return reads[-1] if len(reads) >= 3 and reads[-1] == reads[-2] == reads[-3] else None

    return wait_until(steady, 10, "the daemon's fds to hold still", seen=lambda: reads[-3:], interval=0.2)


def test_a_crasher_going_fatal_delivers_one_document_with_its_last_lines(run_daemon, tmp_path: Path) -> None:
    """program.fatal reaches the command once, with the crasher's last lines; program.exited is rate-limited to one."""
    fatal, exits = tmp_path / "fatal.jsonl", tmp_path / "exits.jsonl"
    d = run_daemon(f"""
[supervisor]
on_fatal = "exit"

[programs.crasher]
command = {program("crasher")}
restart = {{ max_restarts = 2, window = "1m", backoff = {{ initial = "0.1s", max = "0.1s" }} }}

[alerts.page]
events = ["program.fatal"]
command = {appender(fatal)}
lines = 2

[alerts.exits]
events = ["program.exited"]
command = {appender(exits)}
min_interval = "1m"
""")
    assert d.wait_exit() == 1  # gave up: the alert still went out before the daemon did
    (doc,) = documents(fatal)
    assert doc["event"] == "program.fatal" and doc["unit"] == "crasher" and doc["alert"] == "page"
    assert doc["lines"] == ["crashing now", "crashing now"], doc
    assert "crasher" in doc["text"] and doc["fields"]["why"] and doc["host"] == socket.gethostname()
    assert len(d.events("program.exited")) == 3
    assert [e["event"] for e in documents(exits)] == ["program.exited"]  # the other two within min_interval
    assert d.events("supervisor.gave_up") and not d.events("alert.failed")


def test_a_hanging_alert_command_is_cut_at_5s_while_status_keeps_answering(run_daemon) -> None:
    """An alert command that never ends is killed after 5 s and logged as alert.failed; status answers meanwhile."""
    d = run_daemon(f"""
[programs.crasher]
command = {program("crasher")}
restart = {{ policy = "never" }}

[alerts.hang]
events = ["program.exited"]
command = ["sleep", "600"]
""")
    d.wait_event("program.exited")
    daemon = psutil.Process(d.proc.pid)
    hung = wait_until(
        lambda: [p for p in daemon.children() if p.name() == "sleep"], 5, "the alert command to run", seen=d.tail
    )
    started = time.monotonic()
    slowest = 0.0
    while not d.events("alert.failed"):
        slowest = max(slowest, status_time(d.socket))
        assert time.monotonic() - started < 15, d.tail()
    took = time.monotonic() - started
    failed = d.events("alert.failed")[-1]
    assert failed["alert"] == "hang" and "within 5s" in failed["error"], failed
    assert 3.0 < took < 10.0, f"cut after {took:.1f}s"
    assert slowest < 3.0, f"status took {slowest:.1f}s during the alert"
    wait_until(lambda: not hung[0].is_running() or hung[0].status() == "zombie", 5, "the alert command to be gone")


class Hook(BaseHTTPRequestHandler):
    """Records each POST's headers and body."""

    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[int, list[tuple[dict[str, str], bytes]]]]:
    """A local HTTP server that records what is posted to it; its port and the records."""
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("RecordingHook", (Hook,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def test_a_webhook_gets_the_json_document(run_daemon, hook: tuple[int, list[tuple[dict[str, str], bytes]]]) -> None:
    """A webhook alert POSTs the event's JSON document, with its last lines, to the URL."""
    port, received = hook
    d = run_daemon(f"""
[programs.crasher]
command = {program("crasher", 7)}
restart = {{ policy = "never" }}

[alerts.chat]
events = ["program.exited"]
webhook = "http://127.0.0.1:{port}/hooks/T000/B000?token=x"
""")
    d.wait_event("alert.sent", alert="chat")
    ((headers, body),) = received
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["event"] == "program.exited" and doc["unit"] == "crasher" and doc["fields"]["code"] == 7
    assert doc["lines"] == ["crashing now"] and doc["text"].startswith(socket.gethostname())


def test_a_webhook_that_never_answers_blocks_nothing_and_leaks_no_fd(run_daemon) -> None:
    """A port that accepts and never answers: status answers meanwhile, alert.failed after 5 s, fds as before."""
    silent = socket.create_server(("127.0.0.1", 0), backlog=8)  # the kernel accepts; nobody ever answers
    try:
        d = run_daemon(f"""
[programs.crasher]
command = {program("crasher")}
restart = {{ policy = "never" }}
autostart = false

# Spawned first, so that what a daemon opens once for its children (the guard's pipe) is in the count before.
[programs.steady]
command = {program("sleeper")}

[alerts.chat]
events = ["program.exited"]
webhook = "http://127.0.0.1:{silent.getsockname()[1]}/hook"
""")
        d.wait_ready()
        before = idle_fds(d.proc.pid)
        subprocess.run([PY, "-m", "supervisor", "start", "crasher", "--socket", d.socket], capture_output=True)
        started = time.monotonic()
        slowest = 0.0
        while not d.events("alert.failed"):
            slowest = max(slowest, status_time(d.socket))
            assert time.monotonic() - started < 15, d.tail()
        assert "no answer within 5s" in d.events("alert.failed")[-1]["error"]
        assert slowest < 3.0, f"status took {slowest:.1f}s during the alert"
        assert idle_fds(d.proc.pid) == before  # the same descriptors, socket for socket: none leaked
    finally:
        silent.close()
