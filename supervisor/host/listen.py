"""The sockets programs listen on: bound once by the supervisor, handed to every incarnation."""

from __future__ import annotations

import os
import socket

from supervisor.config.settings import parse_address


def bind_listener(address: str) -> socket.socket:
    """Bind once; every incarnation of the program inherits this socket.

    It listens only from the program's first start (``listening``): until then a
    client is refused at once instead of waiting in a backlog nobody accepts from.
    """
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, exc.strerror, address) from None  # "...: '127.0.0.1:8000'": which one
    return sock


def start_listening(fd: int) -> None:
    """Let a bound listen socket accept, once."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(1024)
    finally:
        sock.close()


def bindable(address: str) -> bool:
    """Whether ``address`` can be bound now, as ``bind_listener`` binds it (nothing is kept)."""
    try:
        bind_listener(address).close()
    except (OSError, ValueError):
        return False
    return True
