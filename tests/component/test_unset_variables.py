"""An unset ``${VAR}`` without a default warns in `check`, at `run`'s start (from the cache too) and at reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.config import compiled
from supervisor.stack import limits
from tests.conftest import wait_until

VAR = "SUPERVISOR_TEST_UNSET_PORT"
OTHER = "SUPERVISOR_TEST_UNSET_OTHER"
TEXT = f"""
[programs.web]
command = ["sh", "-c", "exec sleep 300", "sh", "--port", "${{{VAR}}}"]
"""
WARNING = f"programs.web.command[5]: ${{{VAR}}} is not set: it becomes an empty string"
# Validates the file in the daemon's own environment first, so that `run` reads the result from the cache.
WARM = ("sh", "-c", '"$1" -m supervisor check --config "$6" >/dev/null && exec "$@"', "sh")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """This environment without the variables, with a private cache, as `check` and `run` key it."""
    environ = {k: v for k, v in os.environ.items() if k not in (VAR, OTHER)}
    environ["SUPERVISOR_CACHE_DIR"] = str(tmp_path / "cache")
    limits.export(environ)
    return environ


def test_check_prints_the_warning_and_passes(tmp_path: Path, env: dict[str, str]) -> None:
    """`check` exits 0 and prints the variable, the key and the way out."""
    path = tmp_path / "supervisor.toml"
    path.write_text(TEXT)
    argv = [sys.executable, "-m", "supervisor", "check", "--config", str(path)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"warning: {WARNING}; set it, or give it a default: ${{{VAR}:-VALUE}}\n" in out.stdout, out.stdout


def test_the_warning_comes_back_from_the_cache_and_a_set_variable_is_another_entry(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A cached result keeps its warning; the variable set (even to "") is another key, without it."""
    path = tmp_path / "supervisor.toml"
    path.write_text(TEXT)
    assert compiled.load(path, env).warnings[0].startswith(WARNING)
    hit = compiled.cached(path, env)
    assert hit is not None and hit.warnings[0].startswith(WARNING)
    for value in ("8000", ""):
        other = {**env, VAR: value}
        assert compiled.cached(path, other) is None
        assert compiled.load(path, other).warnings == []
        assert compiled.cached(path, other) is not None  # stored, and still without the warning
    assert compiled.cached(path, env) == hit


def test_run_logs_the_warning_at_a_start_from_the_cache_and_at_reload(run_daemon, env: dict[str, str]) -> None:
    """config.warning names the variable at a start whose file came from the cache, and again at a reload."""
    d = run_daemon(TEXT, env=env, prefix=WARM)
    assert d.wait_event("supervisor.starting")["config_from"] == "cache"
    d.wait_unit("web", state="running")
    assert [e["detail"] for e in d.events("config.warning") if e["detail"].startswith(WARNING)], d.tail()
    d.config.write_text(d.config.read_text().replace("--port", f"${{{OTHER}}}"))
    d.signal(signal.SIGHUP)
    d.wait_event("config.reloaded")
    other = f"programs.web.command[4]: ${{{OTHER}}} is not set"
    wait_until(
        lambda: [e for e in d.events("config.warning") if e["detail"].startswith(other)],
        15,
        "the reload's warning",
        seen=d.tail,
    )
