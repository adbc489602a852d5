"""`make demo`: the example stack under the supervisor, against DATABASE_URL and REDIS_URL.

Creates the demo database if it is missing, says what to try, then execs
`supervisor run --config conf/supervisor.toml` (Ctrl-C stops everything).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]


def ensure_database(url: str) -> None:
    """Create the database the URL names when the server has none of that name."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"created database {name}")
    except psycopg.Error as exc:
        # The supervisor itself will wait for Postgres and say what is wrong; do not hide that.
        print(f"could not check the demo database ({exc}); starting anyway", file=sys.stderr)


def main() -> None:
    """Prepare, explain, and hand over to the supervisor."""
    env = os.environ
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/webstack_demo")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("STATE_DIR", str(ROOT / "run"))
    (ROOT / "run").mkdir(exist_ok=True)
    ensure_database(env["DATABASE_URL"])
    port, http = env.get("PORT", "8000"), env.get("SUPERVISOR_HTTP", "127.0.0.1:9001")
    sys.path.insert(0, str(ROOT))
    from supervisor.config.interpolation import default_socket

    sock = default_socket()  # conf/supervisor.toml names no socket: $SUPERVISOR_SOCKET, else this
    bindir = Path(sys.executable).parent
    reach = (
        f"  supervisor status                      # finds {sock} from any directory"
        if not env.get("SUPERVISOR_SOCKET")
        else f"  export SUPERVISOR_SOCKET={sock}\n  supervisor status"
    )
    print(
        f"""
The example stack starts below: Postgres and Redis readiness, then `alembic upgrade head` under an
advisory lock, then uvicorn (behind the supervisor's socket on :{port}), the Celery worker and beat.
In another terminal (put {bindir} on your PATH first, or call {bindir}/supervisor):

{reach}
  supervisor status --watch              # redrawn every second, changes marked
  supervisor timeline                    # how the start-up went, and what held it up
  supervisor logs -f                     # every program and job, merged
  curl -X POST localhost:{port}/events     # enqueue a task; the worker writes a row
  curl localhost:{port}/events             # rows by source (beat adds one every few seconds)
  supervisor status --json worker        # the worker's pid, then: kill -9 <pid>
  supervisor status worker               # restarted, with last exit SIGKILL
  supervisor restart web                 # a new uvicorn on the same socket: no refused connection
  supervisor logs beat -n 20 -f          # what beat printed, then follows
  supervisor signal worker HUP           # Celery's warm restart of its pool
  curl {http}/readyz ; curl {http}/metrics

Ctrl-C stops the programs in reverse order and exits 0.
""",
        flush=True,
    )
    supervisor = Path(sys.executable).with_name("supervisor")
    os.execv(supervisor, [str(supervisor), "run", "--config", str(ROOT / "conf" / "supervisor.toml")])


if __name__ == "__main__":
    main()
