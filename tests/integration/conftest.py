"""Integration fixtures: a fresh database per test, a TCP proxy the test controls, the stack's argv.

Under pytest-xdist each worker has a Redis database of its own (15 for the first, then 13, 12...:
14 is the benchmarks'),
and every test a Postgres database cloned from the run's template (``tests/databases.py``).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import databases
from tests.conftest import free_port
from tests.databases import ADMIN_URL, with_database

ROOT = Path(__file__).resolve().parents[2]


# The workers' Redis databases, in worker order; 14 is left to `make bench`, which empties it.
REDIS_DATABASES = (15, 13, 12, 11, 10, 9, 8, 7)


def _redis_db() -> int:
    """The worker's Redis database: 15 for the first worker (or a run without workers), then 13, 12..."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return REDIS_DATABASES[index % len(REDIS_DATABASES)]


# The tests' Celery queues live in a Redis database of their own, and are deleted afterwards.
REDIS_URL = urlunsplit(
    urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")._replace(path=f"/{_redis_db()}")
)


def container_argv() -> list[str]:
    """The Dockerfile's ENTRYPOINT + CMD, with /app mapped to this checkout and our venv's binary."""
    import json

    text = (ROOT / "docker/Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    argv = [arg.replace("/app/", f"{ROOT}/") for arg in [*entry, *cmd]]
    argv[0] = str(Path(sys.executable).parent / argv[0])
    return argv


def with_port(url: str, port: int) -> str:
    """Return ``url`` pointing at 127.0.0.1:``port`` (keeping user, password, path)."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth + '@' if auth else ''}127.0.0.1:{port}"))


def server_port(url: str, default: int) -> int:
    """The port a URL names."""
    return urlsplit(url).port or default


@pytest.fixture
def database() -> Iterator[str]:
    """A database of our own, dropped afterwards: the machine's databases stay as they were."""
    name = databases.create_database()
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        databases.drop_database(name)


class Proxy:
    """A TCP proxy on a port of its own: open (forwards), closed (refuses), cut (drops N conns)."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.cut_next = 0
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._acceptor: threading.Thread | None = None

    def open(self) -> None:
        """Listen and forward."""
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        """Refuse new connections and cut every live one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._acceptor is not None:
            # An accept() in progress keeps the port bound until it returns (within 0.1 s):
            # wait for it, so that open() can bind the port again at once.
            self._acceptor.join(2)
            self._acceptor = None
        self.cut_live()

    def cut_live(self) -> None:
        """Close every live connection, as a server that ends its clients' sessions does; keep listening."""
        with self._lock:
            for sock in list(self._live):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._live.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.cut_next > 0:
                self.cut_next -= 1
                client.close()  # the peer sees the server close the connection unexpectedly
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._live.discard(src)
                self._live.discard(dst)


@pytest.fixture
def proxy() -> Iterator[type[Proxy]]:
    """Make proxies; every one is closed at the end."""
    made: list[Proxy] = []

    class Made(Proxy):
        def __init__(self, target_port: int) -> None:
            super().__init__(target_port)
            made.append(self)

    yield Made
    for p in made:
        p.close()


@pytest.fixture
def queue() -> Iterator[str]:
    """A Celery queue name of our own; its keys (and Celery's bindings) are deleted afterwards."""
    import redis

    name = f"q-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        ours = [k for k in client.scan_iter() if name.encode() in k]
        if ours:
            client.delete(*ours)
        leftovers = list(client.scan_iter())
        if leftovers and all(k.startswith((b"_kombu.", b"unacked")) for k in leftovers):
            client.delete(*leftovers)  # Celery's shared bindings, with no queue of anyone's left
    finally:
        client.close()


def stack_env(tmp_path: Path, database_url: str, queue: str, **extra: str) -> dict[str, str]:
    """The environment the stack runs with in a test: its own database, queue, ports and state dir."""
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "STATE_DIR": str(state),
        "PORT": str(free_port()),
        "APP_QUEUE": queue,
        "BEAT_INTERVAL": "1",
        "WEB_HEALTH_INTERVAL": "1s",
        "HEARTBEAT_INTERVAL": "1s",
        "HEARTBEAT_MAX_AGE": "6s",
    }
    env.update(extra)
    return env
