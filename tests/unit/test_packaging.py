"""Deployment files: the systemd unit verifies; the Dockerfile lints; compose is well formed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """conf/systemd/supervisor.service passes systemd-analyze verify and says what SPEC requires."""
    text = (ROOT / "conf/systemd/supervisor.service").read_text()
    for line in ("Type=notify", "KillMode=mixed", "RestartPreventExitStatus=78", "WatchdogSec="):
        assert line in text
    stop = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))  # type: ignore[union-attr]
    assert stop > 30, "TimeoutStopSec must exceed the default shutdown_timeout (30s)"
    binary = Path(sys.executable).with_name("supervisor")
    unit = tmp_path / "supervisor.service"
    unit.write_text(text.replace("/opt/app/venv/bin/supervisor", str(binary)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
