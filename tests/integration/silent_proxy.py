"""A TCP proxy that can partition: nothing passes any more, and no side is told.

``Proxy`` of ``conftest`` cuts connections, which both ends see at once (a FIN). A lost network
is silent instead: the server learns of it only through its own TCP keepalives. Here the
server's side of each connection is removed from the kernel in ``TCP_REPAIR`` mode, which sends
neither FIN nor RST; the server's next keepalive probe then finds no socket and is answered with
a RST, at the instant its keepalive settings say. The daemon's side stays open and unanswered.
``TCP_REPAIR`` needs CAP_NET_ADMIN: ``available()`` says whether this process has it.
"""

from __future__ import annotations

import selectors
import socket
import threading

from tests.conftest import free_port

TCP_REPAIR = 19  # linux/tcp.h; not in Python's socket module


def available() -> bool:
    """Whether sockets can be removed silently here (CAP_NET_ADMIN)."""
    with socket.socket() as probe:
        try:
            probe.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        except OSError:
            return False
    return True


class SilentProxy:
    """Forward 127.0.0.1:``port`` to ``target_port`` until ``partition()``."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._listener: socket.socket | None = socket.create_server(("127.0.0.1", self.port))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peer: dict[socket.socket, socket.socket] = {}
        self._upstream: set[socket.socket] = set()
        self._partition = threading.Event()
        self._partitioned = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def partition(self) -> None:
        """From now on: new connections refused, data dropped, the server's sides gone without a word."""
        self._partition.set()
        self._partitioned.wait(5)

    def close(self) -> None:
        """Stop, closing what is left (the daemons' sides see a FIN)."""
        self._closing = True
        self._thread.join(5)
        for sock in list(self._peer):
            sock.close()
        if self._listener is not None:
            self._listener.close()
        self._selector.close()

    def _run(self) -> None:
        while not self._closing:
            if self._partition.is_set() and not self._partitioned.is_set():
                self._vanish()
            for key, _ in self._selector.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept(sock)
                else:
                    self._forward(sock)

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            return
        client.setblocking(True)
        upstream.settimeout(None)
        self._peer[client], self._peer[upstream] = upstream, client
        self._upstream.add(upstream)
        for sock in (client, upstream):
            self._selector.register(sock, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        peer = self._peer.get(sock)
        if not data:
            for s in (sock, peer):
                if s is not None and s in self._peer:
                    self._selector.unregister(s)
                    self._peer.pop(s, None)
                    self._upstream.discard(s)
                    s.close()
            return
        if self._partition.is_set() or peer is None:
            return  # dropped, as a lost network drops it
        try:
            peer.sendall(data)
        except OSError:
            pass

    def _vanish(self) -> None:
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        for up in list(self._upstream):
            up.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)  # close() now sends nothing
            self._selector.unregister(up)
            self._peer.pop(up, None)
            up.close()
        self._upstream.clear()
        self._partitioned.set()
