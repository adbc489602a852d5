"""Start-first restarts under concurrent clients: nothing fails, nobody waits out a boot, nothing is left."""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psutil

from tests.conftest import alive, free_port, program, wait_until

BOOT_S = 1.5


def web(port: int, boot: object = BOOT_S, order: str = "start-first", start_timeout: float = BOOT_S * 3 + 2) -> str:
    """A slow-booting HTTP program behind ``listen``, ready by its own READY=1."""
    return f"""
[programs.web]
command = {program("slow_http", boot)}
listen = "127.0.0.1:{port}"
notify = true
start_timeout = "{start_timeout}s"
stop_timeout = "5s"
restart = {{ order = "{order}" }}
"""


@dataclass
class Load:
    """Clients that each open a new connection per request until stopped, keeping every outcome."""

    port: int
    clients: int = 4
    path: str = "/"
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    pids: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        deadline = time.monotonic() + 120  # bounded even if a test forgets to stop it
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.path}", timeout=10) as resp:
                    body = resp.read().decode()
                self.pids.add(body.split()[-1])
                self.latencies.append(time.monotonic() - started)
            except (OSError, urllib.error.URLError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")


def test_start_first_restarts_and_a_reload_fail_no_request_and_never_wait_out_the_boot(run_daemon) -> None:
    """Five restarts and a reload that changes the program lose no request, and no request waits BOOT_S."""
    port = free_port()
    d = run_daemon(web(port))
    d.wait_unit("web", state="running", timeout=30)
    with Load(port) as load:
        wait_until(lambda: len(load.latencies) > 20, 30, "requests to flow", seen=d.tail)
        for n in range(5):
            code, doc = d.client.request("POST", "/v1/programs/web/restart")
            assert code == 200, doc
            assert doc["programs"][0]["restarts"] == n + 1
        d.config.write_text(d.config.read_text().replace("[programs.web]", "[programs.web]\nenvironment = { V = '2' }"))
        d.signal(signal.SIGHUP)
        d.wait_unit("web", restarts=6, state="running", handover=None, timeout=30)
        served = len(load.latencies)
        wait_until(lambda: len(load.latencies) > served + 20, 30, "requests after the reload", seen=d.tail)
    assert load.failures == [], load.failures[:5]
    assert max(load.latencies) < BOOT_S, f"a request waited {max(load.latencies):.2f}s"
    assert len(load.pids) >= 7  # every incarnation served
    assert d.events("program.handover_done", program="web")


def test_stop_first_restart_makes_requests_wait_out_the_boot(run_daemon) -> None:
    """With stop-first, requests during a restart wait for the new incarnation's boot (the contrast)."""
    port = free_port()
    d = run_daemon(web(port, order="stop-first"))
    d.wait_unit("web", state="running", timeout=30)
    with Load(port, clients=2) as load:
        wait_until(lambda: len(load.latencies) > 5, 30, "requests to flow", seen=d.tail)
        code, _ = d.client.request("POST", "/v1/programs/web/restart")
        assert code == 200
        served = len(load.latencies)
        wait_until(lambda: len(load.latencies) > served + 5, 30, "requests after the restart", seen=d.tail)
    assert max(load.latencies) >= BOOT_S * 0.8


def test_a_candidate_that_never_gets_ready_leaves_the_old_one_serving(run_daemon) -> None:
    """A new incarnation without READY=1 is stopped at start_timeout, the old one serves on, the failure shows."""
    port = free_port()
    d = run_daemon(web(port, boot=0.2, start_timeout=2))
    old = d.wait_unit("web", state="running", timeout=30)["pid"]
    d.config.write_text(d.config.read_text().replace(program("slow_http", 0.2), program("slow_http", "never")))
    with Load(port, clients=2) as load:
        d.signal(signal.SIGHUP)
        d.wait_event("config.reloaded", changed=["web"])
        unit = d.wait_unit("web", handover=None, timeout=20)
        wait_until(lambda: not d.unit("web")["retiring"], 20, "the candidate to be gone", seen=d.tail)
    assert unit["pid"] == old and unit["state"] == "running"
    assert "not ready within 2s" in (unit["error"] or "")
    assert load.failures == [] and load.pids == {str(old)}
    assert d.events("program.handover_failed", program="web")
    code, doc = d.client.request("POST", "/v1/programs/web/restart")
    assert code == 409 and "not ready" in doc["error"]


def test_a_shutdown_during_a_handover_leaves_nothing_behind(run_daemon) -> None:
    """SIGTERM while a candidate boots stops both incarnations, and run exits 0 with no process left."""
    port = free_port()
    d = run_daemon(web(port, boot=3))
    old = d.wait_unit("web", state="running", timeout=30)["pid"]
    threading.Thread(target=d.client.request, args=("POST", "/v1/programs/web/restart"), daemon=True).start()
    candidate = wait_until(lambda: (d.unit("web")["handover"] or {}).get("pid"), 10, "a candidate", seen=d.tail)
    tree = [p.pid for p in psutil.Process(d.proc.pid).children(recursive=True)]
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    for pid in (old, candidate, *tree):
        wait_until(lambda pid=pid: not alive(pid), 5, f"pid {pid} to be gone")
