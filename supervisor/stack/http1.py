"""One HTTP/1.1 request over h11 whose whole answer is its status code: http health checks, alert webhooks."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from supervisor.host import tls


class HTTPFailed(Exception):
    """The URL is not http(s), or the server closed the connection or did not answer with HTTP."""


async def request_status(
    url: str,
    method: str,
    user_agent: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> int:
    """Send one request (``Connection: close``) to ``url`` and return the response's status code.

    Unbounded in time: the caller bounds it, and a cancellation closes the connection.
    """
    import h11

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPFailed(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    context = tls.module().create_default_context() if parts.scheme == "https" else None
    # Host carries the port when the URL names one (RFC 9110 7.2), as a virtual host may need it.
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    headers = [("Host", host), ("User-Agent", user_agent), ("Connection", "close")]
    if body is not None:
        headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        conn = h11.Connection(h11.CLIENT)
        out = conn.send(h11.Request(method=method, target=target, headers=headers))
        if body is not None:
            out += conn.send(h11.Data(data=body))
        writer.write(out + conn.send(h11.EndOfMessage()))
        await writer.drain()
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                return int(event.status_code)
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:  # said plainly: h11 would call it a protocol error
                    raise HTTPFailed("the connection closed before a response")
                conn.receive_data(data)
    except h11.RemoteProtocolError as exc:
        raise HTTPFailed(f"not HTTP: {exc}") from None
    finally:
        writer.close()
