"""Probes against real servers report (ok, detail, elapsed), and name what went wrong."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from supervisor.stack import probes
from tests.conftest import PY, free_port, wait_until
from tests.conftest import program as program_command
from tests.integration.conftest import ADMIN_URL, REDIS_URL, Proxy, server_port, with_port

pytestmark = pytest.mark.integration


def run(probe: probes.Probe) -> probes.ProbeResult:
    return asyncio.run(probe())


def test_postgres_select_1_and_primary() -> None:
    """A reachable Postgres answers SELECT 1; a primary is not in recovery."""
    assert run(probes.postgres(ADMIN_URL, 3)).ok
    result = run(probes.postgres(ADMIN_URL, 3, primary=True))
    assert result.ok and result.detail == "primary"


def test_postgres_refused_and_bad_database_are_described() -> None:
    """A refused connection and an unknown database come back with libpq's words."""
    refused = run(probes.postgres(with_port(ADMIN_URL, free_port()), 3))
    assert not refused.ok and "refused" in refused.detail.lower()
    missing = run(probes.postgres(ADMIN_URL.rsplit("/", 1)[0] + "/no_such_db_here", 3))
    assert not missing.ok and "no_such_db_here" in missing.detail


def test_redis_ping_and_refused() -> None:
    """A reachable Redis answers PONG; a closed port does not."""
    assert run(probes.redis(REDIS_URL, 10)) == probes.ProbeResult(True, "PONG", pytest.approx(0, abs=10))
    assert not run(probes.redis(with_port(REDIS_URL, free_port()), 2)).ok


def test_redis_still_loading_is_not_ready() -> None:
    """A server answering -LOADING is reported not ready (a fake: the real one must stay untouched)."""

    async def scenario() -> probes.ProbeResult:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(1024):
                writer.write(b"-LOADING Redis is loading the dataset in memory\r\n")
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await probes.redis(f"redis://127.0.0.1:{port}/0", 2)()

    result = asyncio.run(scenario())
    assert not result.ok and result.detail.startswith("LOADING")


def test_http_and_tcp_probes() -> None:
    """http counts any 2xx as healthy and names the status otherwise; tcp only connects."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204 if self.path == "/ok" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert run(probes.http(f"http://127.0.0.1:{port}/ok", 2)).ok
        bad = run(probes.http(f"http://127.0.0.1:{port}/boom", 2))
        assert not bad.ok and bad.detail == "HTTP 500"
        assert run(probes.tcp(f"127.0.0.1:{port}", 2)).ok
    finally:
        server.shutdown()
    assert not run(probes.tcp(f"127.0.0.1:{free_port()}", 2)).ok


class Misbehaving:
    """A TCP server on a free port, in a thread, that either never answers or answers garbage."""

    def __init__(self, garbage: bytes | None) -> None:
        self.garbage = garbage
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)  # held open, never read: a silent peer
            if self.garbage is not None:
                try:
                    conn.sendall(self.garbage)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture(params=[None, b"\x00\xffnot a protocol at all\r\n" * 64], ids=["silent", "garbage"])
def misbehaving(request: pytest.FixtureRequest) -> Iterator[Misbehaving]:
    """A server that accepts and never answers, or one that sends garbage."""
    server = Misbehaving(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("kind", ["postgres", "redis", "http"])
def test_a_misbehaving_server_is_a_failed_probe_in_time(misbehaving: Misbehaving, kind: str) -> None:
    """Silence or garbage on the wire gives a failed probe with a reason, within the probe's timeout."""
    url = {
        "postgres": f"postgresql://u@127.0.0.1:{misbehaving.port}/db",
        "redis": f"redis://127.0.0.1:{misbehaving.port}/0",
        "http": f"http://127.0.0.1:{misbehaving.port}/livez",
    }[kind]
    probe = {"postgres": probes.postgres, "redis": probes.redis, "http": probes.http}[kind](url, 1.0)
    started = time.monotonic()
    result = run(probe)
    assert not result.ok and result.detail
    assert time.monotonic() - started < 5


def test_a_url_the_client_library_rejects_is_a_failed_probe() -> None:
    """A probe handed a URL its library refuses reports that, instead of raising."""
    result = run(probes.redis("127.0.0.1:6379", 1.0))
    assert not result.ok and "scheme" in result.detail
    result = run(probes.http("127.0.0.1:8000/livez", 1.0))
    assert not result.ok and "not an http(s) URL" in result.detail


