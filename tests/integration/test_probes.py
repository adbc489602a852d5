"""Probes against real servers report (ok, detail, elapsed), and name what went wrong."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from supervisor import probes
from tests.conftest import free_port
from tests.integration.conftest import ADMIN_URL, REDIS_URL, with_port

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
    assert run(probes.redis(REDIS_URL, 2)) == probes.ProbeResult(True, "PONG", pytest.approx(0, abs=2))
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
