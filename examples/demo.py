"""`make demo`: the example stack under the supervisor, against DATABASE_URL and REDIS_URL.

Refuses at once when another demo (or supervisor) holds the socket or the ports, creates the
demo database if it is missing, says what to try, then execs
`supervisor run --config conf/supervisor.toml` (with `--dev` for `make dev`). The make recipe execs this script, so the
supervisor has make's child's pid: a SIGTERM that make passes on reaches it.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
from collections.abc import Mapping
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


def taken(sock: str, addresses: list[str]) -> str | None:
    """Return why the demo cannot start here (a supervisor on the socket, a port in use), or None."""
    from supervisor.host.listen import bindable
    from supervisor.host.socketlock import answers

    if answers(sock):
        return f"a supervisor already answers on {sock}"
    try:
        fd = os.open(f"{sock}.lock", os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        fd = -1  # no lock file: nobody holds it
    if fd >= 0:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return f"a supervisor is starting on {sock} (it holds {sock}.lock)"
        except OSError:
            pass
        finally:
            os.close(fd)  # released at once: `run` takes it for itself
    busy = [address for address in addresses if address and not bindable(address)]
    return f"{' and '.join(busy)} {'is' if len(busy) == 1 else 'are'} in use" if busy else None


# What another shell needs to act on this demo as the daemon sees it: `exec` and `check` read
# the configuration with their own environment, not the daemon's.
SHARED = ("DATABASE_URL", "REDIS_URL", "STATE_DIR", "SUPERVISOR_SOCKET", "PORT", "SUPERVISOR_HTTP")


def exports(env: Mapping[str, str], bindir: Path) -> str:
    """The `export` line for another shell: this virtualenv's commands, the file, the demo's variables."""
    values = {"SUPERVISOR_CONFIG": str(ROOT / "conf" / "supervisor.toml")}
    values.update({name: env[name] for name in SHARED if env.get(name)})
    assigned = " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items())
    return f'export PATH={shlex.quote(str(bindir))}:"$PATH" {assigned}'


def main() -> None:
    """Refuse early, or prepare, explain, and hand over to the supervisor."""
    env = os.environ
    port, http = env.get("PORT", "8000"), env.get("SUPERVISOR_HTTP", "127.0.0.1:9001")
    sys.path.insert(0, str(ROOT))
    from supervisor.config.interpolation import default_socket

    sock = default_socket()  # conf/supervisor.toml names no socket: $SUPERVISOR_SOCKET, else this
    why = taken(sock, [f"{env.get('HOST', '127.0.0.1')}:{port}", http])
    if why:
        print(
            f"make demo: {why}: is a demo already running? Stop it (Ctrl-C in its terminal), or start a\n"
            "second one beside it with its own socket, ports and state directory:\n"
            "  SUPERVISOR_SOCKET=/tmp/mine.sock PORT=8100 SUPERVISOR_HTTP=127.0.0.1:9100 STATE_DIR=/tmp/mine make demo",
            file=sys.stderr,
        )
        sys.exit(69)  # EX_UNAVAILABLE, as `supervisor run` exits when the socket is taken
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/webstack_demo")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("STATE_DIR", str(ROOT / "run"))
    Path(env["STATE_DIR"]).mkdir(parents=True, exist_ok=True)
    ensure_database(env["DATABASE_URL"])
    bindir = Path(sys.executable).parent
    print(
        f"""
The example stack starts below: Postgres and Redis readiness, then `alembic upgrade head` under an
advisory lock, then uvicorn (behind the supervisor's socket on :{port}), the Celery worker and beat.
In another terminal, first take the demo's environment (`exec` and `check` read the file with
your shell's, not the daemon's):

  {exports(env, bindir)}

  supervisor status                      # finds the demo's socket from any directory
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
  supervisor exec --like web -- alembic current   # a one-off in web's environment: the demo's database
  curl {http}/readyz ; curl {http}/metrics

Ctrl-C stops the programs in reverse order and the supervisor exits 0; make, which the same
Ctrl-C interrupts, then exits 130 without a message. kill -TERM of make's pid stops it the same way.
""",
        flush=True,
    )
    dev = ["--dev"] if "--dev" in sys.argv[1:] else []  # `make dev`
    if dev:
        print("Development mode: an edit under examples/webstack/app/ restarts web and the worker.\n", flush=True)
    supervisor = Path(sys.executable).with_name("supervisor")
    os.execv(supervisor, [str(supervisor), "run", "--config", str(ROOT / "conf" / "supervisor.toml"), *dev])


if __name__ == "__main__":
    main()
