"""The singleton's lock session against the real Postgres: its key, its server-side settings, one holder."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from supervisor.machine.events import Event, LockAcquired
from supervisor.stack.singleton import SingletonLock, session_settings, singleton_key

pytestmark = pytest.mark.integration


class Log:
    """Swallows the lock's log calls."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


async def acquired(events: list[Event], timeout: float) -> None:
    """Wait until a LockAcquired has been reported."""
    async with asyncio.timeout(timeout):
        while not any(isinstance(e, LockAcquired) for e in events):
            await asyncio.sleep(0.02)


def test_one_holder_with_its_keepalives_set_and_the_next_one_within_a_second_of_the_release(database: str) -> None:
    """The first lock holds the key with the fence's keepalives; the second gets it about a second after release."""

    async def scenario() -> None:
        key = singleton_key("beat")
        first_events: list[Event] = []
        second_events: list[Event] = []
        first = SingletonLock(first_events.append, Log())
        second = SingletonLock(second_events.append, Log())
        first.seek(database, key, 10.0)
        await acquired(first_events, 10)
        second.seek(database, key, 10.0)
        await asyncio.sleep(1.5)  # a standby's attempt or two
        assert not second_events
        # The server-side settings of the holder's session: keepalives longer than the fence.
        cur = await first._conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(session_settings(10.0)),)
        )
        settings = dict(await cur.fetchall())
        assert settings["tcp_keepalives_idle"] == "12" and settings["tcp_user_timeout"] == "12000"
        assert settings["idle_session_timeout"] == "0" and settings["statement_timeout"] == "0"
        with psycopg.connect(database, autocommit=True) as admin:
            holders = admin.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objid::bigint = %s "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (key & 0xFFFFFFFF,),
            ).fetchall()
        assert [h[0].split(" ")[0] for h in holders] == ["supervisor-singleton"]
        assert first_events == [LockAcquired(wait_s=0.0)]  # a server up for long: no wait
        released_at = asyncio.get_running_loop().time()
        first.release()
        await acquired(second_events, 5)
        took = asyncio.get_running_loop().time() - released_at
        second.release()
        assert took < 2.5, took  # a standby tries every second

    asyncio.run(scenario())
