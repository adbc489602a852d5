"""The tests' Postgres databases: each test's is a clone of a template made once per run.

``CREATE DATABASE x TEMPLATE t`` copies an existing database's files, which costs less than
building one from ``template1`` and leaves nothing of the server's own template in a test's
database. The template is named by the run (``SUPERVISOR_TEST_RUN``, set by the controller
before any worker starts), so that another checkout's run at the same time has its own. The
first worker that needs it makes it, under a file lock the others wait on; the controller drops
it when the run ends.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def _run() -> str:
    return os.environ.get("SUPERVISOR_TEST_RUN") or "solo"


def _state_dir() -> Path:
    """Where the workers of this run meet: the lock and the mark that the template exists."""
    return Path(tempfile.gettempdir()) / f"supervisor-tests-{_run()}"


def template_name() -> str:
    """The run's template database."""
    return f"sup_tpl_{_run()}"


def with_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_template() -> str:
    """Make the run's template database unless a worker did; return its name."""
    import psycopg

    state = _state_dir()
    state.mkdir(exist_ok=True)
    name = template_name()
    with open(state / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (state / "made").exists():
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            (state / "made").touch()
    return name


def create_database() -> str:
    """A new database cloned from the run's template; its name."""
    import psycopg

    template = ensure_template()
    name = f"sup_it_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop_database(name: str) -> None:
    """Drop a test's database, whoever is still connected to it."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_template() -> None:
    """Drop the run's template, if a worker made one (the run is over: no one clones it now)."""
    state = _state_dir()
    if (state / "made").exists():
        import psycopg

        try:
            with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{template_name()}"')
        except psycopg.Error:
            pass  # the server went away: nothing of ours can be left on it to tidy now
    shutil.rmtree(state, ignore_errors=True)
