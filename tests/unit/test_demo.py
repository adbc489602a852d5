"""`make demo` hands make's child over to the supervisor, and a second demo refuses before it says anything else."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_the_recipe_execs_so_that_makes_sigterm_reaches_the_supervisor() -> None:
    """The demo recipe's command line starts with exec: no shell stays between make and the supervisor."""
    out = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if "examples/demo.py" in line)
    assert line.startswith("exec "), line
    # demo.py itself ends in os.execv of the supervisor: the pid make signals is the supervisor's
    assert "os.execv(supervisor," in (ROOT / "examples/demo.py").read_text()


def demo(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_SOCKET", "PORT", "SUPERVISOR_HTTP")}
    # An unreachable database: a demo that got past the refusal would say so, and start.
    base.update(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none", STATE_DIR=str(tmp_path / "state"))
    return subprocess.run(
        [sys.executable, str(ROOT / "examples/demo.py")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_second_demo_refuses_before_the_banner(tmp_path: Path) -> None:
    """With a supervisor answering on the demo's socket, demo.py exits 69 having printed nothing but why."""
    path = str(tmp_path / "demo.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen()
        out = demo(
            tmp_path,
            SUPERVISOR_SOCKET=path,
            PORT=str(free_port()),
            SUPERVISOR_HTTP=f"127.0.0.1:{free_port()}",
        )
    assert out.returncode == 69, out.stdout + out.stderr
    assert out.stdout == "", "nothing of the banner comes before the refusal"
    assert f"a supervisor already answers on {path}" in out.stderr
    assert "SUPERVISOR_SOCKET=" in out.stderr and "STATE_DIR=" in out.stderr  # how to run one beside it


def test_a_port_in_use_is_refused_before_the_banner(tmp_path: Path) -> None:
    """A web port held by another process is named, and nothing starts."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = demo(
            tmp_path,
            SUPERVISOR_SOCKET=str(tmp_path / "free.sock"),
            PORT=str(port),
            SUPERVISOR_HTTP=f"127.0.0.1:{free_port()}",
        )
    assert out.returncode == 69, out.stdout + out.stderr
    assert out.stdout == ""
    assert f"127.0.0.1:{port} is in use" in out.stderr


def test_the_banners_export_line_gives_another_shell_the_demos_database(tmp_path: Path) -> None:
    """From any directory, after the banner's `export`, exec sees the demo's DATABASE_URL and finds the file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    url = "postgresql://postgres@127.0.0.1:5432/webstack demo's"  # quoting is the line's business
    line = module.exports({"DATABASE_URL": url, "STATE_DIR": str(tmp_path)}, Path(sys.executable).parent)
    script = f"{line}\nexec supervisor exec --no-wait --like web -- printenv DATABASE_URL STATE_DIR"
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STATE_DIR", "SUPERVISOR_CONFIG")}
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [url, str(tmp_path)]
