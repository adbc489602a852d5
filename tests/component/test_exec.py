"""``supervisor exec``: CMD runs in a program's environment, without a daemon, and is that process itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PY, wait_until

SHOW_ENV = "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd(), 'pid': os.getpid()}))"


def config(tmp_path: Path) -> Path:
    """A file whose first program has an env file, environment, and a cwd of its own."""
    (tmp_path / "app").mkdir()
    (tmp_path / "web.env").write_text("FROM_FILE=file\nBOTH=from-file\n")
    path = tmp_path / "supervisor.toml"
    path.write_text(f"""
[programs.web]
command = ["{PY}", "-c", "import time; time.sleep(60)"]
env_file = "web.env"
environment = {{ BOTH = "from-environment", APP_MODE = "web" }}
cwd = "app"
[programs.worker]
command = ["{PY}", "-c", "pass"]
environment = {{ APP_MODE = "worker" }}
""")
    return path


def supervisor_exec(path: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run ``supervisor exec`` with no daemon anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_SOCKET", "SUPERVISOR_CONFIG")}
    env["LEAKED_FROM_SHELL"] = "yes"
    argv = [PY, "-m", "supervisor", "exec", "-c", str(path), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, **kw)  # type: ignore[call-overload, no-any-return]


def test_the_command_gets_the_programs_environment_and_directory(tmp_path: Path) -> None:
    """The first program by default: its env file under its environment, its cwd, the supervisor's scripts on PATH."""
    path = config(tmp_path)
    done = supervisor_exec(path, "--", PY, "-c", SHOW_ENV)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    env = seen["env"]
    assert (env["FROM_FILE"], env["BOTH"], env["APP_MODE"]) == ("file", "from-environment", "web")
    assert env["LEAKED_FROM_SHELL"] == "yes"  # the base environment, as the daemon's own is for its programs
    assert str(Path(PY).parent) in env["PATH"].split(":")
    assert seen["cwd"] == str(tmp_path / "app")
    other = json.loads(supervisor_exec(path, "--like", "worker", "--", PY, "-c", SHOW_ENV).stdout)
    assert other["env"]["APP_MODE"] == "worker" and "FROM_FILE" not in other["env"]


def test_the_exit_code_is_the_commands(tmp_path: Path) -> None:
    """CMD exits 7: so does `supervisor exec`; a command not found is 127."""
    path = config(tmp_path)
    assert supervisor_exec(path, "--", "sh", "-c", "exit 7").returncode == 7
    missing = supervisor_exec(path, "--", "no-such-command-here")
    assert missing.returncode == 127 and "no-such-command-here" in missing.stderr


def test_an_unknown_like_is_exit_2_listing_the_programs(tmp_path: Path) -> None:
    """--like nope: exit 2, naming the programs there are; nothing runs."""
    done = supervisor_exec(config(tmp_path), "--like", "nope", "--", "touch", str(tmp_path / "ran"))
    assert done.returncode == 2
    assert "no program named 'nope'" in done.stderr and "web, worker" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_signals_and_stdin_reach_the_command_itself(tmp_path: Path) -> None:
    """The exec'd command is the very process started (same pid): SIGINT is its own to handle; stdin is its own."""
    path = config(tmp_path)
    script = (
        "import os, signal, sys; signal.signal(signal.SIGINT, lambda *a: sys.exit(42)); "
        "print(os.getpid(), sys.stdin.readline().strip(), flush=True); signal.pause()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_SOCKET", "SUPERVISOR_CONFIG")}
    proc = subprocess.Popen(
        [PY, "-m", "supervisor", "exec", "-c", str(path), "--", PY, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("hello\n")
        proc.stdin.flush()
        pid, word = proc.stdout.readline().split()
        assert (int(pid), word) == (proc.pid, "hello")
        wait_until(lambda: _sigint_handled(proc.pid), 10, "the command's SIGINT handler to be installed")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 42
    finally:
        proc.kill()
        proc.wait()


def _sigint_handled(pid: int) -> bool:
    """Whether process ``pid`` catches SIGINT (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def test_like_a_program_with_instances_runs_as_its_first(tmp_path: Path) -> None:
    """--like web, where web has instances: the environment web:0 gets, SUPERVISOR_INSTANCE included."""
    path = tmp_path / "supervisor.toml"
    path.write_text(
        '[programs.web]\ncommand = ["sleep", "1"]\ninstances = 3\n'
        'environment = { WHO = "web ${SUPERVISOR_INSTANCE}" }\n'
    )
    done = supervisor_exec(path, "--like", "web", "--", "sh", "-c", 'echo "$WHO/$SUPERVISOR_INSTANCE"')
    assert done.returncode == 0, done.stderr
    assert done.stdout == "web 0/0\n"
    second = supervisor_exec(path, "--like", "web:2", "--", "sh", "-c", 'echo "$WHO"')
    assert second.stdout == "web 2\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_the_command_runs_as_the_programs_user(tmp_path: Path) -> None:
    """A program with user = "nobody": the command runs as nobody, with nobody's HOME."""
    path = tmp_path / "supervisor.toml"
    path.write_text(f'[programs.web]\ncommand = ["sleep", "1"]\nuser = "nobody"\ncwd = "{tmp_path}"\n')
    done = supervisor_exec(path, "--", "sh", "-c", 'echo "$(id -un) $USER $HOME $PWD"')
    assert done.returncode == 0, done.stderr
    import pwd

    assert done.stdout.split() == ["nobody", "nobody", pwd.getpwnam("nobody").pw_dir, str(tmp_path)]
