"""HTTP/1.1 (h11) on the control socket and on the optional TCP address.

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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import h11

from supervisor import timeline
from supervisor.config.models import parse_address
from supervisor.control import actions, logstream
from supervisor.status import problems

if TYPE_CHECKING:
    from supervisor.daemon import Daemon

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64


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
    """Serves the control API on a Unix socket and health/metrics on TCP."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.path = daemon.cfg.supervisor.socket
        self.group = daemon.cfg.supervisor.group
        self.http = daemon.cfg.supervisor.http
        self._servers: list[asyncio.AbstractServer] = []
        self._connections = 0
        self._gid: int | None = None

    async def start(self) -> None:
        """Bind both sockets; refuse when another supervisor owns the control socket."""
        await claim_socket(self.path, self.daemon.log)
        directory = os.path.dirname(self.path) or "."
        created = not os.path.isdir(directory)
        # A directory we create is private (or open to `group` only): the socket is not the
        # only line of defence, and nobody else can squat its name in a shared /tmp.
        os.makedirs(directory, mode=0o750 if self.group else 0o700, exist_ok=True)
        if created and self.group:
            os.chown(directory, -1, grp.getgrnam(self.group).gr_gid)
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
            host, port = parse_address(self.http)
            self._servers.append(await asyncio.start_server(self._tcp_client, host, port, limit=MAX_HEADER_BYTES))

    async def close(self) -> None:
        """Stop serving and remove the socket file."""
        for server in self._servers:
            server.close()
        self._servers.clear()
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
        if not self._peer_allowed(writer):
            await self._serve(reader, writer, lambda method, target, body: _forbidden())
            return
        await self._serve(reader, writer, self._control_route)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve(reader, writer, self._tcp_route)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        route: Callable[[str, str, bytes], Awaitable[Response]],
    ) -> None:
        if self._connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        try:
            while True:
                try:
                    request, body = await asyncio.wait_for(_read_request(conn, reader), REQUEST_TIMEOUT_S)
                except h11.RemoteProtocolError as exc:
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        await _send(conn, writer, _error(exc.error_status_hint, f"bad request: {exc}"), close=True)
                    return
                except BodyTooLarge:
                    await _send(conn, writer, _error(413, f"body over {MAX_BODY_BYTES} bytes"), close=True)
                    return
                if request is None:
                    return
                response = await route(request.method.decode(), request.target.decode(errors="replace"), body)
                keep = conn.their_http_version == b"1.1" and not _wants_close(request) and response.stream is None
                await _send(conn, writer, response, close=not keep)
                if not keep or conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (TimeoutError, ConnectionError, h11.LocalProtocolError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # the daemon is exiting; this task is the top of its connection
        finally:
            self._connections -= 1
            writer.close()

    # ---- routes ---------------------------------------------------------------------

    async def _control_route(self, method: str, target: str, body: bytes) -> Response:
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] != ["v1"]:
            return _error(404, f"unknown path {url.path}")
        parts = parts[1:]
        if parts == ["status"]:
            # ?rss=0 skips the process-table pass: `status --watch` shows no RSS, and asks often.
            rss_pass = parse_qs(url.query).get("rss", ["1"])[0] not in ("0", "false")
            return Response(200, self.daemon.status(rss_pass)) if method == "GET" else _error(405, "use GET")
        if parts == ["reload"]:
            if method != "POST":
                return _error(405, "use POST")
            code, doc = await actions.reload(self.daemon)
            return Response(code, doc)
        if len(parts) == 3 and parts[0] == "programs" and parts[2] in ("start", "stop", "restart"):
            if method != "POST":
                return _error(405, "use POST")
            code, doc = await actions.program(self.daemon, parts[1], parts[2])
            return Response(code, doc)
        if parts == ["timeline"]:
            return Response(200, self._timeline()) if method == "GET" else _error(405, "use GET")
        if parts == ["logs"]:
            if method != "GET":
                return _error(405, "use GET")
            query = parse_qs(url.query)
            try:
                lines = max(0, min(int(query.get("lines", ["100"])[0]), 100_000))
            except ValueError:
                return _error(400, "lines must be a whole number")
            names = [n for value in query.get("name", []) for n in value.split(",") if n]
            code, doc = logstream.tail(self.daemon, names, lines)
            if code != 200 or query.get("follow", ["0"])[0] not in ("1", "true"):
                return Response(code, doc)
            return Response(
                200,
                doc,
                stream=lambda send: logstream.follow(self.daemon, names, send),
                content_type="application/x-ndjson",
            )
        if len(parts) == 3 and parts[0] == "programs" and parts[2] == "signal":
            if method != "POST":
                return _error(405, "use POST")
            code, doc = await actions.send_signal(self.daemon, parts[1], body)
            return Response(code, doc)
        if len(parts) == 3 and parts[0] == "programs" and parts[2] == "logs":
            if method != "GET":
                return _error(405, "use GET")
            query = parse_qs(url.query)
            try:
                lines = int(query.get("lines", ["100"])[0])
            except ValueError:
                return _error(400, "lines must be a whole number")
            follow = query.get("follow", ["0"])[0] in ("1", "true")
            code, doc, buffer = actions.logs(self.daemon, parts[1], max(0, min(lines, 100_000)))
            if code != 200 or not follow or buffer is None:
                return Response(code, doc)
            return Response(
                200, doc, stream=lambda send: actions.follow(buffer, send), content_type="application/x-ndjson"
            )
        return _error(404, f"unknown path {url.path}")

    def _timeline(self) -> dict[str, Any]:
        daemon = self.daemon
        units = [(n, u.kind, list(getattr(u.cfg, "depends_on", []))) for n, u in daemon.units.items()]
        return timeline.document(daemon.timeline, units, daemon.clock.now() - daemon.started_at)

    async def _tcp_route(self, method: str, target: str, body: bytes) -> Response:
        path = urlsplit(target).path
        if method not in ("GET", "HEAD"):
            return _error(405, "the TCP side is read-only")
        if path == "/healthz":
            return Response(200, {"status": "ok", "state": self.daemon.state})
        if path == "/readyz":
            issues = problems(self.daemon.status())
            if self.daemon.state != "running":
                issues.insert(0, f"supervisor is {self.daemon.state}")
            return Response(503, {"ready": False, "reasons": issues}) if issues else Response(200, {"ready": True})
        if path == "/metrics" and self.daemon.metrics is not None:
            data, content_type = self.daemon.metrics.render()
            return Response(200, data, content_type=content_type)
        return _error(404, f"unknown path {path}")


class BodyTooLarge(Exception):
    """The request body is over ``MAX_BODY_BYTES``."""


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request | None, bytes]:
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
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
            if len(body) > MAX_BODY_BYTES:
                raise BodyTooLarge()
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, b""


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response, close: bool) -> None:
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


def _wants_close(request: h11.Request) -> bool:
    return any(k.lower() == b"connection" and v.lower() == b"close" for k, v in request.headers)


async def _forbidden() -> Response:
    return _error(403, "this user may not control the supervisor")


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
