"""POST one JSON document to a webhook and return its status: alerts to Slack, a pager, a chat."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from supervisor.host import tls


class WebhookFailed(Exception):
    """The webhook could not be reached, or did not answer with HTTP."""


async def post_json(url: str, body: bytes) -> int:
    """POST ``body`` (JSON) to ``url`` over h11 and return the response's status code.

    Unbounded in time: the caller bounds it, and a cancellation closes the connection.
    """
    import h11

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookFailed(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    context = tls.module().create_default_context() if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        conn = h11.Connection(h11.CLIENT)
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        headers = [
            ("Host", host),
            ("User-Agent", "stack-supervisor-alert"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
        writer.write(
            conn.send(h11.Request(method="POST", target=target, headers=headers))
            + conn.send(h11.Data(data=body))
            + conn.send(h11.EndOfMessage())
        )
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Response):
                return int(event.status_code)
            if isinstance(event, h11.ConnectionClosed):
                raise WebhookFailed("the connection closed before a response")
    except h11.RemoteProtocolError as exc:
        raise WebhookFailed(f"not HTTP: {exc}") from None
    finally:
        writer.close()
