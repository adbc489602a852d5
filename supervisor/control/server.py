"""HTTP/1.1 (h11) for a ``ControlTarget``: the control API on a Unix socket, health and metrics on TCP.

Every request is bounded in size and time; whatever a client sends, the
worst it gets is a 4xx and a closed connection, and supervision never notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import stat
import struct
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from supervisor.control import connections
from supervisor.control.connections import HEADER_TIMEOUT_S, MAX_HEADER_BYTES, TCP_BUDGET, Budget
from supervisor.control.protocol import parse_signal, scale_request
from supervisor.control.readyz import readyz
from supervisor.engine.target import ControlTarget, LogRow, Refused, Verb
from supervisor.host.looperrors import RAISE_FD_LIMIT, open_fds
from supervisor.host.socketlock import make_directory

if TYPE_CHECKING:
    import h11

    from supervisor.control.metrics import Metrics


class AlreadyRunning(Exception):
    """Another supervisor answers on the control socket."""


class Response:
    """A status, a JSON (or text) body, and optionally a stream of chunks after it."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        content_type: str = "application/json",
        stream: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]] | None = None,
    ) -> None:
        self.status = status
        self.content_type = content_type
        if isinstance(body, bytes):
            self.body = body
        elif isinstance(body, str):
            self.body = body.encode()
        else:
            self.body = (json.dumps(body) + "\n").encode() if body is not None else b""
        self.stream = stream


def _error(status: int, message: str) -> Response:
    return Response(status, {"error": message})


def _refused(exc: Refused) -> Response:
    """Answer a request the target refused: its status, its reason, and the programs it names."""
    body: dict[str, Any] = {"error": str(exc)}
    if exc.programs is not None:
        body["programs"] = exc.programs
    return Response(exc.http_status, body)


async def claim_socket(path: str, log: Any) -> None:
    """Make ``path`` ours: refuse when another supervisor answers there; remove it when stale."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AlreadyRunning(f"{path} exists and is not a socket")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), 2.0)
    except (ConnectionRefusedError, FileNotFoundError, TimeoutError, OSError):
        os.unlink(path)  # stale: nobody answers
        log.info("control.stale_socket_removed", path=path)
        return
    writer.close()
    raise AlreadyRunning(f"another supervisor answers on {path}")


class ControlServer:
    """Serves a ``ControlTarget``: the control API on a Unix socket, health and metrics on TCP."""

    def __init__(
        self,
        target: ControlTarget,
        path: str,
        log: Any,
        group: str | None = None,
        http: tuple[str, int] | None = None,
        header_timeout: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.target = target
        self.header_timeout = header_timeout
        self.path = path
        self.log = log
        self.group = group
        self.http = http  # host and port of the read-only TCP side
        self.metrics: Metrics | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self.budgets: dict[str, Budget] = {}  # per listener: TCP clients never starve the socket
        self._gid: int | None = None

    async def start(self) -> None:
        """Bind both sockets; refuse when another supervisor owns the control socket."""
        await claim_socket(self.path, self.log)
        limit = connections.raise_fd_limit()
        unix, tcp = connections.budgets(limit, max(0, open_fds()))
        if tcp < TCP_BUDGET:
            self.log.warning("control.budgets_reduced", open_files_limit=limit, unix=unix, tcp=tcp, hint=RAISE_FD_LIMIT)
        loop = asyncio.get_running_loop()
        self.budgets = {"unix": Budget("unix", unix, self.log, loop), "tcp": Budget("tcp", tcp, self.log, loop)}
        make_directory(self.path, self.group)
        old = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            server = await asyncio.start_unix_server(self._unix_client, self.path, limit=MAX_HEADER_BYTES)
        finally:
            os.umask(old)
        self._servers.append(server)
        if self.group:
            self._gid = grp.getgrnam(self.group).gr_gid
            os.chown(self.path, -1, self._gid)
            os.chmod(self.path, 0o660)
        if self.http:
            host, port = self.http
            self._servers.append(await connections.start_tcp(self._tcp_client, host, port, MAX_HEADER_BYTES))

    async def close(self) -> None:
        """Stop serving and remove the socket file."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        for budget in self.budgets.values():
            budget.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # ---- connections ----------------------------------------------------------------

    def _peer_allowed(self, writer: asyncio.StreamWriter) -> bool:
        sock: socket.socket = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, gid = struct.unpack("3i", creds)
        if uid in (0, os.geteuid()):
            return True
        return self._gid is not None and (gid == self._gid or self._gid in os.getgrouplist(_user(uid), gid))

    async def _unix_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        route = self._control_route if self._peer_allowed(writer) else lambda method, target, body: _forbidden()
        await connections.serve(self.budgets["unix"], reader, writer, route, _send, _error, self.header_timeout)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connections.serve(
            self.budgets["tcp"], reader, writer, self._tcp_route, _send, _error, self.header_timeout
        )

    # ---- routes ---------------------------------------------------------------------

    async def _control_route(self, method: str, target: str, body: bytes) -> Response:
        try:
            return await self._control(method, target, body)
        except Refused as exc:
            return _refused(exc)

    async def _control(self, method: str, target: str, body: bytes) -> Response:
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] != ["v1"]:
            return _error(404, f"unknown path {url.path}")
        parts = parts[1:]
        query = parse_qs(url.query)
        if parts == ["status"]:
            # ?rss=0 skips the fresh RSS pass: the table shows the background sample's, and asks often.
            rss_pass = query.get("rss", ["1"])[0] not in ("0", "false")
            return Response(200, self.target.status(rss_pass)) if method == "GET" else _error(405, "use GET")
        if parts == ["reload"]:
            if method != "POST":
                return _error(405, "use POST")
            result = await self.target.reload()
            return Response(200 if result.get("ok") else 422, result)
        if len(parts) == 3 and parts[0] == "programs" and parts[2] in ("start", "stop", "restart"):
            if method != "POST":
                return _error(405, "use POST")
            return Response(200, {"programs": await self.target.act(parts[1], cast(Verb, parts[2]))})
        if parts == ["timeline"]:
            return Response(200, self.target.timeline()) if method == "GET" else _error(405, "use GET")
        if parts == ["logs"]:
            if method != "GET":
                return _error(405, "use GET")
            lines = _lines(query)
            if lines is None:
                return _error(400, "lines must be a whole number")
            names = [n for value in query.get("name", []) for n in value.split(",") if n]
            doc = self.target.tail_logs(names, lines)
            if not _follow(query):
                return Response(200, doc)
            rows = self.target.follow_logs(names)
            return Response(200, doc, stream=lambda send: _stream(rows, send, True), content_type=NDJSON)
        if len(parts) == 3 and parts[0] == "programs" and parts[2] in ("signal", "scale"):
            if method != "POST":
                return _error(405, "use POST")
            if parts[2] == "scale":  # {"instances": N}
                return Response(200, await self.target.scale(parts[1], scale_request(body)))
            request = _signal_request(body)
            if isinstance(request, Response):
                return request
            return Response(200, await self.target.send_signal(parts[1], *request))
        if len(parts) == 3 and parts[0] == "programs" and parts[2] == "logs":
            if method != "GET":
                return _error(405, "use GET")
            lines = _lines(query)
            if lines is None:
                return _error(400, "lines must be a whole number")
            tail = self.target.tail_logs([parts[1]], lines)  # NotFound names the units there are
            own = {"name": parts[1], "lines": [_unnamed(row) for row in tail["lines"]]}
            if not _follow(query):
                return Response(200, own)
            rows = self.target.follow_logs([parts[1]])
            return Response(200, own, stream=lambda send: _stream(rows, send, False), content_type=NDJSON)
        return _error(404, f"unknown path {url.path}")

    async def _tcp_route(self, method: str, target: str, body: bytes) -> Response:
        url = urlsplit(target)
        path = url.path
        if method not in ("GET", "HEAD"):
            return _error(405, "the TCP side is read-only")
        if path == "/healthz":
            return Response(200, {"status": "ok", "state": self.target.state})
        if path == "/readyz":
            return Response(*readyz(self.target.status(rss_pass=False), parse_qs(url.query)))
        if path == "/metrics" and self.http:
            if self.metrics is None:
                # prometheus-client (and the OpenSSL its exposition module loads, ~6 MB) only once scraped
                from supervisor.control.metrics import Metrics

                self.metrics = Metrics(self.target)
            data, content_type = self.metrics.render()
            return Response(200, data, content_type=content_type)
        return _error(404, f"unknown path {path}")


