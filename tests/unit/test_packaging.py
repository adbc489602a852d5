"""Deployment files: the systemd unit verifies; the Dockerfile lints; compose is well formed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_systemd_unit_says_what_the_product_requires() -> None:
    """conf/systemd/stack-supervisor.service is a notify unit that stops as the daemon needs.

    `make lint` runs systemd-analyze verify on it (scripts/lint_deploy.py).
    """
    text = (ROOT / "conf/systemd/stack-supervisor.service").read_text()
    for line in ("Type=notify", "KillMode=mixed", "RestartPreventExitStatus=78", "WatchdogSec="):
        assert line in text
    stop = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))  # type: ignore[union-attr]
    assert stop > 30, "TimeoutStopSec must exceed the default shutdown_timeout (30s)"


def test_vm_layout_keeps_clear_of_debians_supervisor_package() -> None:
    """The VM unit and its /etc directory are named stack-supervisor, clear of Debian's supervisord."""
    assert not (ROOT / "conf/systemd/supervisor.service").exists()
    for path in ("conf/systemd/stack-supervisor.service", "deploy/vm/supervisor.toml", "deploy/vm/environment"):
        lines = [line for line in (ROOT / path).read_text().splitlines() if not line.startswith("#")]
        assert [line for line in lines if "/etc/supervisor/" in line] == [], f"{path} names Debian's /etc/supervisor"
    unit = (ROOT / "conf/systemd/stack-supervisor.service").read_text()
    assert "--config /etc/stack-supervisor/supervisor.toml" in unit
    assert "EnvironmentFile=-/etc/stack-supervisor/environment" in unit


def test_dockerfile_keeps_the_supervisor_as_pid_1() -> None:
    """docker/Dockerfile runs the supervisor as PID 1, as a non-root user (`make lint` runs hadolint on it)."""
    text = (ROOT / "docker/Dockerfile").read_text()
    assert 'ENTRYPOINT ["supervisor"]' in text and "STOPSIGNAL SIGTERM" in text and "HEALTHCHECK" in text
    assert re.search(r"^USER \d+", text, re.M), "the container runs as a non-root user"


def test_compose_file_structure() -> None:
    """docker-compose.yml has the app plus postgres and redis with healthchecks the app waits on."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"app", "postgres", "redis"}
    assert services["app"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / services["app"]["build"]["context"] / "docker/Dockerfile").exists()
    for dep in ("postgres", "redis"):
        assert services["app"]["depends_on"][dep]["condition"] == "service_healthy"
        assert services[dep]["healthcheck"]["test"]
    env = services["app"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    grace = int(services["app"]["stop_grace_period"].rstrip("s"))
    assert grace > 30, "stop_grace_period must exceed shutdown_timeout"


def dockerfile_command() -> list[str]:
    """Return the container's command line: ENTRYPOINT + CMD, as exec-form JSON arrays."""
    import json

    text = (ROOT / "docker/Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    return [*entry, *cmd]


def test_container_command_is_the_one_the_integration_tests_run() -> None:
    """The integration tests run exactly the Dockerfile's command line, with /app mapped to the checkout."""
    from tests.integration.conftest import container_argv

    argv = dockerfile_command()
    assert argv == ["supervisor", "run", "--config", "/app/conf/supervisor.toml"]
    assert container_argv() == [
        str(Path(sys.executable).parent / "supervisor"),
        "run",
        "--config",
        str(ROOT / "conf/supervisor.toml"),
    ]
