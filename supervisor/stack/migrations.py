"""What the daemon itself does for migrations: hold the advisory lock, read revisions.

Alembic's own ``upgrade`` always runs in a child process (its ``env.py``
rewrites logging and may hang); here we only read the script directory's
heads and the database's ``alembic_version``.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.config import cachefiles
from supervisor.config.digest import blake2b
from supervisor.machine.record import Record
from supervisor.stack.probes import describe_pg_error

# Failures worth another attempt: the database, not the migration, was the problem.
_TRANSIENT = [
    (re.compile(r"\b57P03\b|the database system is (starting up|shutting down)", re.I), "database starting up"),
    (re.compile(r"\b53300\b|too many (clients|connections)", re.I), "too many connections"),
    (re.compile(r"\b40001\b|could not serialize access", re.I), "serialization failure"),
    (re.compile(r"\b40P01\b|deadlock detected", re.I), "deadlock"),
    (re.compile(r"\b55P03\b|lock timeout|canceling statement due to lock timeout", re.I), "lock timeout"),
    (
        re.compile(
            r"server closed the connection unexpectedly|connection (refused|reset|timed out)|"
            r"could not connect to server|connection to server .* failed|terminating connection|"
            r"SSL SYSCALL error|consuming input failed|no connection to the server|\b08\d{3}\b",
            re.I,
        ),
        "connection lost",
    ),
]


def transient_cause(output: str) -> str | None:
    """Return why a failed migration's output looks transient, or None for a real error."""
    for pattern, cause in _TRANSIENT:
        if pattern.search(output):
            return cause
    return None


def is_upgrade(argv: list[str]) -> bool:
    """Whether a command is an ``alembic upgrade`` (also inside ``sh -c "..."``): only those may skip at head."""
    return any(word == "upgrade" for arg in argv[1:] for word in arg.split())


def lock_key(name: str) -> int:
    """Return a stable signed 64-bit advisory-lock key for ``name``."""
    digest = blake2b(f"supervisor.migrate:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, repr=False, eq=False)
class Revisions(Record):
    """Where the database stands against the migration scripts."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    unknown: tuple[str, ...]  # in the database, not in the scripts: the database is ahead

    @property
    def at_head(self) -> bool:
        """Whether nothing is left to apply."""
        return bool(self.heads) and set(self.current) == set(self.heads)


def script_heads(alembic_ini: str) -> tuple[set[str], tuple[str, ...]]:
    """Return every known revision and the heads of the script directory (imports alembic)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(alembic_ini))
    known = {rev.revision for rev in script.walk_revisions()}
    return known, tuple(sorted(script.get_heads()))


def heads_command(alembic_ini: str) -> list[str]:
    """The helper that prints the script heads as JSON.

    Alembic and SQLAlchemy cost ~0.4 s and ~20 MB to import, and loading the revision files
    runs user code: a child pays for that, in parallel with the dependency wait.
    """
    return [sys.executable, "-m", "supervisor.stack.migrations", alembic_ini]


def parse_heads(output: str) -> tuple[set[str], tuple[str, ...]]:
    """Read the helper's last line: ``{"known": [...], "heads": [...]}``."""
    doc = json.loads(output.strip().splitlines()[-1])
    return set(doc["known"]), tuple(doc["heads"])


def _script_dirs(alembic_ini: str, cwd: str | None) -> list[Path] | None:
    """The directories whose files decide the heads, read from the ini as alembic would; None if unsure."""
    here = os.path.dirname(os.path.abspath(alembic_ini))
    parser = configparser.ConfigParser(defaults={"here": here})
    try:
        if not parser.read(alembic_ini):
            return None
        section = parser["alembic"]
        location = section.get("script_location")
        versions = section.get("version_locations") or ""
    except (configparser.Error, KeyError):
        return None
    if not location:
        return None
    base = Path(cwd or os.getcwd())
    dirs = [base / location, *(base / word for word in re.split(r"[\s,]+", versions) if word)]
    # A package resource ("pkg:migrations") or another separator is no directory: no cache, as before.
    return dirs if all(d.is_dir() for d in dirs) else None


