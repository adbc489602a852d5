"""Public supervisord, Procfile and Compose files of Django/FastAPI + Celery projects convert, check and run.

The files are in tests/data/import/ (SOURCES.md names each one's repository, commit and license).
Each converts to a configuration that validates. Their own commands (gunicorn, a Django
project's manage.py, celery with an app that is not here) cannot run on this machine, so the
test replaces each unit's command by a stand-in, keeps every other key the draft carried
(dependencies probed for real, jobs before programs, env files, restart and stop policy), and
runs the result under a real daemon. A Procfile whose commands exist here runs as drafted.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from supervisor.adopt.draft import key, value
from supervisor.cli import main
from supervisor.config import load
from tests.conftest import PROGRAMS, PY, wait_until
from tests.integration.conftest import REDIS_URL

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "import"
REAL = sorted(p.name for p in DATA.iterdir() if p.is_file() and p.name != "SOURCES.md")


def draft(source: Path, out: Path, *args: str) -> str:
    """Run `supervisor import SOURCE -o OUT` in this process; return the text it wrote."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["import", str(source), "-o", str(out), *args])
    assert code == 0, err.getvalue()
    return out.read_text()


def required_variables(text: str) -> dict[str, str]:
    """A value for each ${VAR:?message} of a draft, as a deployment would set them."""
    return {name: "set" for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text)}


def dump(doc: dict[str, Any]) -> str:
    """Write the tables back as TOML (comments are gone: this copy is only for running)."""
    lines = []
    for table, units in doc.items():
        for name, keys in units.items():
            lines.append(f"[{table}.{key(name)}]")
            lines += [f"{key(k)} = {value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def stand_ins(doc: dict[str, Any], where: Path) -> dict[str, Any]:
    """Replace each command by one that runs here; drop what names this machine's absent paths and users."""
    sleeper = [PY, str(PROGRAMS / "sleeper.py")]
    for table, units in doc.items():
        for unit in units.values():
            if table == "programs":
                unit["command"] = sleeper
            elif table == "jobs":
                unit["command"] = ["true"]
            else:
                continue
            unit.pop("user", None)
            if "cwd" in unit and not Path(unit["cwd"]).is_dir():
                del unit["cwd"]
            files = []
            for entry in unit.get("env_file", []):
                path = where / entry.removeprefix("-")
                path.touch()  # the project's env files, empty here
                files.append(str(path))
            if files:
                unit["env_file"] = files
    return doc


@pytest.mark.parametrize("name", REAL)
def test_each_real_file_converts_checks_and_runs(name: str, tmp_path: Path, database: str, run_daemon) -> None:
    """The draft of each file validates; with stand-in commands it passes `check` and its units all come up."""
    text = draft(DATA / name, tmp_path / "drafted.toml")
    env = {**required_variables(text), "DATABASE_URL": database, "REDIS_URL": REDIS_URL}
    load(tmp_path / "drafted.toml", environ=env)  # the draft as written validates
    doc = tomllib.loads(text)
    assert doc.get("programs") or doc.get("jobs") or name == "celery-supervisord.conf", text
    runnable = tmp_path / "runnable.toml"
    runnable.write_text(dump(stand_ins(doc, tmp_path)))
    check = subprocess.run(
        [PY, "-m", "supervisor", "check", str(runnable)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")},
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    if not doc.get("programs"):
        return  # celery's supervisord.conf holds no program: nothing to run
    daemon = run_daemon(runnable.read_text(), env=env)
    status = wait_until(
        lambda: (s := daemon.status())["supervisor"]["ready"] and s, 60, f"{name} to come up", seen=daemon.tail
    )
    states = {u["name"]: u["state"] for u in status["units"]}
    want = {"dependencies": "ready", "jobs": "succeeded", "programs": "running"}
    assert states == {n: want[t] for t, units in doc.items() for n in units}, daemon.tail()


def test_a_procfile_whose_commands_exist_runs_as_drafted(tmp_path: Path, run_daemon) -> None:
    """web: python -m http.server $PORT, drafted with ${PORT}, serves on that port with no edit."""
    port = _free_port()
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"release: {sys.executable} -c 'print(\"migrated\")'\n"
        f"web: {sys.executable} -m http.server $PORT --bind 127.0.0.1\n"
        f"worker: {sys.executable} {PROGRAMS / 'sleeper.py'}\n"
    )
    text = draft(procfile, tmp_path / "drafted.toml")
    assert f'"{sys.executable}", "-m", "http.server", "${{PORT}}"' in text
    check = subprocess.run(
        [PY, "-m", "supervisor", "check", str(tmp_path / "drafted.toml")],
        capture_output=True,
        text=True,
        env={**os.environ, "PORT": str(port), "SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")},
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    daemon = run_daemon(text, env={"PORT": str(port)})
    daemon.wait_unit("release", 30, state="succeeded")
    daemon.wait_unit("web", 30, state="running")
    body = wait_until(lambda: _get(f"http://127.0.0.1:{port}/"), 30, "the drafted web program to serve")
    assert "Directory listing" in body
    # The worker starts beside web, not after it: wait for its own start window to pass.
    daemon.wait_unit("worker", 30, state="running")


def _get(url: str) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
