"""Readiness and migrations against a real Postgres, with faults from a proxy the test controls."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PY, program
from tests.integration.conftest import ROOT, server_port, with_port

pytestmark = pytest.mark.integration
WEBSTACK = ROOT / "examples" / "webstack"


def config(
    db: str,
    job_db: str | None = None,
    *,
    command: str = '["alembic", "upgrade", "head"]',
    alembic_dir: Path = WEBSTACK,
    timeout: str = "30s",
    on_timeout: str = "continue",
    on_failure: str = "continue",
    attempts: int = 4,
) -> str:
    """A postgres dependency, the migration job, and one program that needs it."""
    return f"""
[dependencies.postgres]
type = "postgres"
url = "{db}"
interval = "200ms"
timeout = "{timeout}"
on_timeout = "{on_timeout}"

[jobs.migrate]
command = {command}
cwd = "{alembic_dir}"
alembic_config = "{alembic_dir}/alembic.ini"
depends_on = ["postgres"]
lock = "postgres"
attempts = {attempts}
backoff = {{ initial = "300ms", max = "1s" }}
timeout = "2m"
lock_timeout = "2m"
on_failure = "{on_failure}"
environment = {{ DATABASE_URL = "{job_db or db}" }}

[programs.app]
command = {program("sleeper")}
depends_on = ["migrate"]
"""


def migration_runs(db: str) -> int:
    """How many times revision 0002's side effect happened."""
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM migration_log").fetchone()
    return int(row[0]) if row else 0


def order(d, *events: tuple[str, dict[str, str]]) -> list[str]:
    """Timestamps of the first event of each kind, for checking their order."""
    return [d.wait_event(name, **fields)["timestamp"] for name, fields in events]


def test_waits_for_postgres_then_migrates_then_starts(run_daemon, database: str, proxy) -> None:
    """Postgres refusing at first: the supervisor waits, then migrates, then starts the programs."""
    pg = proxy(server_port(database, 5432))  # closed: connections are refused
    url = with_port(database, pg.port)
    d = run_daemon(config(url))
    d.wait_event("dependency.not_ready", dependency="postgres")
    assert d.unit("app")["state"] == "pending" and d.unit("migrate")["state"] == "pending"
    time.sleep(1.5)  # the outage the test is staging, not a wait for the daemon
    pg.open()
    stamps = order(
        d,
        ("dependency.ready", {"dependency": "postgres"}),
        ("job.succeeded", {"job": "migrate"}),
        ("program.started", {"program": "app"}),
    )
    assert stamps == sorted(stamps)
    assert migration_runs(database) == 1


def test_on_timeout_exit_gives_69(run_daemon, database: str, proxy) -> None:
    """With on_timeout = exit and Postgres never reachable, run exits 69 after about timeout."""
    pg = proxy(server_port(database, 5432))
    began = time.monotonic()
    d = run_daemon(config(with_port(database, pg.port), timeout="2s", on_timeout="exit"))
    assert d.wait_exit(30) == 69
    assert 1.5 < time.monotonic() - began < 20
    assert "postgres not ready after 2s" in d.events("supervisor.gave_up")[0]["why"]


def test_connection_cut_twice_is_retried_and_succeeds(run_daemon, database: str, proxy) -> None:
    """A migration whose connection is cut twice is retried with backoff and then succeeds."""
    pg = proxy(server_port(database, 5432))
    pg.open()
    pg.cut_next = 2
    d = run_daemon(config(database, job_db=with_port(database, pg.port)))
    d.wait_unit("migrate", state="succeeded", timeout=60)
    retries = d.events("job.retrying", job="migrate")
    assert [r["cause"] for r in retries] == ["connection lost", "connection lost"]
    assert d.unit("migrate")["attempts"] == 3
    assert migration_runs(database) == 1


def broken_migrations(tmp_path: Path) -> Path:
    """A copy of the example's migrations whose second revision has an SQL error."""
    target = tmp_path / "broken"
    shutil.copytree(WEBSTACK, target, ignore=shutil.ignore_patterns("__pycache__"))
    bad = target / "migrations" / "versions" / "0002_migration_log.py"
    bad.write_text(
        bad.read_text().replace(
            'op.create_index("events_source"', 'op.execute("SELECT * FROM nope")\n    op.create_index("events_source"'
        )
    )
    return target


