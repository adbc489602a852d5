"""The one HTTP/1.1 request behind http health checks and alert webhooks, against a real loopback server."""

from __future__ import annotations

import asyncio

import pytest

from supervisor.stack.http1 import HTTPFailed, request_status


async def _serve(answer: bytes, seen: list[bytes]) -> tuple[asyncio.Server, int]:
    """A server that reads one request (head and body), records it, writes ``answer`` and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        seen.append(head + await reader.readexactly(length))
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_post_sends_its_body_and_names_the_port_in_host() -> None:
    """The body arrives whole with its length and type; Host carries the URL's port; the status comes back."""

    async def scenario() -> tuple[int, bytes]:
        seen: list[bytes] = []
        server, port = await _serve(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", seen)
        async with server:
            code = await request_status(f"http://127.0.0.1:{port}/hook?x=1", "POST", "ua-test", b'{"a": 1}')
        return code, seen[0] + f"|{port}".encode()

    code, seen = asyncio.run(scenario())
    request, port = seen.rsplit(b"|", 1)
    assert code == 202
    assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\n"), request
    assert b"host: 127.0.0.1:" + port + b"\r\n" in request.lower(), request
    assert b"content-type: application/json" in request.lower() and request.endswith(b'\r\n\r\n{"a": 1}'), request


@pytest.mark.parametrize(
    ("answer", "said"),
    [(b"", "closed before a response"), (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP")],
    ids=["closed", "garbage"],
)
def test_a_server_that_does_not_answer_http_is_a_clear_failure(answer: bytes, said: str) -> None:
    """A close before the status line, or bytes that are not HTTP, raise HTTPFailed saying which."""

    async def scenario() -> None:
        server, port = await _serve(answer, [])
        async with server:
            await request_status(f"http://127.0.0.1:{port}/", "GET", "ua-test")

    with pytest.raises(HTTPFailed, match=said):
        asyncio.run(scenario())


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///nohost", "not a url"])
def test_a_url_that_is_not_http_is_refused_before_any_connection(url: str) -> None:
    with pytest.raises(HTTPFailed, match="is not an http"):
        asyncio.run(request_status(url, "GET", "ua-test"))