def heads_cache_key(alembic_ini: str, cwd: str | None = None) -> str | None:
    """A digest of the names, sizes and mtimes of the ini and every script file; None when not cacheable.

    Walking a few dozen files costs well under a millisecond; importing alembic to read them, ~0.8 s.
    """
    dirs = _script_dirs(alembic_ini, cwd)
    if dirs is None:
        return None
    digest = blake2b(digest_size=16)
    try:
        ini = os.stat(alembic_ini)
        digest.update(f"{os.path.abspath(alembic_ini)}\0{ini.st_size}\0{ini.st_mtime_ns}\n".encode())
        for top in dirs:
            for root, subdirs, names in os.walk(top.resolve()):
                subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
                for name in sorted(names):
                    st = os.stat(os.path.join(root, name))
                    digest.update(f"{root}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except OSError:
        return None
    return digest.hexdigest()


def cached_heads(alembic_ini: str, cwd: str | None = None) -> tuple[set[str], tuple[str, ...]] | None:
    """Return the heads cached for the scripts as they are now, or None."""
    key = heads_cache_key(alembic_ini, cwd)
    if key is None:
        return None
    data = cachefiles.read(f"alembic-heads-{key}.json")
    if data is None:
        return None
    try:
        return parse_heads(data.decode())
    except (ValueError, KeyError, IndexError):
        return None


def store_heads(alembic_ini: str, known: set[str], heads: tuple[str, ...], cwd: str | None = None) -> Path | None:
    """Cache the heads under the scripts' current key (atomically); return the file, or None."""
    key = heads_cache_key(alembic_ini, cwd)
    if key is None:
        return None
    # None: a read-only home or an untrusted directory; every start reads the scripts, as without a cache.
    data = json.dumps({"known": sorted(known), "heads": list(heads)}) + "\n"
    return cachefiles.write(f"alembic-heads-{key}.json", data.encode())


async def read_current(url: str, timeout_s: float = 10.0) -> tuple[str, ...]:
    """Return the database's ``alembic_version`` rows (empty when the table does not exist)."""
    import psycopg

    try:
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(2, int(timeout_s)), application_name="supervisor-revisions"
            ),
            timeout_s,
        )
    except psycopg.Error as exc:
        raise ConnectionError(describe_pg_error(exc)) from None
    async with conn:
        try:
            cur = await conn.execute("SELECT version_num FROM alembic_version")
            return tuple(sorted(row[0] for row in await cur.fetchall()))
        except psycopg.errors.UndefinedTable:
            return ()
        except psycopg.Error as exc:
            raise ConnectionError(describe_pg_error(exc)) from None


def compare(current: tuple[str, ...], known: set[str], heads: tuple[str, ...]) -> Revisions:
    """Where ``current`` stands against the scripts."""
    return Revisions(current=current, heads=heads, unknown=tuple(rev for rev in current if rev not in known))


class AdvisoryLock:
    """A session-level ``pg_advisory_lock`` on our own autocommit connection.

    Session-level, so a killed holder's lock dies with its connection; never a stale lock.
    """

    def __init__(self, url: str, key: int, log: Any) -> None:
        self.url = url
        self.key = key
        self._log = log
        self._conn: Any = None

    async def acquire(self, timeout_s: float, poll_s: float = 5.0) -> float:
        """Wait (bounded) for the lock; return seconds waited. Raises ``TimeoutError``."""
        import psycopg

        started = time.monotonic()
        name = f"supervisor-migrate {socket.gethostname()}:{os.getpid()}"
        self._conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=10, application_name=name[:63]
        )
        cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cur.fetchone()
        if row and row[0]:
            return 0.0
        while True:
            left = timeout_s - (time.monotonic() - started)
            if left <= 0:
                await self.release()
                raise TimeoutError(f"advisory lock {self.key} still held after {timeout_s:g}s")
            await self._log_holder(time.monotonic() - started)
            # Block in the server until the holder lets go, in slices so we can report and time out.
            wait_ms = int(max(0.05, min(poll_s, left)) * 1000)
            await self._conn.execute(f"SET lock_timeout = {wait_ms}")
            try:
                await self._conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            except psycopg.errors.LockNotAvailable:
                continue
            await self._conn.execute("SET lock_timeout = 0")
            return time.monotonic() - started

    async def _log_holder(self, waited_s: float) -> None:
        classid, objid = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        cur = await self._conn.execute(
            "SELECT a.pid, a.application_name, host(a.client_addr), "
            "extract(epoch FROM now() - coalesce(a.state_change, a.backend_start)) "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s",
            (classid, objid),
        )
        row = await cur.fetchone()
        if row:
            self._log.info(
                "job.lock_waiting",
                holder_pid=row[0],
                holder=row[1],
                holder_addr=row[2],
                held_for_s=round(float(row[3] or 0), 1),
                waited_s=round(waited_s, 1),
            )
        else:
            self._log.info("job.lock_waiting", waited_s=round(waited_s, 1))

    async def release(self) -> None:
        """Let go of the lock by closing our connection (which ends the session)."""
        if self._conn is not None:
            try:
                await self._conn.close()
            finally:
                self._conn = None


if __name__ == "__main__":  # the heads helper: python -m supervisor.stack.migrations alembic.ini
    known_revisions, script_head_ids = script_heads(sys.argv[1])
    store_heads(sys.argv[1], known_revisions, script_head_ids)
    print(json.dumps({"known": sorted(known_revisions), "heads": list(script_head_ids)}))
