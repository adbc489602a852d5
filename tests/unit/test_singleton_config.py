"""A singleton's configuration: it names a postgres dependency, and never runs start-first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.config import load
from supervisor.machine.errors import ConfigError

BASE = """
[dependencies.db]
type = "postgres"
[dependencies.cache]
type = "redis"
"""


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "supervisor.toml"
    path.write_text(BASE + text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    return info.value.problems


def test_singleton_names_a_postgres_dependency(tmp_path: Path) -> None:
    """An unknown or non-postgres dependency is refused, naming the key."""
    found = problems(
        tmp_path,
        """
[programs.beat]
command = ["true"]
singleton = "cache"
[programs.other]
command = ["true"]
singleton = "nowhere"
""",
    )
    assert found == [
        ("programs.beat.singleton", "'cache' is not a postgres dependency"),
        ("programs.other.singleton", "'nowhere' is not a postgres dependency"),
    ]


def test_a_singleton_is_never_start_first(tmp_path: Path) -> None:
    """start-first would run the old and the new copy side by side."""
    found = problems(
        tmp_path,
        """
[programs.beat]
command = ["true"]
listen = "127.0.0.1:8000"
notify = true
singleton = "db"
restart = { order = "start-first" }
""",
    )
    assert found == [("programs.beat.restart.order", "start-first would run two copies of a singleton")]


def test_singleton_defaults_and_fence(tmp_path: Path) -> None:
    """No singleton by default; the fence is 10 s and must be positive."""
    path = tmp_path / "supervisor.toml"
    path.write_text(BASE + '[programs.beat]\ncommand = ["true"]\nsingleton = "db"\n')
    beat = load(path, environ={}).config.programs["beat"]
    assert (beat.singleton, beat.singleton_key, beat.singleton_fence) == ("db", None, 10.0)
    found = problems(tmp_path, '[programs.beat]\ncommand = ["true"]\nsingleton = "db"\nsingleton_fence = "0s"\n')
    assert [key for key, _ in found] == ["programs.beat.singleton_fence"]


def test_check_exits_78_naming_the_key(tmp_path: Path) -> None:
    """`supervisor check` on a singleton of a redis dependency exits 78 and names file and key."""
    path = tmp_path / "supervisor.toml"
    path.write_text(BASE + '[programs.beat]\ncommand = ["true"]\nsingleton = "cache"\n')
    out = subprocess.run(
        [sys.executable, "-m", "supervisor", "check", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 78, out.stderr
    assert f"{path}: programs.beat.singleton:" in out.stderr


def test_a_singleton_is_never_started_before_the_engine(tmp_path: Path) -> None:
    """The early start skips a singleton, even one with no depends_on: it must hold its lock first."""
    from supervisor.host.prestart import eligible

    path = tmp_path / "supervisor.toml"
    path.write_text(
        BASE + '[programs.beat]\ncommand = ["true"]\nsingleton = "db"\n[programs.web]\ncommand = ["true"]\n'
    )
    programs = load(path, environ={}).config.programs
    assert (eligible(programs["beat"]), eligible(programs["web"])) == (False, True)
