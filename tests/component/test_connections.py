"""Connections cannot lock anyone out: per-listener budgets, header_timeout, eviction of idle ones, 431."""

from __future__ import annotations

import socket
import time

import psutil

from supervisor.control.connections import TCP_BUDGET, UNIX_BUDGET
from tests.conftest import program, wait_until

CONFIG = f"""
[programs.sleeper]
command = {program("sleeper")}
"""


def healthz(port: int) -> bytes:
    """GET /healthz on a new connection; the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def idle(port: int, count: int) -> list[socket.socket]:
    """Open ``count`` TCP connections that send nothing."""
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def timed(call):  # type: ignore[no-untyped-def]
    began = time.monotonic()
    value = call()
    return value, time.monotonic() - began


def test_idle_tcp_connections_never_lock_out_the_socket_or_a_new_probe(run_daemon) -> None:
    """70 idle TCP connections (once enough to refuse everyone): status and a new /healthz still answer."""
    d = run_daemon(CONFIG)
    d.wait_ready()
    held = idle(d.http_port, 70)
    try:
        assert d.unit("sleeper")["state"] == "running"
        assert healthz(d.http_port).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()


def test_a_connection_without_a_request_head_is_closed_after_header_timeout(run_daemon) -> None:
    """A client that sends half a head and waits is cut off after header_timeout."""
    d = run_daemon('[supervisor]\nheader_timeout = "300ms"\n' + CONFIG)
    d.wait_ready()
    with socket.create_connection(("127.0.0.1", d.http_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        began = time.monotonic()
        assert s.recv(100) == b""  # closed, with no answer
        assert time.monotonic() - began < 5


def test_a_request_head_over_the_bound_gets_431_and_memory_stays_bounded(run_daemon) -> None:
    """A 1 MB request head: 431 (or a reset once the daemon has closed), and the daemon's RSS barely moves."""
    d = run_daemon(CONFIG)
    d.wait_ready()
    rss0 = psutil.Process(d.proc.pid).memory_info().rss
    for size in (100_000, 1_000_000):
        with socket.create_connection(("127.0.0.1", d.http_port), timeout=10) as s:
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
            answer = b""
            try:
                s.sendall(head)
                answer = s.recv(200)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if size == 100_000:
                assert answer.startswith(b"HTTP/1.1 431"), answer
    assert healthz(d.http_port).startswith(b"HTTP/1.1 200")
    grown = psutil.Process(d.proc.pid).memory_info().rss - rss0
    assert grown < 8 * 2**20, f"the daemon grew by {grown / 2**20:.1f} MiB"


def test_two_thousand_idle_connections_leave_healthz_and_status_answering(run_daemon) -> None:
    """2,000 idle TCP connections: /healthz on a new connection and status answer within 1 s; fds stay bounded."""
    d = run_daemon(CONFIG)
    d.wait_ready()
    held = idle(d.http_port, 2000)
    try:
        wait_until(lambda: psutil.Process(d.proc.pid).num_fds() > 1500, 10, "the daemon to take the connections in")
        answer, took = timed(lambda: healthz(d.http_port))
        assert answer.startswith(b"HTTP/1.1 200") and took < 1.0, (answer[:40], took)
        entry, took = timed(lambda: d.unit("sleeper"))
        assert entry["state"] == "running" and took < 1.0, took
        fds = psutil.Process(d.proc.pid).num_fds()
        assert fds < TCP_BUDGET + UNIX_BUDGET + 100, f"the daemon holds {fds} fds"
    finally:
        for s in held:
            s.close()


def test_a_full_tcp_budget_closes_the_oldest_idle_connection_and_says_so(run_daemon) -> None:
    """More idle connections than the TCP budget: the oldest are closed, one event says so, a probe still answers."""
    d = run_daemon('[supervisor]\nheader_timeout = "60s"\n' + CONFIG)  # only the budget closes them
    d.wait_ready()
    held = idle(d.http_port, TCP_BUDGET + 20)
    try:
        event = wait_until(lambda: d.events("control.connections_evicted", listener="tcp"), 10, "an eviction event")
        assert event[0]["budget"] == TCP_BUDGET
        assert held[0].recv(10) == b""  # the oldest was closed
        assert healthz(d.http_port).startswith(b"HTTP/1.1 200")
        assert d.unit("sleeper")["state"] == "running"
    finally:
        for s in held:
            s.close()
