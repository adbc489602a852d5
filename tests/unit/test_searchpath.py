"""Programs find the commands installed beside the supervisor: its scripts directory ends their default PATH."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from supervisor.config.searchpath import default_path, scripts_dir
from supervisor.host.process import child_environment

ROOT = Path(__file__).resolve().parents[2]


def test_scripts_directory_comes_after_the_inherited_path_once() -> None:
    """The inherited PATH keeps its order and wins; the scripts directory is added last, and only once."""
    ours = scripts_dir()
    assert ours == sysconfig.get_path("scripts")
    assert default_path("/usr/bin:/bin") == f"/usr/bin:/bin:{ours}"
    assert default_path(f"{ours}:/usr/bin") == f"{ours}:/usr/bin"
    assert default_path(None) == f"{os.defpath}:{ours}"


def test_a_unit_that_sets_path_gets_exactly_its_own() -> None:
    """An environment or env_file PATH replaces the default, scripts directory and all."""
    env = child_environment({"PATH": "/usr/bin", "HOME": "/root"}, {"PATH": "/opt/tools"})
    assert env["PATH"] == "/opt/tools"
    env = child_environment({"PATH": "/usr/bin", "NOTIFY_SOCKET": "/x"}, {"A": "1"})
    assert env == {"PATH": f"/usr/bin:{scripts_dir()}", "A": "1"}


def test_check_finds_the_virtualenvs_commands_without_it_on_path(tmp_path: Path) -> None:
    """`.venv/bin/supervisor check conf/supervisor.toml` passes with only /usr/bin:/bin on PATH."""
    supervisor = Path(sys.executable).with_name("supervisor")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [str(supervisor), "check", "--config", str(ROOT / "conf/supervisor.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
