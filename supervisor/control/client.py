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


class Unreachable(Exception):
    """Nothing answers on the control socket."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def find_socket(explicit: str | None, config: str | None) -> str:
    """Return the socket from ``--socket``, ``$SUPERVISOR_SOCKET``, or the configuration file."""
    if explicit:
        return explicit
    if os.environ.get("SUPERVISOR_SOCKET"):
        return os.environ["SUPERVISOR_SOCKET"]
    path = config or os.environ.get("SUPERVISOR_CONFIG") or "conf/supervisor.toml"
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return default_socket()
    value = raw.get("supervisor", {}).get("socket")
    if not isinstance(value, str):
        return default_socket()
    value = os.path.expanduser(interpolate(value, os.environ, "supervisor.socket", []))
    # os.path, not pathlib: `status` is a hot command and pathlib costs milliseconds to import.
    return os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(path)), value))


class Client:
    """One request per call to the daemon's control API."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def _open(self, method: str, target: str) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request(method, target, headers={"Content-Length": "0"} if method == "POST" else {})
            return conn, conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            conn.close()
            raise Unreachable(f"cannot reach the supervisor at {self.path}: {exc.strerror}") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Unreachable(f"the supervisor at {self.path} did not answer: {exc}") from None

    def request(self, method: str, target: str) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON body."""
        conn, resp = self._open(method, target)
        try:
            body = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(body or b"null")
        except ValueError:
            return resp.status, {"error": body.decode(errors="replace")}

    def stream(self, target: str) -> Iterator[Any]:
        """Yield the JSON document, then every JSON line that follows it."""
        conn = _UnixConnection(self.path, self.timeout)
        conn.timeout = None  # following waits as long as the operator does
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise Unreachable(f"cannot reach the supervisor at {self.path}: {exc.strerror}") from None
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
