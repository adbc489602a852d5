"""Configuration errors name the file, the key and the problem; valid files yield a plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import load
from supervisor.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, environ=env or {})
    assert str(path) in str(info.value)
    return info.value.problems


def test_unknown_keys_are_errors_at_every_depth(tmp_path: Path) -> None:
    """Unknown keys anywhere are rejected and named with their full path."""
    found = problems(
        tmp_path,
        """
[supervisor]
sokcet = "x"
[programs.web]
command = ["true"]
restart = { policy = "always", backof = {} }
""",
    )
    keys = {k for k, _ in found}
    assert keys == {"supervisor.sokcet", "programs.web.restart.backof"}
    assert all(what == "unknown key" for _, what in found)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """One error lists every problem, each with its key and what is wrong."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.web]
command = []
stop_timeout = "soon"
stop_signal = "SIGNOPE"
restart = { policy = "sometimes" }
max_memory = "lots"
""",
        )
    )
    assert "at least 1 item" in found["programs.web.command"]
    assert "not a duration" in found["programs.web.stop_timeout"]
    assert "not a signal name" in found["programs.web.stop_signal"]
    assert "'always', 'on-failure' or 'never'" in found["programs.web.restart.policy"]
    assert "not a size" in found["programs.web.max_memory"]


def test_missing_command_is_named(tmp_path: Path) -> None:
    """A program without a command says the key is missing."""
    assert problems(tmp_path, "[programs.web]\n") == [("programs.web.command", "required key is missing")]


def test_unknown_dependency_and_cycle(tmp_path: Path) -> None:
    """depends_on naming nothing, or forming a cycle, is an error naming both sides."""
    found = problems(
        tmp_path,
        """
[programs.a]
command = ["true"]
depends_on = ["ghost"]
""",
    )
    assert found == [("programs.a.depends_on[0]", "unknown unit 'ghost'")]
    found = problems(
        tmp_path,
        """
[programs.a]
command = ["true"]
depends_on = ["b"]
[programs.b]
command = ["true"]
depends_on = ["a"]
""",
    )
    assert found[0][0] == "depends_on" and "a -> b -> a" in found[0][1]


def test_health_check_needs_exactly_one_kind(tmp_path: Path) -> None:
    """A health table with two kinds, or a file check without max_age, is refused."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.a]
command = ["true"]
health = { http = "http://x/", tcp = "x:1" }
[programs.b]
command = ["true"]
health = { file = "/tmp/hb" }
""",
        )
    )
    assert "exactly one" in found["programs.a.health"]
    assert "needs max_age" in found["programs.b.health"]


def test_lock_must_name_a_postgres_dependency(tmp_path: Path) -> None:
    """A job's lock names a postgres dependency."""
    found = problems(
        tmp_path,
        """
[dependencies.cache]
type = "redis"
[jobs.migrate]
command = ["true"]
lock = "cache"
""",
    )
    assert found == [("jobs.migrate.lock", "'cache' is not a postgres dependency")]


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    """Unparseable TOML and a missing file are configuration errors too."""
    assert "not valid TOML" in problems(tmp_path, "[programs\n")[0][1]
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.toml", environ={})
    assert info.value.problems == [("", "file not found")]


def test_interpolation_defaults_and_required(tmp_path: Path) -> None:
    """${VAR}, ${VAR:-default} and ${VAR:?message} expand from the environment."""
    path = write(
        tmp_path,
        """
[programs.web]
command = ["uvicorn", "--port", "${PORT:-8000}", "${EXTRA}"]
environment = { DSN = "${DATABASE_URL:-postgresql://localhost/db}" }
""",
    )
    loaded = load(path, environ={"PORT": "9000"})
    assert loaded.config.programs["web"].command == ["uvicorn", "--port", "9000", ""]
    assert loaded.config.programs["web"].environment["DSN"] == "postgresql://localhost/db"
    found = problems(tmp_path, '[programs.web]\ncommand = ["${TOKEN:?set TOKEN}"]\n')
    assert found == [("programs.web.command[0]", "${TOKEN} is not set: set TOKEN")]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """SUPERVISOR_<TABLE>__<KEY> variables override the file (pydantic-settings)."""
    path = write(tmp_path, '[supervisor]\nhttp = "127.0.0.1:1"\n[programs.web]\ncommand = ["true"]\n')
    loaded = load(path, environ={"SUPERVISOR_SUPERVISOR__HTTP": "", "SUPERVISOR_PROGRAMS__WEB__STOP_TIMEOUT": "3s"})
    assert loaded.config.supervisor.http == ""
    assert loaded.config.programs["web"].stop_timeout == 3.0


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    """cwd, alembic_config and the socket resolve against the file's own directory."""
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "s.toml"
    path.write_text("""
[supervisor]
socket = "run/s.sock"
[dependencies.pg]
type = "postgres"
[jobs.migrate]
command = ["alembic", "upgrade", "head"]
alembic_config = "../app/alembic.ini"
lock = "pg"
[programs.web]
command = ["true"]
cwd = "../app"
""")
    cfg = load(path, environ={}).config
    assert cfg.supervisor.socket == str(tmp_path / "conf" / "run" / "s.sock")
    assert cfg.programs["web"].cwd == str(tmp_path / "app")
    assert cfg.jobs["migrate"].alembic_config == str(tmp_path / "app" / "alembic.ini")


def test_plan_orders_by_dependency_and_warns_about_slow_ladders(tmp_path: Path) -> None:
    """The plan lists levels in start order; ladders longer than shutdown_timeout warn."""
    path = write(
        tmp_path,
        """
[supervisor]
shutdown_timeout = "10s"
[dependencies.pg]
type = "postgres"
[jobs.migrate]
command = ["true"]
depends_on = ["pg"]
[programs.web]
command = ["true"]
depends_on = ["migrate"]
stop_timeout = "8s"
[programs.worker]
command = ["true"]
depends_on = ["web"]
stop_timeout = "8s"
""",
    )
    loaded = load(path, environ={})
    assert loaded.plan == [["pg"], ["migrate"], ["web"], ["worker"]]
    assert loaded.warnings and "16s" in loaded.warnings[0]


def test_entrypoint_variables(tmp_path: Path) -> None:
    """DB_HOST/DB_PORT give a postgres URL when none is set; ALEMBIC_CMD replaces the migration."""
    path = write(
        tmp_path,
        """
[dependencies.postgres]
type = "postgres"
[jobs.migrate]
command = ["alembic", "upgrade", "head"]
depends_on = ["postgres"]
""",
    )
    cfg = load(path, environ={"DB_HOST": "db", "DB_PORT": "6543", "ALEMBIC_CMD": "true"}).config
    assert cfg.dependencies["postgres"].url == "postgresql://db:6543/"
    assert cfg.jobs["migrate"].command == ["true"]
