"""One HTTP/1.1 connection (h11), bounded in size and time, within its listener's budget.

Each listener (the Unix socket, the TCP address) has a budget of its own, so a flood on the
TCP side never keeps an operator out. A connection must send a whole request head within
``header_timeout``; when a budget is full, the oldest idle connection (one waiting for a
request head) is closed to make room, so idle connections never keep a new probe out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import h11

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
REQUEST_TIMEOUT_S = 10.0  # a whole request, once its head is in
HEADER_TIMEOUT_S = 2.0
UNIX_BUDGET = 64
TCP_BUDGET = 4096  # 2,000 idle connections fit: a flood churns only when header_timeout ends them
EVICTED_REPORT_S = 10.0  # at most one control.connections_evicted per listener in this time

Response = Any  # server.Response: named here without importing the module that imports this one
Route = Callable[[str, str, bytes], Awaitable[Response]]
Send = Callable[["h11.Connection", asyncio.StreamWriter, Response, bool], Awaitable[None]]


class Slot:
    """One live connection: whether it waits for a request head, and how to close it."""

    __slots__ = ("idle", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.idle = True


class Budget:
    """The live connections of one listener, at most ``limit``; room is made by closing the oldest idle one."""

    def __init__(self, listener: str, limit: int, log: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.listener = listener
        self.limit = limit
        self.log = log
        self.loop = loop
        self.evicted_total = 0
        self.refused_total = 0
        self._slots: dict[Slot, None] = {}  # in order of arrival: the first idle one is the oldest
        self._unreported = 0
        self._report: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._slots)

    def admit(self, writer: asyncio.StreamWriter) -> Slot | None:
        """Take a new connection, closing the oldest idle one when full; None when all are busy."""
        if len(self._slots) >= self.limit:
            victim = next((s for s in self._slots if s.idle), None)
            if victim is None:
                self.refused_total += 1
                return None
            self.release(victim)
            victim.writer.transport.abort()  # its task sees the connection gone and ends
            self._evicted()
        slot = Slot(writer)
        self._slots[slot] = None
        return slot

    def release(self, slot: Slot) -> None:
        """The connection is over."""
        self._slots.pop(slot, None)

    def _evicted(self) -> None:
        self.evicted_total += 1
        self._unreported += 1
        if self._report is None:  # the first of a window is told at once, the rest at its end
            self._flush()

    def _flush(self) -> None:
        self._report = None
        if not self._unreported:
            return
        self.log.warning(
            "control.connections_evicted",
            listener=self.listener,
            evicted=self._unreported,
            total=self.evicted_total,
            budget=self.limit,
            hint="idle connections fill this listener's budget: the oldest idle ones are closed to make room",
        )
        self._unreported = 0
        self._report = self.loop.call_later(EVICTED_REPORT_S, self._flush)

    def close(self) -> None:
        """Stop the report timer (the server is closing)."""
        if self._report is not None:
            self._report.cancel()
            self._report = None


ACCEPT_QUEUE = 4096  # the kernel's queue: a new probe's SYN waits there instead of being dropped
ACCEPT_BATCH = 32  # connections accepted per wake-up, so a flood's burst cannot hold up the loop


async def start_tcp(
    client: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], host: str, port: int, limit: int
) -> asyncio.AbstractServer:
    """Serve ``client`` on TCP: a deep accept queue, taken from a few connections at a time.

    asyncio accepts as many connections per wake-up as the listen backlog: the socket is
    listened on again with the deep queue once asyncio has started it with the small batch.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, exc.strerror, f"{host}:{port}") from None  # the socket's bind names its path
    server = await asyncio.start_server(client, sock=sock, limit=limit, backlog=ACCEPT_BATCH)
    sock.listen(ACCEPT_QUEUE)
    return server


class BodyTooLarge(Exception):
    """The request body is over ``MAX_BODY_BYTES``."""


async def serve(
    budget: Budget,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    route: Route,
    send: Send,
    error: Callable[[int, str], Response],
    header_timeout: float,
) -> None:
    """Answer requests on one connection until it closes, errs, or is evicted."""
    slot = budget.admit(writer)
    if slot is None:
        writer.close()
        return
    import h11  # on the first connection, not before the first spawn (about 6 ms)

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        while True:
            slot.idle = True
            try:
                # Spread over the last half of header_timeout: a flood of idle connections opened
                # together is then not closed (and re-opened) together, in one burst of work.
                async with asyncio.timeout(header_timeout * random.uniform(0.5, 1.0)) as deadline:
                    request, body = await _read_request(conn, reader, slot, deadline)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    # A head over MAX_HEADER_BYTES: h11 hints 431; what was read is all we keep.
                    await send(conn, writer, error(exc.error_status_hint, f"bad request: {exc}"), True)
                return
            except BodyTooLarge:
                await send(conn, writer, error(413, f"body over {MAX_BODY_BYTES} bytes"), True)
                return
            if request is None:
                return
            response = await route(request.method.decode(), request.target.decode(errors="replace"), body)
            keep = conn.their_http_version == b"1.1" and not _wants_close(request) and response.stream is None
            await send(conn, writer, response, not keep)
            if not keep or conn.our_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (TimeoutError, ConnectionError, h11.LocalProtocolError, asyncio.IncompleteReadError):
        return
    except asyncio.CancelledError:
        return  # the daemon is exiting; this task is the top of its connection
    finally:
        budget.release(slot)
        writer.close()


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader, slot: Slot, deadline: asyncio.Timeout
) -> tuple[h11.Request | None, bytes]:
    import h11

    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and request is None and conn.their_state is h11.IDLE:
                return None, b""
            continue
        if isinstance(event, h11.Request):
            request = event
            slot.idle = False  # busy from here: never evicted mid-request
            deadline.reschedule(asyncio.get_running_loop().time() + REQUEST_TIMEOUT_S)
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
            if len(body) > MAX_BODY_BYTES:
                raise BodyTooLarge()
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, b""


def _wants_close(request: h11.Request) -> bool:
    return any(k.lower() == b"connection" and v.lower() == b"close" for k, v in request.headers)


def budgets(soft_limit: int, open_now: int) -> tuple[int, int]:
    """The (Unix, TCP) budgets that fit within the open-files limit, with room left for programs.

    Under a low limit the budgets shrink, so that a flood of idle connections meets the
    budget (the oldest idle one closed, the new one served) before the limit (accept failing).
    The room kept is an eighth of the limit, at least 64 (pipes and sockets of programs), and
    ``ACCEPT_BATCH``: that many connections are accepted before the first is admitted or not.
    """
    spare = soft_limit - open_now - max(64, soft_limit // 8) - ACCEPT_BATCH
    return max(4, min(UNIX_BUDGET, spare // 4)), max(4, min(TCP_BUDGET, spare * 3 // 4))


def raise_fd_limit(want: int = 8192) -> int:
    """Raise the soft limit on open files to ``want`` (within the hard limit); return the soft limit.

    The TCP budget (4,096 connections) needs the room; a soft limit of 1,024 is still common.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target
