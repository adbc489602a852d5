"""`check` and `run` refuse what would only fail at spawn time: cwd, user, executable, files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.cli import main
from supervisor.config import load, runnable
from supervisor.config.envfile import EnvFileError, load_env_files, unit_environment


def found(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return dict(runnable.problems(load(path, environ={}).config, environ or {"PATH": os.defpath}))


def test_every_unrunnable_unit_is_listed_with_its_key(tmp_path: Path) -> None:
    """A missing cwd, an unknown user, an executable not on PATH and a missing alembic_config are all named."""
    problems = found(
        tmp_path,
        """
[dependencies.pg]
type = "postgres"
[jobs.migrate]
command = ["true"]
alembic_config = "nowhere/alembic.ini"
lock = "pg"
[programs.web]
command = ["no-such-binary-here"]
cwd = "missing-dir"
user = "no-such-user-here"
[programs.check]
command = ["true"]
health = { exec = ["/no/such/probe"] }
""",
    )
    assert problems == {
        "jobs.migrate.alembic_config": f"{tmp_path}/nowhere/alembic.ini does not exist",
        "programs.web.cwd": f"{tmp_path}/missing-dir does not exist",
        "programs.web.user": "no such user: 'no-such-user-here'",
        "programs.web.command[0]": "'no-such-binary-here' is not found on the supervisor's PATH"
        " or its scripts directory",
        "programs.check.health.exec[0]": "/no/such/probe: no such file",
    }


def test_executables_resolve_on_the_program_own_path(tmp_path: Path) -> None:
    """A command is looked up on its environment's PATH when set, else on the supervisor's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    text = f'[programs.own]\ncommand = ["mytool"]\nenvironment = {{ PATH = "{bin_dir}" }}\n'
    assert found(tmp_path, text) == {}
    assert (
        "not found on the supervisor's PATH"
        in found(tmp_path, '[programs.x]\ncommand = ["mytool"]\n')["programs.x.command[0]"]
    )
    assert found(tmp_path, '[programs.x]\ncommand = ["mytool"]\n', {"PATH": str(bin_dir)}) == {}
    tool.chmod(stat.S_IRUSR | stat.S_IWUSR)
    not_executable = found(tmp_path, f'[programs.x]\ncommand = ["{tool}"]\n')
    assert not_executable == {"programs.x.command[0]": f"{tool}: not executable"}


def test_env_files_must_exist_unless_optional(tmp_path: Path) -> None:
    """A missing env_file is a problem; one written "-path" may be missing."""
    (tmp_path / "present.env").write_text("A=1\n")
    text = '[programs.web]\ncommand = ["true"]\nenv_file = ["present.env", "-optional.env", "required.env"]\n'
    assert found(tmp_path, text) == {"programs.web.env_file[2]": f"env_file {tmp_path}/required.env does not exist"}


def test_env_file_values_sit_below_environment(tmp_path: Path) -> None:
    """Files are read in order, later ones win, and the unit's environment wins over them all."""
    (tmp_path / "a.env").write_text("# comment\nA=from-a\nB=from-a\nexport C='quoted value'\n")
    (tmp_path / "b.env").write_text("B=from-b\nD=from-b\n")
    files = [str(tmp_path / "a.env"), f"-{tmp_path}/missing.env", str(tmp_path / "b.env")]
    assert load_env_files(files) == {"A": "from-a", "B": "from-b", "C": "quoted value", "D": "from-b"}
    assert unit_environment(files, {"D": "mine"})["D"] == "mine"
    with pytest.raises(EnvFileError, match=r"missing\.env does not exist"):
        load_env_files([str(tmp_path / "missing.env")])


def test_check_exits_78_listing_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check` on an unrunnable file exits 78 and names the file and each key."""
    path = tmp_path / "s.toml"
    path.write_text('[programs.web]\ncommand = ["no-such-binary-here"]\ncwd = "gone"\n')
    assert main(["check", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert f"{path}: programs.web.cwd: " in err and f"{path}: programs.web.command[0]: " in err


def test_check_states_when_start_first_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plan printed by `check` says which programs restart start-first, and how readiness is known."""
    path = tmp_path / "s.toml"
    path.write_text(
        '[programs.web]\ncommand = ["true"]\nlisten = "127.0.0.1:8000"\nnotify = true\n'
        'restart = { order = "start-first" }\n[programs.worker]\ncommand = ["true"]\n'
    )
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "web: restarts start-first" in out and "READY=1" in out
    assert "worker: restarts" not in out


def test_run_refuses_a_health_url_without_scheme(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run` exits 78 naming health.http when it lacks http://, before starting anything."""
    path = tmp_path / "s.toml"
    path.write_text(
        f'[supervisor]\nsocket = "{tmp_path}/s.sock"\n[programs.web]\ncommand = ["true"]\n'
        'health = { http = "127.0.0.1:8000/livez" }\n'
    )
    assert main(["run", "--config", str(path)]) == 78
    assert f"{path}: programs.web.health.http: " in capsys.readouterr().err
    assert not (tmp_path / "s.sock").exists()


def test_migrate_checks_its_jobs_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`migrate` refuses a job that cannot run (78) and ignores programs it will not start."""
    path = tmp_path / "s.toml"
    path.write_text(
        f'[supervisor]\nsocket = "{tmp_path}/s.sock"\n[jobs.migrate]\ncommand = ["true"]\ncwd = "gone"\n'
        '[programs.web]\ncommand = ["no-such-binary-here"]\n'
    )
    assert main(["migrate", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert f"{path}: jobs.migrate.cwd: " in err and "programs.web" not in err


def test_a_health_file_in_a_directory_that_cannot_be_written_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only root with no writable /tmp: the health file's key and directory are named, not a crash later."""
    beat = tmp_path / "state"
    beat.mkdir()
    text = f'[programs.worker]\ncommand = ["true"]\nhealth = {{ file = "{beat}/hb", max_age = "30s" }}\n'
    assert found(tmp_path, text) == {}
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(beat) else real(p, mode))
    problems = found(tmp_path, text)
    assert list(problems) == ["programs.worker.health.file"]
    assert f"{beat} is not writable" in problems["programs.worker.health.file"]
    # A directory that does not exist yet may be the program's to make.
    later = f'[programs.worker]\ncommand = ["true"]\nhealth = {{ file = "{tmp_path}/later/hb", max_age = "30s" }}\n'
    assert found(tmp_path, later) == {}
