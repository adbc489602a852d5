"""As PID 1 of its own PID namespace (a container's init), the supervisor reaps everything."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.conftest import PY


def namespaces_allowed() -> bool:
    """Whether this machine lets us make a PID namespace (root, and not forbidden by a sandbox)."""
    if not shutil.which("unshare"):
        return False
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=10)
    return out.returncode == 0


pytestmark = pytest.mark.skipif(not namespaces_allowed(), reason="cannot create a PID namespace here")

ORPHANER = (
    "import os, sys, time\n"
    "middle = os.fork()\n"
    "if middle == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"  # a daemonizing double fork: the grandchild is nobody's but init's
    "        time.sleep(0.3)\n"
    "        os._exit(0)\n"
    "    os._exit(0)\n"
    "os.waitpid(middle, 0)\n"  # as a proper daemonize does: the only zombie left would be init's
    "time.sleep(0.1)\n"
    "print('forked', flush=True)\n"
    "time.sleep(1000)\n"
)


def test_pid_1_reaps_orphans_and_stops_cleanly(run_daemon, tmp_path: Path) -> None:
    """As PID 1, orphans of a program's tree come to the supervisor, which reaps them; SIGTERM exits 0."""
    script = tmp_path / "orphaner.py"
    script.write_text(ORPHANER)
    d = run_daemon(
        f"""
[programs.orphaner]
command = ["{PY}", "{script}"]
""",
        prefix=("unshare", "--pid", "--fork", "--mount-proc", "--kill-child"),
    )
    doc = d.wait_ready()
    assert doc["supervisor"]["pid"] == 1
    d.wait_event("process.orphan_reaped", timeout=15)
    init = psutil.Process(d.proc.pid).children()[0]  # unshare's child: our PID 1, seen from outside
    zombies = [c.pid for c in init.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == []
    init.send_signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    assert d.events("program.stopped", program="orphaner")
