"""env_file at the spawn sites, and job commands run as given."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PY, wait_until


def dump(out: Path) -> str:
    """A command that writes its environment to ``out``, then sleeps."""
    return f'["sh", "-c", "env > {out}.tmp && mv {out}.tmp {out}; exec sleep 100"]'


def read_env(out: Path) -> dict[str, str]:
    """The environment a child wrote."""
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


def test_program_env_files_are_read_at_each_start_below_environment(run_daemon, tmp_path: Path) -> None:
    """A program gets its env files in order, under its environment, re-read when it restarts."""
    (tmp_path / "base.env").write_text("SHARED=base\nONLY_BASE=1\nWINNER=base\n")
    (tmp_path / "local.env").write_text("WINNER=local\n")
    out = tmp_path / "env.txt"
    d = run_daemon(f"""
[programs.app]
command = {dump(out)}
env_file = ["{tmp_path}/base.env", "-{tmp_path}/missing.env", "{tmp_path}/local.env"]
environment = {{ SHARED = "environment" }}
""")
    wait_until(out.exists, 10, "the child to write its environment", seen=d.tail)
    env = read_env(out)
    assert (env["SHARED"], env["ONLY_BASE"], env["WINNER"]) == ("environment", "1", "local")
    (tmp_path / "local.env").write_text("WINNER=changed\n")
    out.unlink()
    assert d.client.request("POST", "/v1/programs/app/restart")[0] == 200
    wait_until(out.exists, 10, "the restarted child to write its environment", seen=d.tail)
    assert read_env(out)["WINNER"] == "changed"


def test_an_env_file_unreadable_at_start_fails_the_spawn_not_the_daemon(run_daemon, tmp_path: Path) -> None:
    """An env_file that cannot be read when the program starts is a spawn failure naming it; status answers."""
    env_file = tmp_path / "app.env"
    env_file.write_text("A=1\n")
    out = tmp_path / "env.txt"
    d = run_daemon(f"""
[supervisor]
on_fatal = "stay"
[programs.app]
command = {dump(out)}
env_file = "{env_file}"
restart = {{ backoff = {{ initial = "10ms" }}, max_restarts = 1 }}
""")
    d.wait_unit("app", state="running")
    env_file.unlink()
    env_file.mkdir()  # open() fails even for root
    d.client.request("POST", "/v1/programs/app/restart")
    unit = d.wait_unit("app", state="fatal")
    assert f"env_file {env_file} cannot be read" in unit["error"]
    assert d.proc.poll() is None and d.status()["supervisor"]["state"]


def test_job_env_file_and_a_literal_true_command(run_daemon, tmp_path: Path) -> None:
    """A job reads its env_file; a job whose own command is `true` runs and succeeds, it is not skipped."""
    (tmp_path / "job.env").write_text("FROM_FILE=yes\n")
    out = tmp_path / "job.txt"
    d = run_daemon(f"""
[jobs.setup]
command = ["sh", "-c", "echo $FROM_FILE > {out}"]
env_file = "{tmp_path}/job.env"
[jobs.noop]
command = ["true"]
""")
    d.wait_unit("setup", state="succeeded")
    assert out.read_text().strip() == "yes"
    noop = d.wait_unit("noop", state="succeeded")
    assert noop["attempts"] == 1
    assert not d.events("job.skipped")


def test_migrate_runs_a_file_true_and_skips_only_alembic_cmd_true(tmp_path: Path) -> None:
    """`migrate` runs a job whose command is `true`; ALEMBIC_CMD=true is what skips it."""
    conf = tmp_path / "m.toml"
    conf.write_text(f'[supervisor]\nsocket = "{tmp_path}/s.sock"\nlog_format = "json"\n')
    conf.write_text(conf.read_text() + '[jobs.migrate]\ncommand = ["true"]\n')
    argv = [PY, "-m", "supervisor", "migrate", "--config", str(conf)]
    ran = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0 and "job.succeeded" in ran.stdout and "job.skipped" not in ran.stdout
    env = {"PATH": "/usr/bin:/bin", "ALEMBIC_CMD": "true"}
    skipped = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert skipped.returncode == 0 and "job.skipped" in skipped.stdout and "ALEMBIC_CMD=true" in skipped.stdout
