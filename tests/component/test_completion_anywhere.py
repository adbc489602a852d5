"""Completion finds unit names as `status` finds the daemon: from any directory, not only beside the file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import PY, wait_until

# No http address: the default one (9001) may be taken, by another test or a demo.
UNITS = """
[supervisor]
http = ""
[programs.web]
command = ["sleep", "300"]
[programs.worker]
command = ["sleep", "300"]
[jobs.once]
command = ["true"]
"""


def names(*args: str, cwd: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run([PY, "-m", "supervisor", "_names", *args], capture_output=True, text=True, cwd=cwd, env=env)
    return out.stdout.split()


def test_names_complete_from_another_directory(run_daemon, tmp_path: Path) -> None:
    """With no configuration in the current directory, the running daemon that status reaches gives the names."""
    config = tmp_path / "stack.toml"
    config.write_text(UNITS)
    daemon = run_daemon(None, argv=[PY, "-m", "supervisor", "run", "--config", str(config)])
    wait_until(lambda: daemon.status()["supervisor"]["ready"], 15, "the daemon to be ready", seen=daemon.tail)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_CONFIG", "SUPERVISOR_SOCKET")}
    found = names(cwd=elsewhere, env={**env, "SUPERVISOR_SOCKET": daemon.socket})
    assert sorted(found) == ["once", "web", "worker"]
    assert sorted(names("--programs", cwd=elsewhere, env={**env, "SUPERVISOR_SOCKET": daemon.socket})) == [
        "web",
        "worker",
    ]
    assert sorted(names("--programs", "--socket", daemon.socket, cwd=elsewhere, env=env)) == ["web", "worker"]
    # the bash function, run in that directory, offers them too
    script = subprocess.run([PY, "-m", "supervisor", "completion", "bash"], capture_output=True, text=True).stdout
    words = "COMP_WORDS=(supervisor restart ''); COMP_CWORD=2"
    driver = f"{script}\n{words}\n_supervisor; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    bash_env = {**env, "SUPERVISOR_SOCKET": daemon.socket, "PATH": f"{Path(PY).parent}:{env['PATH']}"}
    out = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, cwd=elsewhere, env=bash_env)
    assert sorted(out.stdout.split()) == ["all", "web", "worker"], out.stderr


def test_nothing_to_ask_completes_nothing(tmp_path: Path) -> None:
    """No file here and no daemon on the socket: no names, and no error on the terminal."""
    env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_CONFIG"}
    env["SUPERVISOR_SOCKET"] = str(tmp_path / "nobody.sock")
    out = subprocess.run([PY, "-m", "supervisor", "_names"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
