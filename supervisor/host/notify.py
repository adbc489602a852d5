"""The notify protocol from both ends: the app's ``ready()``, and the daemon's listener.

A program with ``notify = true`` gets ``NOTIFY_SOCKET`` naming one datagram
socket of the daemon. The kernel stamps each datagram with the sender's pid
(``SO_PASSCRED``), so a message counts only for the incarnation that sent it,
never for an older one serving beside it. The app side is standard library only.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

_CREDS = struct.Struct("iII")  # struct ucred: pid, uid, gid


def ready(status: str | None = None) -> bool:
    """Tell the supervisor (or systemd) that this process is ready; a no-op without NOTIFY_SOCKET.

    Call it once the app serves, e.g. at the end of a FastAPI lifespan's start-up.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    payload = "READY=1" + (f"\nSTATUS={status}" if status else "")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(payload.encode(), target)
        except OSError:
            return False
    return True


def parse(payload: bytes) -> dict[str, str]:
    """Return the ``KEY=value`` lines of one datagram (garbage lines are dropped)."""
    fields: dict[str, str] = {}
    for line in payload.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            fields[key] = value
    return fields


class NotifyListener:
    """One abstract-namespace datagram socket; hands ``(sender pid, fields)`` to ``on_message``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_message: Callable[[int, dict[str, str]], None]) -> None:
        self._loop = loop
        self._on_message = on_message
        self.address = f"@supervisor-notify/{os.getpid()}/{os.urandom(6).hex()}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind("\0" + self.address[1:])
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        # A bounded number of datagrams per wake-up: a chatty child cannot starve the loop.
        for _ in range(64):
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(4096, socket.CMSG_SPACE(_CREDS.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = 0
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(cdata) >= _CREDS.size:
                    pid = _CREDS.unpack_from(cdata)[0]
            if pid > 0:
                self._on_message(pid, parse(data))

    def close(self) -> None:
        """Stop listening."""
        try:
            self._loop.remove_reader(self._sock.fileno())
        except (ValueError, OSError):
            pass
        self._sock.close()


__all__ = ["NotifyListener", "parse", "ready"]
