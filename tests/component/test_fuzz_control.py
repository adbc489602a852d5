"""Malformed requests never disturb supervision: 4xx or a closed connection, nothing more."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import program

REQUEST_LINES = st.sampled_from(
    [
        b"GET /v1/status HTTP/1.1",
        b"POST /v1/programs/steady/stop HTTP/1.1",
        b"GET /v1/../../etc HTTP/1.1",
        b"BREW /v1/status HTTP/1.1",
        b"GET /v1/programs/%00/logs?lines=-5 HTTP/1.1",
        b"GET / HTTP/9.9",
        b"POST /v1/programs/steady/restart HTTP/1.0",
        b"GET /v1/programs/steady/logs?lines=abc HTTP/1.1",
    ]
)


def send_raw(path: str, payload: bytes) -> bytes:
    """Send bytes to the control socket; return whatever comes back before it closes or 2s pass."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(path)
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
        return b"".join(chunks) if "chunks" in locals() else b""


def test_garbage_oversized_and_bad_requests_leave_supervision_untouched(run_daemon) -> None:
    """Garbage, oversized headers, bad JSON and unknown paths get 4xx; the program keeps its pid."""
    d = run_daemon(f"""
[programs.steady]
command = {program("sleeper")}
""")
    d.wait_ready()
    pid = d.unit("steady")["pid"]
    statuses: list[int] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        line=REQUEST_LINES | st.binary(max_size=200),
        headers=st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=300)), max_size=8),
        body=st.binary(max_size=2000),
    )
    def fuzz(line: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        raw = line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n" + body
        answer = send_raw(d.socket, raw)
        if answer.startswith(b"HTTP/1.1 "):
            statuses.append(int(answer[9:12]))

    fuzz()
    big = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert send_raw(d.socket, big).startswith(b"HTTP/1.1 431")
    body = b"{not json" * 10_000
    huge = b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert send_raw(d.socket, huge).startswith(b"HTTP/1.1 413")
    assert any(400 <= s < 500 for s in statuses)
    # stop/restart from the fuzzer are legitimate requests: the program may have a new pid, but
    # it is running and the daemon still answers; unknown programs and methods did nothing.
    steady = d.wait_unit("steady", state="running")
    assert d.proc.poll() is None
    assert steady["pid"] == pid or steady["restarts"] >= 1
