"""Probes report ``(ok, detail, elapsed)``; what follows from a result is decided elsewhere.

Each library (psycopg, redis-py, h11) is imported only by the probe that
needs it, so a configuration that uses none of them does not pay for them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from supervisor.config.settings import parse_address
from supervisor.host import tls
from supervisor.machine.events import ExitStatus
from supervisor.machine.record import Record
from supervisor.stack.http1 import HTTPFailed, request_status

# Postgres SQLSTATEs that mean "not ready yet" rather than "misconfigured".
NOT_READY_SQLSTATES = {"57P03": "the database system is starting up", "53300": "too many connections"}


@dataclass(frozen=True, repr=False, eq=False)
class ProbeResult(Record):
    """What a probe saw."""

    ok: bool
    detail: str
    elapsed_s: float


Probe = Callable[[], Awaitable[ProbeResult]]


class KeptProbe:
    """A probe that keeps its connection between checks, and tells that connection's socket."""

    def __init__(self, check: Callable[[], Awaitable[str]], timeout_s: float, socket: Callable[[], int | None]):
        self._check = check
        self._timeout_s = timeout_s
        self.socket = socket  # the kept connection's fd, or None while there is none

    def __call__(self) -> Awaitable[ProbeResult]:
        return _timed(self._check, self._timeout_s)


def kept_socket(probe: Probe) -> int | None:
    """The fd of the connection ``probe`` keeps between checks, or None."""
    try:
        return probe.socket() if isinstance(probe, KeptProbe) else None
    except Exception:  # a closed connection's library may raise rather than answer
        return None


async def _timed(check: Callable[[], Awaitable[str]], timeout_s: float) -> ProbeResult:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):  # a timer on this task: no second task per probe
            detail = await check()
    except TimeoutError:
        return ProbeResult(False, f"no answer within {timeout_s:g}s", time.monotonic() - started)
    except ProbeFailed as exc:
        return ProbeResult(False, str(exc), time.monotonic() - started)
    except OSError as exc:
        return ProbeResult(False, exc.strerror or str(exc), time.monotonic() - started)
    except Exception as exc:  # a client library's surprise (a URL it rejects, garbage on the wire) is a failure
        return ProbeResult(False, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return ProbeResult(True, detail, time.monotonic() - started)


class ProbeFailed(Exception):
    """A probe reached its target and did not like the answer."""


def postgres(url: str, timeout_s: float, primary: bool = False) -> Probe:
    """Run ``SELECT 1`` (or ``pg_is_in_recovery()`` for a primary) through psycopg.

    The probe keeps its connection between checks: a connect (TCP, TLS, SCRAM) costs the
    daemon milliseconds of CPU, a ``SELECT 1`` on an open connection a fraction of one. A
    check that fails on the kept connection drops it and tries one fresh connection, so a
    server that restarted is reported by what a new client would see.
    """
    kept: list[Any] = []

    async def query(conn: Any) -> str:
        if primary:
            if await pg_value(conn.pgconn, b"SELECT pg_is_in_recovery()") != b"f":
                raise ProbeFailed("in recovery: a standby, not the primary")
            return "primary"
        await pg_value(conn.pgconn, b"SELECT 1")
        return "SELECT 1"

    async def check() -> str:
        import psycopg

        if kept:
            try:
                return await _on_kept(kept, query, _finish_pg)
            except (psycopg.Error, OSError):
                pass  # the server went away or restarted: try as a new client would
        try:
            conn = await psycopg.AsyncConnection.connect(
                url,
                autocommit=True,
                connect_timeout=max(2, int(timeout_s)),
                application_name="supervisor-probe",
            )
        except psycopg.OperationalError as exc:
            raise ProbeFailed(describe_pg_error(exc)) from None
        kept.append(conn)
        try:
            return await _on_kept(kept, query, _finish_pg)
        except psycopg.Error as exc:
            raise ProbeFailed(describe_pg_error(exc)) from None

    def socket() -> int | None:
        return int(kept[0].pgconn.socket) if kept else None

    return KeptProbe(check, timeout_s, socket)


async def _on_kept(kept: list[Any], use: Callable[[Any], Awaitable[str]], discard: Callable[[Any], None]) -> str:
    """Use the kept connection; on any failure but a well-formed answer we dislike, discard it."""
    conn = kept[0]
    try:
        return await use(conn)
    except ProbeFailed:
        raise  # the server answered: the connection itself is fine
    except BaseException:  # broken, garbled, or cancelled mid-answer by the probe's timeout
        kept.clear()
        discard(conn)
        raise


_PSYCOPG: list[Any] = []


async def pg_value(pgconn: Any, sql: bytes) -> bytes | None:
    """Run one query on psycopg's libpq connection (``psycopg.pq``); return the first value.

    A probe runs on a connection that nothing else uses, so it can skip the cursor, the
    adapters and the result objects of ``execute``: about 190 us of CPU less per probe on
    this machine, where the whole probe, wake-up included, costs 370-420 us.
    """
    if not _PSYCOPG:
        from psycopg import errors, pq

        _PSYCOPG.extend((errors, pq))
    errors, pq = _PSYCOPG
    loop = asyncio.get_running_loop()
    pgconn.send_query(sql)
    while pgconn.flush() == 1:
        await _ready(loop, pgconn.socket, loop.add_writer, loop.remove_writer)
    value: bytes | None = None
    failed: Any = None
    while True:
        # Before every result: get_result() blocks the whole loop while libpq is busy.
        pgconn.consume_input()
        while pgconn.is_busy():
            await _ready(loop, pgconn.socket, loop.add_reader, loop.remove_reader)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == pq.ExecStatus.TUPLES_OK and result.ntuples:
            value = result.get_value(0, 0)
        elif result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            failed = result
    if failed is not None:
        raise errors.error_from_result(failed)
    return value


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, add: Any, remove: Any) -> None:
    """Wait until ``fd`` is readable (or writable, with the writer pair)."""
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    add(fd, wake)
    try:
        await done
    finally:
        remove(fd)


