"""A blocking client for the control socket: standard library only, so ``status`` starts fast."""

from __future__ import annotations

import http.client
import json
import os
import socket
import tomllib
from collections.abc import Iterator
from typing import Any

from supervisor.interpolation import default_socket, interpolate

DEFAULT_CONFIG = "conf/supervisor.toml"


class Unreachable(Exception):
    """Nothing answers on the control socket."""


class BadConfig(Exception):
    """The configuration file the socket should come from cannot be read (exit 78)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


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
        raise BadConfig(f"{path} (from {origin}): file not found") from None
    except OSError as exc:
        raise BadConfig(f"{path} (from {origin}): cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadConfig(f"{path} (from {origin}): not valid TOML: {exc}") from None
    table = raw.get("supervisor", {})
    value = table.get("socket") if isinstance(table, dict) else None
    if value is None:
        return default_socket(), f"the built-in default ({path} names no socket)"
    if not isinstance(value, str):
        raise BadConfig(f"{path}: supervisor.socket: a path is a string (got {value!r})")
    problems: list[tuple[str, str]] = []
    value = os.path.expanduser(interpolate(value, os.environ, "supervisor.socket", problems))
    if problems:
        raise BadConfig("; ".join(f"{path}: {key}: {what}" for key, what in problems))
    # os.path, not pathlib: `status` is a hot command and pathlib costs milliseconds to import.
    resolved = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(path)), value))
    return resolved, path


class Client:
    """Requests to the daemon's control API; ``keep`` reuses one connection (for ``--watch``)."""

    def __init__(self, path: str, timeout: float = 30.0, origin: str = "", keep: bool = False) -> None:
        self.path = path
        self.origin = origin
        self.timeout = timeout
        self.keep = keep
        self._conn: _UnixConnection | None = None

    def unreachable(self, exc: OSError | http.client.HTTPException) -> Unreachable:
        """Build the message that names the path, where it came from, and how to point elsewhere."""
        where = f" (from {self.origin})" if self.origin else ""
        if isinstance(exc, FileNotFoundError | ConnectionRefusedError | PermissionError):
            what = f"cannot reach the supervisor at {self.path}{where}: {exc.strerror}"
        else:
            what = f"the supervisor at {self.path}{where} did not answer: {exc or type(exc).__name__}"
        return Unreachable(
            f"{what}\n  is it running? Point at its socket with --socket PATH or SUPERVISOR_SOCKET=PATH."
        )

    def _open(self, method: str, target: str, body: bytes | None) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        headers = {"Content-Type": "application/json"} if body else {}
        if method == "POST" and not body:
            headers["Content-Length"] = "0"
        reused, self._conn = self._conn, None
        if reused is not None:
            try:
                reused.request(method, target, body=body, headers=headers)
                return reused, reused.getresponse()
            except (OSError, http.client.HTTPException):
                reused.close()  # the daemon closed an idle kept connection: open a fresh one
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self.unreachable(exc) from None

    def request(self, method: str, target: str, body: Any = None) -> tuple[int, Any]:
        """Send one request (``body`` as JSON); return the status and the decoded JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        conn, resp = self._open(method, target, data)
        try:
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self._conn = None
            raise self.unreachable(exc) from None
        if self.keep and not resp.will_close:
            self._conn = conn
        else:
            conn.close()
            self._conn = None
        try:
            return resp.status, json.loads(raw or b"null")
        except ValueError:
            return resp.status, {"error": raw.decode(errors="replace")}

    def close(self) -> None:
        """Close a kept connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stream(self, target: str) -> Iterator[Any]:
        """Yield the JSON document, then every JSON line that follows it."""
        conn = _UnixConnection(self.path, None)  # following waits as long as the operator does
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
            for raw in resp:
                line = raw.strip()
                if line:
                    yield 200, json.loads(line)
        finally:
            conn.close()