def wait_cli(tmp_path: Path, dependency: str, timeout_s: str = "2") -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `supervisor wait --timeout` on one dependency; return its result and how long it took."""
    conf = tmp_path / "wait.toml"
    conf.write_text(f'[supervisor]\nsocket = "{tmp_path}/s.sock"\nlog_format = "json"\n{dependency}')
    started = time.monotonic()
    out = subprocess.run(
        [PY, "-m", "supervisor", "wait", "--config", str(conf), "--timeout", timeout_s],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out, time.monotonic() - started


@pytest.mark.parametrize("kind", ["postgres", "redis", "http", "tcp"])
def test_wait_returns_in_time_whatever_the_server_does(tmp_path: Path, misbehaving: Misbehaving, kind: str) -> None:
    """`wait --timeout 2` gives up with 69 on time against a silent or a garbage server."""
    url = {
        "postgres": f"postgresql://u@127.0.0.1:{misbehaving.port}/db",
        "redis": f"redis://127.0.0.1:{misbehaving.port}/0",
        "http": f"http://127.0.0.1:{misbehaving.port}/",
        "tcp": f"127.0.0.1:{misbehaving.port}",
    }[kind]
    out, took_s = wait_cli(tmp_path, f'[dependencies.dep]\ntype = "{kind}"\nurl = "{url}"\nprobe_timeout = "30s"\n')
    if kind == "tcp":  # a tcp dependency only connects, so anything that accepts is ready
        assert out.returncode == 0, out.stdout[-2000:]
        return
    assert out.returncode == 69, out.stdout[-2000:]
    assert "dependency.timed_out" in out.stdout
    # Well under the probe's own 30 s, whatever the machine's load (start-up of the interpreter included).
    assert took_s < 2 + 18


def test_wait_refuses_a_url_without_its_scheme(tmp_path: Path) -> None:
    """A Redis URL without redis:// is a configuration error (78) naming the key, not a hang."""
    out, _ = wait_cli(tmp_path, '[dependencies.cache]\ntype = "redis"\nurl = "127.0.0.1:6379"\n')
    assert out.returncode == 78
    assert "dependencies.cache.url" in out.stderr and "redis://" in out.stderr


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_probe_keeps_one_connection_and_reconnects_after_a_cut(proxy: type[Proxy], kind: str) -> None:
    """Checks reuse one connection; once the server side drops it, the next check connects afresh and passes."""
    real = ADMIN_URL if kind == "postgres" else REDIS_URL
    p = proxy(server_port(real, 5432 if kind == "postgres" else 6379))
    p.open()
    probe = (probes.postgres if kind == "postgres" else probes.redis)(with_port(real, p.port), 2.0)

    async def scenario() -> list[probes.ProbeResult]:
        results = [await probe() for _ in range(3)]
        p.close()  # the server went away: every live connection is cut
        results.append(await probe())
        p.open()
        results.append(await probe())
        return results

    results = asyncio.run(scenario())
    assert [r.ok for r in results] == [True, True, True, False, True], results
    assert p.accepted == 2  # one for the first three checks, one after the cut


def test_redis_probe_sends_auth_and_select_from_the_url() -> None:
    """A password and a database number in the URL become AUTH and SELECT before the PING."""
    seen: list[bytes] = []

    async def scenario() -> probes.ProbeResult:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(1024):
                seen.append(data)
                writer.write(b"+PONG\r\n" if b"PING" in data else b"+OK\r\n")
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await probes.redis(f"redis://app:s%40cret@127.0.0.1:{port}/3", 2)()

    result = asyncio.run(scenario())
    assert result.ok and result.detail == "PONG"
    sent = b"".join(seen)
    assert b"$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\ns@cret\r\n" in sent and b"$6\r\nSELECT\r\n$1\r\n3\r\n" in sent


def watched(kind: str, port: int) -> str:
    """A configuration whose one dependency is re-probed only every minute once ready."""
    url = with_port(ADMIN_URL if kind == "postgres" else REDIS_URL, port)
    return (
        f'[dependencies.dep]\ntype = "{kind}"\nurl = "{url}"\ninterval = "0.2s"\nready_interval = "60s"\n'
        f'[programs.app]\ncommand = {program_command("sleeper")}\ndepends_on = ["dep"]\n'
    )


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_ready_dependency_notices_its_connection_ending_before_the_next_probe(
    run_daemon, proxy: type[Proxy], kind: str
) -> None:
    """A minute between probes, yet a server that ends the kept connection is seen at once, and an outage too."""
    p = proxy(server_port(ADMIN_URL if kind == "postgres" else REDIS_URL, 5432 if kind == "postgres" else 6379))
    p.open()
    d = run_daemon(watched(kind, p.port))
    d.wait_ready()
    assert d.unit("dep")["state"] == "ready" and p.accepted == 1
    p.cut_live()  # the server ends the session (a terminated backend, an idle timeout): it reconnects at once
    wait_until(lambda: p.accepted == 2, 10, "a fresh connection long before the next probe is due", seen=d.tail)
    d.wait_event("dependency.connection_stirred")
    assert d.unit("dep")["state"] == "ready"
    p.close()  # now the server goes away: unavailable within the 0.2 s interval, not the 60 s one
    wait_until(lambda: d.unit("dep")["state"] == "unavailable", 10, "the outage to be noticed", seen=d.tail)