NDJSON = "application/x-ndjson"


def _lines(query: dict[str, list[str]]) -> int | None:
    """Return ``?lines=`` (default 100) within 0..100000, or None when it is not a whole number."""
    try:
        return max(0, min(int(query.get("lines", ["100"])[0]), 100_000))
    except ValueError:
        return None


def _follow(query: dict[str, list[str]]) -> bool:
    return query.get("follow", ["0"])[0] in ("1", "true")


def _unnamed(row: LogRow) -> dict[str, Any]:
    """One program's line as its own endpoint shows it: without the unit's name."""
    return {"time": row["time"], "stream": row["stream"], "line": row["line"]}


async def _stream(rows: AsyncGenerator[LogRow, None], send: Callable[[bytes], Awaitable[None]], named: bool) -> None:
    """Send each row as a JSON line until the client goes away; then stop following."""
    async with contextlib.aclosing(rows):
        try:
            async for row in rows:
                await send((json.dumps(row if named else _unnamed(row)) + "\n").encode())
        except (ConnectionError, RuntimeError):
            return


def _signal_request(body: bytes) -> tuple[int, bool] | Response:
    """Parse ``{"signal": "HUP", "group": false}``; a 400 response says what is wrong with it."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return _error(400, 'the body must be JSON: {"signal": "HUP", "group": false}')
    if not isinstance(request, dict):
        return _error(400, "the body must be a JSON object")
    sig = parse_signal(request.get("signal"))
    group = request.get("group", False)
    if sig is None or not isinstance(group, bool):
        what = "group must be true or false" if sig is not None else f"no such signal: {request.get('signal')!r}"
        return _error(400, what)
    return sig, group


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response, close: bool) -> None:
    import h11

    headers = [("Content-Type", response.content_type), ("Server", "supervisor")]
    if close:
        headers.append(("Connection", "close"))
    if response.stream is None:
        headers.append(("Content-Length", str(len(response.body))))
    writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
    if response.body:
        writer.write(conn.send(h11.Data(data=response.body)))
    await writer.drain()
    if response.stream is not None:

        async def send(chunk: bytes) -> None:
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()

        await response.stream(send)
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


async def _forbidden() -> Response:
    return _error(403, "this user may not control the supervisor")


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
