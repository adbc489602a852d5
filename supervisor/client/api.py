"""A blocking client for the control socket: standard library only, so ``status`` starts fast."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from supervisor.config.interpolation import default_socket, interpolate

if TYPE_CHECKING:
    import http.client

DEFAULT_CONFIG = "conf/supervisor.toml"
MAX_HEAD_BYTES = 64 * 1024


class Unreachable(Exception):
    """Nothing answers on the control socket."""


SOCKET_HINT = "the socket is read from that file: --socket PATH or SUPERVISOR_SOCKET=PATH reaches a daemon without it"


class BadConfig(Exception):
    """The configuration file the socket should come from is missing or cannot be read (exit 78)."""


def find_socket(explicit: str | None, config: str | None) -> tuple[str, str]:
    """Return the socket path and where it came from.

    ``--socket``, else ``$SUPERVISOR_SOCKET``, else the configuration's ``[supervisor] socket``
    (the file from ``--config``, ``$SUPERVISOR_CONFIG`` or ``conf/supervisor.toml``), else the
    built-in default. A configuration file that is named but unreadable, or is not valid TOML,
    raises ``BadConfig``: it is never skipped in silence. Only the default file may be absent.
    """
    if explicit:
        return explicit, "--socket"
    if os.environ.get("SUPERVISOR_SOCKET"):
        return os.environ["SUPERVISOR_SOCKET"], "$SUPERVISOR_SOCKET"
    import tomllib  # only when the socket comes from a file: `status --socket` does without

    if config:
        path, origin = config, "--config"
    elif os.environ.get("SUPERVISOR_CONFIG"):
        path, origin = os.environ["SUPERVISOR_CONFIG"], "$SUPERVISOR_CONFIG"
    else:
        path, origin = DEFAULT_CONFIG, "the default configuration"
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        if origin == "the default configuration":
            return default_socket(), "the built-in default (no conf/supervisor.toml here)"
        where = os.path.join(os.getcwd(), path)  # a relative name is read from the working directory
        raise BadConfig(f"no configuration file at {where} (from {origin})") from None
    except OSError as exc:
        raise BadConfig(f"invalid configuration: {path} (from {origin}): cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadConfig(f"invalid configuration: {path} (from {origin}): not valid TOML: {exc}") from None
    table = raw.get("supervisor", {})
    value = table.get("socket") if isinstance(table, dict) else None
    if value is None:
        return default_socket(), f"the built-in default ({path} names no socket)"
    if not isinstance(value, str):
        raise BadConfig(f"invalid configuration: {path}: supervisor.socket: a path is a string (got {value!r})")
    problems: list[tuple[str, str]] = []
    value = os.path.expanduser(interpolate(value, os.environ, "supervisor.socket", problems))
    if problems:
        raise BadConfig("invalid configuration: " + "; ".join(f"{path}: {key}: {what}" for key, what in problems))
    # os.path, not pathlib: `status` is a hot command and pathlib costs milliseconds to import.
    resolved = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(path)), value))
    return resolved, path


class BadResponse(Exception):
    """The peer did not answer with a well-formed HTTP/1.1 response."""


def _read_head(sock: socket.socket, buf: bytes) -> tuple[int, dict[str, str], bytes]:
    """Read one response head; return the status, the headers (lower-case names) and what follows."""
    while True:
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEAD_BYTES:
                raise BadResponse(f"a response head over {MAX_HEAD_BYTES} bytes")
            chunk = sock.recv(65536)
            if not chunk:
                raise BadResponse(
                    "the connection closed before a whole response head"
                    if buf
                    else "it closed the connection without a word (did it stop?)"
                )
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, tail = lines[0].partition(" ")
        code = tail[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit() or tail[3:4] not in ("", " "):
            raise BadResponse(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise BadResponse(f"a malformed header line: {line[:80]!r}")
            headers[name.lower()] = value.strip()
        if not 100 <= int(code) < 200:
            return int(code), headers, rest
        buf = rest  # an interim 1xx response: the real one follows


def _read_exact(sock: socket.socket, buf: bytes, n: int) -> tuple[bytes, bytes]:
    """Return ``n`` bytes (from ``buf``, then the socket) and what is left over."""
    while len(buf) < n:
        chunk = sock.recv(max(65536, n - len(buf)))
        if not chunk:
            raise BadResponse(f"the body ended after {len(buf)} of {n} bytes")
        buf += chunk
    return buf[:n], buf[n:]


def _read_chunked(sock: socket.socket, buf: bytes) -> bytes:
    """Decode a chunked body (our server sends one only when streaming, but HTTP/1.1 allows it)."""
    body = b""
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise BadResponse("the chunked body ended early")
            buf += chunk
        size_line, _, buf = buf.partition(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse(f"a malformed chunk size: {size_text[:20]!r}") from None
        if size == 0:
            return body  # trailers, if any, are ignored: the connection is closed after this
        data, buf = _read_exact(sock, buf, size + 2)
        body += data[:-2]


def exchange(sock: socket.socket, method: str, target: str, body: bytes | None, close: bool) -> tuple[int, bytes, bool]:
    """Send one HTTP/1.1 request on ``sock``; return the status, the body, and whether it must close."""
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", "Accept: application/json"]
    if close:
        lines.append("Connection: close")
    if body is not None or method in ("POST", "PUT"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body or b'')}"]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
    status, headers, rest = _read_head(sock, b"")
    must_close = close or headers.get("connection", "").lower() == "close"
    if method == "HEAD" or status in (204, 304):
        return status, b"", must_close
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, _read_chunked(sock, rest), True
    length = headers.get("content-length")
    if length is None:  # delimited by the end of the connection
        while chunk := sock.recv(65536):
            rest += chunk
        return status, rest, True
    if not length.isdigit():
        raise BadResponse(f"a malformed Content-Length: {length[:20]!r}")
    data, extra = _read_exact(sock, rest, int(length))
    return status, data, must_close or bool(extra)


# How long a request may go unanswered. The verbs the daemon answers only once a program has
# settled (start, stop, restart, reload, scale) wait without a limit: the daemon bounds them by
# each program's stop ladder and start_timeout, which can be minutes.
TIMEOUT_S = 30.0


class Client:
    """Requests to the daemon's control API; ``keep`` reuses one connection (for ``--watch``).

    One request is a few lines of HTTP/1.1 on a Unix socket, read back by its Content-Length:
    ``status`` then needs neither ``http.client`` nor the ``email`` package it imports.
    """

    def __init__(self, path: str, timeout: float | None = TIMEOUT_S, origin: str = "", keep: bool = False) -> None:
        self.path = path
        self.origin = origin
        self.timeout = timeout
        self.keep = keep
        self._sock: socket.socket | None = None

    def unreachable(self, exc: Exception) -> Unreachable:
        """Build the message that names the path, where it came from, and how to point elsewhere."""
        where = f" (from {self.origin})" if self.origin else ""
        if isinstance(exc, FileNotFoundError | ConnectionRefusedError | PermissionError):
            what = f"cannot reach the supervisor at {self.path}{where}: {exc.strerror}"
        else:
            what = f"the supervisor at {self.path}{where} did not answer: {exc or type(exc).__name__}"
        return Unreachable(
            f"{what}\n  is it running? Point at its socket with --socket PATH or SUPERVISOR_SOCKET=PATH."
        )

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def request(self, method: str, target: str, body: Any = None) -> tuple[int, Any]:
        """Send one request (``body`` as JSON); return the status and the decoded JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        reused, self._sock = self._sock, None
        result: tuple[int, bytes, bool] | None = None
        if reused is not None:
            try:
                result = exchange(reused, method, target, data, close=False)
                sock = reused
            except (OSError, BadResponse):
                reused.close()  # the daemon closed an idle kept connection: open a fresh one
        if result is None:
            try:
                sock = self._connect()
            except OSError as exc:
                raise self.unreachable(exc) from None
            try:
                result = exchange(sock, method, target, data, close=not self.keep)
            except (OSError, BadResponse) as exc:
                sock.close()
                raise self.unreachable(exc) from None
        status, raw, must_close = result
        if self.keep and not must_close:
            self._sock = sock
        else:
            sock.close()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, {"error": raw.decode(errors="replace")}

    def close(self) -> None:
        """Close a kept connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def stream(self, target: str) -> Iterator[Any]:
        """Yield the JSON document, then every JSON line that follows it (``logs -f``)."""
        import http.client  # a chunked stream of lines: worth the real implementation

        conn = _unix_connection(http.client, self.path)
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self.unreachable(exc) from None
        try:
            if resp.status != 200:
                yield resp.status, json.loads(resp.read() or b"null")
                return
            try:
                for raw in resp:
                    line = raw.strip()
                    if line:
                        yield 200, json.loads(line)
            except (OSError, http.client.HTTPException):
                return  # the daemon went away mid-stream: the caller says so
        finally:
            conn.close()


def _unix_connection(module: Any, path: str) -> http.client.HTTPConnection:
    """Return an ``http.client`` connection to a Unix socket, with no timeout (following waits)."""

    class UnixConnection(module.HTTPConnection):  # type: ignore[misc]
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            self.sock = sock

    conn: http.client.HTTPConnection = UnixConnection("localhost", timeout=None)
    return conn