def test_sql_error_fails_at_once_and_continue_starts_degraded(run_daemon, database: str, tmp_path: Path) -> None:
    """An error in the migration itself is not retried; on_failure = continue starts the programs."""
    d = run_daemon(config(database, alembic_dir=broken_migrations(tmp_path)))
    job = d.wait_unit("migrate", state="failed", timeout=60)
    assert job["attempts"] == 1
    assert "not retried" in d.events("job.failed", job="migrate")[0]["hint"]
    d.wait_unit("app", state="running")
    status = subprocess.run(
        [PY, "-m", "supervisor", "status", "--socket", d.socket], capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 1 and "job migrate failed" in status.stdout


def test_sql_error_with_on_failure_exit_gives_69(run_daemon, database: str, tmp_path: Path) -> None:
    """With on_failure = exit, a failed migration makes run exit 69 and starts no program."""
    d = run_daemon(config(database, alembic_dir=broken_migrations(tmp_path), on_failure="exit"))
    assert d.wait_exit(60) == 69
    assert not d.events("program.started")


def test_unreadable_migration_scripts_fail_the_job_with_the_reason(run_daemon, database: str, tmp_path: Path) -> None:
    """Scripts that alembic cannot load fail the job at once, saying why; nothing is migrated."""
    broken = tmp_path / "noscripts"
    broken.mkdir()
    (broken / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/missing\n")
    # An empty database needs no comparison: alembic runs at once and says what is wrong.
    d = run_daemon(config(database, alembic_dir=broken))
    job = d.wait_unit("migrate", state="failed", timeout=60)
    assert "Path doesn't exist" in job["error"] and job["attempts"] == 1
    d.wait_unit("app", state="running")  # on_failure = continue
    # A database at some revision must be compared with the scripts first: that fails before any attempt.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001')")
    d2 = run_daemon(config(database, alembic_dir=broken))
    job = d2.wait_unit("migrate", state="failed", timeout=60)
    assert "cannot read the migration scripts" in job["error"] and job["attempts"] == 0


def test_three_replicas_migrate_exactly_once(run_daemon, database: str) -> None:
    """Three supervisors at once: one migrates under the lock; the others wait, then skip."""
    slow = '["sh", "-c", "sleep 1.5 && exec alembic upgrade head"]'
    daemons = [run_daemon(config(database, command=slow)) for _ in range(3)]
    for d in daemons:
        d.wait_unit("app", state="running", timeout=60)
    assert migration_runs(database) == 1
    outcomes = sorted(d.unit("migrate")["state"] for d in daemons)
    assert outcomes == ["skipped", "skipped", "succeeded"]
    waited = [e for d in daemons for e in d.events("job.lock_waiting")]
    assert waited and all(e.get("holder", "").startswith("supervisor-migrate") for e in waited if "holder" in e)
    skipped = [e for d in daemons for e in d.events("job.skipped")]
    assert all("after the lock" in e["why"] for e in skipped)


def test_sigkilled_holder_does_not_block_the_next(run_daemon, database: str) -> None:
    """A supervisor SIGKILLed while holding the lock leaves no stale lock behind."""
    holder = run_daemon(config(database, command='["sh", "-c", "sleep 60 && exec alembic upgrade head"]'))
    holder.wait_event("job.lock_acquired")
    holder.proc.kill()
    holder.proc.wait()
    began = time.monotonic()
    nxt = run_daemon(config(database))
    nxt.wait_unit("migrate", state="succeeded", timeout=60)
    assert time.monotonic() - began < 30
    assert migration_runs(database) == 1


def migrate_cli(conf: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `supervisor migrate`."""
    # The caller's environment as given: merging os.environ back would bring DATABASE_URL back.
    full = dict(os.environ if env is None else env)
    full["PATH"] = f"{Path(PY).parent}:{full['PATH']}"  # alembic, as in the container's PATH
    return subprocess.run(
        [PY, "-m", "supervisor", "migrate", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
    )


def test_migrate_command_skips_at_head_and_refuses_a_database_ahead(database: str, tmp_path: Path) -> None:
    """`migrate` exits 0; again, it skips without the lock; a database ahead of the code exits 69."""
    conf = tmp_path / "m.toml"
    conf.write_text(f'[supervisor]\nlog_format = "json"\nsocket = "{tmp_path}/s.sock"\n' + config(database))
    first = migrate_cli(conf)
    assert first.returncode == 0, first.stdout[-2000:]
    second = migrate_cli(conf)
    assert second.returncode == 0
    assert "job.skipped" in second.stdout and "job.lock_acquired" not in second.stdout
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    ahead = migrate_cli(conf)
    assert ahead.returncode == 69
    assert "ahead of the code" in ahead.stdout


def test_old_entrypoint_variables(database: str, tmp_path: Path, proxy) -> None:
    """DB_HOST/DB_PORT address Postgres when no URL is set; ALEMBIC_CMD=true skips the migration."""
    conf = ROOT / "conf" / "supervisor.toml"
    name = database.rsplit("/", 1)[1]
    closed = proxy(5432)  # never opened: nothing listens on its port
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    base.update(PGUSER="postgres", PGDATABASE=name, SUPERVISOR_SOCKET=str(tmp_path / "s.sock"), LOG_FORMAT="json")
    wait = [PY, "-m", "supervisor", "wait", "--config", str(conf), "--timeout", "2"]
    good = subprocess.run(
        wait, env={**base, "DB_HOST": "127.0.0.1", "DB_PORT": "5432"}, capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stdout[-2000:]
    bad = subprocess.run(
        wait,
        env={**base, "DB_HOST": "127.0.0.1", "DB_PORT": str(closed.port)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 69
    skipped = migrate_cli(conf, env={**base, "DB_HOST": "127.0.0.1", "DB_PORT": "5432", "ALEMBIC_CMD": "true"})
    assert skipped.returncode == 0 and "ALEMBIC_CMD=true" in skipped.stdout
    migrated = migrate_cli(conf, env={**base, "DB_HOST": "127.0.0.1", "DB_PORT": "5432"})
    assert migrated.returncode == 0, migrated.stdout[-2000:]
    assert migration_runs(database) == 1


def test_alembic_cmd_is_run_as_given_even_at_head(database: str, tmp_path: Path) -> None:
    """ALEMBIC_CMD="alembic downgrade base" runs at head (only upgrades skip there) and empties alembic_version."""
    conf = tmp_path / "m.toml"
    conf.write_text(f'[supervisor]\nlog_format = "json"\nsocket = "{tmp_path}/s.sock"\n' + config(database))
    assert migrate_cli(conf).returncode == 0
    with psycopg.connect(database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    env = {**os.environ, "ALEMBIC_CMD": "alembic downgrade base"}
    down = migrate_cli(conf, env=env)
    assert down.returncode == 0, down.stdout[-2000:]
    assert "job.skipped" not in down.stdout and "job.succeeded" in down.stdout
    with psycopg.connect(database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)


def test_a_start_at_head_reads_the_cached_heads_instead_of_the_scripts(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper caches the heads; the next start decides from the cache (a planted head proves it)."""
    from supervisor.stack import migrations

    conf = tmp_path / "m.toml"
    conf.write_text(f'[supervisor]\nlog_format = "json"\nsocket = "{tmp_path}/s.sock"\n' + config(database))
    env = {**os.environ, "SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")}
    first = migrate_cli(conf, env=env)
    assert first.returncode == 0, first.stdout[-2000:]
    assert list((tmp_path / "cache").glob("alembic-heads-*.json")), "the helper cached nothing"
    ini = str(WEBSTACK / "alembic.ini")
    monkeypatch.setenv("SUPERVISOR_CACHE_DIR", env["SUPERVISOR_CACHE_DIR"])
    assert migrations.cached_heads(ini, str(WEBSTACK)) == ({"0001", "0002", "0003"}, ("0003",))
    migrations.store_heads(ini, {"0001", "0002", "0003", "9999"}, ("9999",), str(WEBSTACK))
    second = migrate_cli(conf, env=env)
    assert second.returncode == 0, second.stdout[-2000:]
    assert "job.skipped" not in second.stdout and "job.succeeded" in second.stdout
