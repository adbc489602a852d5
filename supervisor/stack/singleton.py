"""A singleton's advisory lock: tried for every second, then held on a connection of its own.

Everything here runs on the daemon's loop through psycopg's asynchronous connection, so nothing
blocks it. The lock is a session-level ``pg_try_advisory_lock``: it lasts exactly as long as the
session. The session is set up so that Postgres ends it, when the holder goes silent, only after
the holder has surely fenced: see ``session_settings`` and ``docs/replicas.md``.
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from supervisor.config.digest import blake2b
from supervisor.machine.events import Event, LockAcquired, LockLost
from supervisor.stack.probes import describe_pg_error, pg_value

RETRY_S = 1.0  # standbys try again, and the holder checks its session, every second
MARGIN_S = 2.0  # the server waits this much longer than the fence: clock rates, a busy loop


def singleton_key(name: str) -> int:
    """Return the signed 64-bit advisory-lock key of singleton ``name`` (its program, or ``singleton_key``)."""
    digest = blake2b(f"supervisor.singleton:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def session_settings(fence_s: float) -> dict[str, str]:
    """The lock session's server-side settings for a fence of ``fence_s``.

    A silent holder is dropped by the server only after ``silence_s`` without a packet from it
    (keepalives), or without an acknowledgement of data it sent (``tcp_user_timeout``); the
    holder has SIGKILLed its copy ``fence_s`` after its last answered query. Nothing else may end
    the session early: no idle or statement timeouts.
    """
    silence_s = math.ceil(fence_s + MARGIN_S)
    return {
        "tcp_keepalives_idle": str(silence_s),
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str(silence_s * 1000),
        "idle_session_timeout": "0",
        "idle_in_transaction_session_timeout": "0",
        "statement_timeout": "0",
        "lock_timeout": "0",
    }


class SingletonLock:
    """One program's lock: ``seek`` tries every second; once held, the session is checked every second.

    Events go to ``report``: ``LockAcquired``, then at most one ``LockLost``. A lost connection
    stays open until ``release`` or the next ``seek``: closing it while the copy still runs could
    hand the lock to another daemon early, should the network come back.
    """

    def __init__(self, report: Callable[[Event], None], log: Any, now: Callable[[], float] = time.monotonic) -> None:
        self.url = ""
        self.key = 0
        self.fence_s = 10.0
        self._report = report
        self._log = log
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._watched: int | None = None
        self._now = now
        self._sent_at = 0.0
        self._handoff: int | None = None

    @property
    def holding(self) -> bool:
        """Whether a connection is open (held, or lost and kept until the copy is gone)."""
        return self._conn is not None

    def handoff_fd(self) -> int | None:
        """A close-on-exec copy of the lock connection's socket, above fd 4, for the program to inherit.

        The program holds the connection open too: killed with the daemon, the daemon's copy
        closes first, and the server sees the connection end only once the program is gone.
        """
        if self._conn is None:
            return None
        if self._handoff is None:
            self._handoff = fcntl.fcntl(int(self._conn.pgconn.socket), fcntl.F_DUPFD_CLOEXEC, 10)
        return self._handoff

    def seek(self, url: str, key: int, fence_s: float) -> None:
        """Close any earlier connection and try for lock ``key`` every second until it is ours."""
        self.release()
        self.url, self.key, self.fence_s = url, key, fence_s
        self._task = asyncio.get_running_loop().create_task(self._seek())

    def release(self) -> None:
        """Stop trying, and close the connection: the server frees the lock at once."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._unwatch()
        self._drop()

    async def _seek(self) -> None:
        unreachable = False
        while True:
            try:
                got, uptime_s = await self._try()
            except Exception as exc:  # psycopg.Error, OSError, TimeoutError: the database is not there
                self._drop()
                if not unreachable:
                    unreachable = True
                    self._log.info("singleton.lock_unreachable", error=_describe(exc), next=f"retry every {RETRY_S:g}s")
            else:
                if got:
                    break
                unreachable = False
            await asyncio.sleep(RETRY_S)
        # A young Postgres may have ended a holder's session before that holder saw it: wait for
        # the fence from the server's start, as that holder's copy is dead by then.
        self._report(LockAcquired(wait_s=max(0.0, self.fence_s - uptime_s)))
        await self._keep(self._sent_at)

    async def _try(self) -> tuple[bool, float]:
        import psycopg

        if self._conn is None:
            name = f"supervisor-singleton {socket.gethostname()}:{os.getpid()}"
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(2, int(RETRY_S * 5)), application_name=name[:63]
            )
            await self._configure()
        self._sent_at = self._now()
        # On the bare libpq connection, as the probes do: a timeout abandons the wait at once,
        # where psycopg's own cancellation would first try a cancel request for seconds.
        sql = f"SELECT pg_try_advisory_lock({int(self.key)})::text || ' ' || "
        sql += "extract(epoch FROM now() - pg_postmaster_start_time())::float8::text"
        async with asyncio.timeout(RETRY_S * 5):
            value = await pg_value(self._conn.pgconn, sql.encode())
        got, _, uptime = (value or b"").decode().partition(" ")
        return got == "true", float(uptime)

    async def _configure(self) -> None:
        # Only the settings this server knows (tcp_user_timeout: 12+, idle_session_timeout: 14+).
        settings = session_settings(self.fence_s)
        names = list(settings)
        await self._conn.execute(
            "SELECT set_config(name, (%s::jsonb) ->> name, false) FROM pg_settings WHERE name = ANY(%s)",
            (_json(settings), names),
        )

    async def _keep(self, contact_at: float) -> None:
        """Check the session every second; report a loss once, keeping the connection open.

        ``contact_at``: when the last query that got an answer was sent; the server heard from us
        after it. Half the fence goes to noticing a silence, half to stopping the copy.
        """
        import psycopg

        detect_s = self.fence_s / 2
        every_s = min(RETRY_S, detect_s / 2)
        while True:
            self._watch(contact_at)
            await asyncio.sleep(every_s)
            self._unwatch()
            sent_at = self._now()
            try:
                async with asyncio.timeout(max(0.0, contact_at + detect_s - sent_at)):
                    await pg_value(self._conn.pgconn, b"SELECT 1")
            except TimeoutError:
                self._lost(contact_at, f"no answer from the lock session within {detect_s:g}s", gone=False)
                return
            except (psycopg.Error, OSError) as exc:
                self._lost(contact_at, _describe(exc), gone=True)
                return
            contact_at = sent_at  # the server heard from us after this instant

    def _watch(self, contact_at: float) -> None:
        """Between checks, a connection the server (or something between) closes is seen at once."""
        fd = int(self._conn.pgconn.socket)

        def readable() -> None:
            try:
                self._conn.pgconn.consume_input()
                if not self._conn.pgconn.status:  # CONNECTION_OK is 0
                    return
                raise ConnectionError("the lock connection went bad")
            except Exception as exc:
                if self._task is not None:
                    self._task.cancel()
                    self._task = None
                self._unwatch()
                self._lost(contact_at, _describe(exc), gone=True)

        asyncio.get_running_loop().add_reader(fd, readable)
        self._watched = fd

    def _unwatch(self) -> None:
        if self._watched is not None:
            asyncio.get_running_loop().remove_reader(self._watched)
            self._watched = None

    def _lost(self, contact_at: float, detail: str, gone: bool) -> None:
        self._log.warning("singleton.lock_lost", key=self.key, detail=detail, gone=gone)
        self._report(LockLost(contact_at=contact_at, detail=detail, gone=gone))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.pgconn.finish()  # Terminate, then close: the server ends the session at once
        if self._handoff is not None:
            os.close(self._handoff)
            self._handoff = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return describe_pg_error(exc) if isinstance(exc, Exception) else type(exc).__name__


def _json(settings: dict[str, str]) -> str:
    import json

    return json.dumps(settings)