def _finish_pg(conn: Any) -> None:
    """Close a psycopg connection at once: what its own ``close()`` does, with nothing to await."""
    conn.pgconn.finish()


def describe_pg_error(exc: Exception) -> str:
    """Return a one-line description of a psycopg error, naming its SQLSTATE."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if sqlstate in NOT_READY_SQLSTATES:
        return f"{sqlstate} {NOT_READY_SQLSTATES[sqlstate]}: {text}"
    return f"{sqlstate}: {text}" if sqlstate else text


def redis(url: str, timeout_s: float) -> Probe:
    """``PING`` through redis-py, on one client kept between checks; a server still loading is not ready.

    redis-py is imported on the first check, so a configuration without Redis never loads it (nor
    ``ssl``, which redis-py cannot be imported without: see ``supervisor.host.tls``). One of its
    connections is kept between checks; a broken one is dropped and the check connects afresh
    once, so a server that restarted is reported by what a new client would see.
    """
    kept: list[Any] = []

    async def ping(conn: Any) -> str:
        await conn.send_command("PING")
        answer = await conn.read_response()
        if answer not in (b"PONG", "PONG"):
            raise ProbeFailed(f"PING answered {answer!r}")
        return "PONG"

    async def check() -> str:
        aioredis, exceptions = _redis_py()
        BusyLoadingError, RedisError = exceptions.BusyLoadingError, exceptions.RedisError

        try:
            if kept:
                try:
                    return await _on_kept(kept, ping, _drop_redis)
                except (RedisError, OSError):
                    pass  # the server went away or restarted: try as a new client would
            pool = aioredis.ConnectionPool.from_url(
                url or "redis://localhost:6379/0",
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry_on_timeout=False,
                protocol=2,  # a plain PING needs no HELLO handshake
            )
            # One connection of redis-py's own, used directly: a probe needs no client or pool.
            conn = pool.make_connection()
            await conn.connect()
            kept.append(conn)
            return await _on_kept(kept, ping, _drop_redis)
        except BusyLoadingError:
            raise ProbeFailed("LOADING: Redis is loading the dataset in memory") from None
        except RedisError as exc:
            raise ProbeFailed(f"{type(exc).__name__}: {exc}") from None

    def socket() -> int | None:
        writer = getattr(kept[0], "_writer", None) if kept else None
        if writer is None or writer.transport.is_closing():
            return None
        sock = writer.transport.get_extra_info("socket")
        return None if sock is None else int(sock.fileno())

    return KeptProbe(check, timeout_s, socket)


_REDIS: list[Any] = []


def _redis_py() -> tuple[Any, Any]:
    """``redis.asyncio`` and ``redis.exceptions``, imported on first use and kept.

    A check runs every few seconds on a cold CPU cache: even an ``import`` of a loaded module
    showed in its profile.
    """
    if not _REDIS:
        tls.module()  # redis-py needs ssl to import at all (its SSLConnection's annotations)
        import redis.asyncio
        import redis.exceptions

        _REDIS.extend((redis.asyncio, redis.exceptions))
    return _REDIS[0], _REDIS[1]


def _drop_redis(conn: Any) -> None:
    """Close a redis-py connection at once, with nothing to await."""
    writer = getattr(conn, "_writer", None)
    if writer is not None:
        writer.transport.abort()


def tcp(address: str, timeout_s: float) -> Probe:
    """Open a TCP connection and close it."""

    async def check() -> str:
        try:
            host, port = parse_address(address.removeprefix("tcp://"))
        except ValueError as exc:
            raise ProbeFailed(str(exc)) from None
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
        return "connected"

    return lambda: _timed(check, timeout_s)


def http(url: str, timeout_s: float) -> Probe:
    """``GET`` the URL over h11; any 2xx is healthy."""

    async def check() -> str:
        try:
            status = await request_status(url, "GET", "supervisor-probe")
        except HTTPFailed as exc:
            raise ProbeFailed(str(exc)) from None
        if not 200 <= status < 300:
            raise ProbeFailed(f"HTTP {status}")
        return f"HTTP {status}"

    return lambda: _timed(check, timeout_s)


def file(path: str, max_age_s: float, not_before: float = 0.0) -> Probe:
    """A heartbeat file must exist, be fresher than ``max_age_s``, and be written after ``not_before``.

    ``not_before`` is the wall-clock instant the incarnation was spawned: a
    predecessor's heartbeat never makes a new process healthy.
    """

    async def check() -> str:
        try:
            mtime = os.stat(path).st_mtime  # mtimes are wall-clock
        except FileNotFoundError:
            raise ProbeFailed(f"{path} does not exist") from None
        if mtime < not_before:
            raise ProbeFailed(f"{path} was last written before this incarnation started")
        age = time.time() - mtime
        if age > max_age_s:
            raise ProbeFailed(f"{path} is {age:.1f}s old (max_age {max_age_s:g}s)")
        return f"{age:.1f}s old"

    return lambda: _timed(check, max(1.0, max_age_s))


Runner = Callable[[list[str], float], Awaitable[ExitStatus | None]]


def exec_(argv: list[str], timeout_s: float, run: Runner) -> Probe:
    """Run a command through the supervisor's own spawner; exit 0 is healthy."""

    async def check() -> str:
        status = await run(argv, timeout_s)
        if status is None:
            raise ProbeFailed(f"{argv[0]} did not finish within {timeout_s:g}s")
        if not status.success:
            raise ProbeFailed(
                f"{argv[0]} exited with {status.code if status.signal is None else f'signal {status.signal}'}"
            )
        return "exit 0"

    return lambda: _timed(check, timeout_s + 1.0)
