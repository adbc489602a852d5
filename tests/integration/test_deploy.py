"""The deployment files run as written: the Kubernetes pods' exact commands, and the systemd unit's ExecStart."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port, wait_until
from tests.deployment import (
    ROOT,
    SYSTEMD_PATH,
    VENV_BIN,
    VM,
    PodProcess,
    Running,
    environment_file,
    http_status,
    image_env,
    map_paths,
    pod_process,
    status,
    unit_settings,
)
from tests.integration.conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def running() -> Iterator[list[Running]]:
    """Processes a test starts; each still running at the end is stopped."""
    started: list[Running] = []
    yield started
    for proc in started:
        proc.stop()


def migration_runs(url: str) -> int:
    """How many times the example's migration 0002 ran (it logs itself in migration_log)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM migration_log").fetchone()[0])  # type: ignore[index]


def beat_rows(url: str) -> int:
    """Rows that beat's task wrote, through a worker."""
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM events WHERE source = 'beat'").fetchone()[0])  # type: ignore[index]


def exited(proc: Running) -> bool:
    """Whether the process has exited."""
    return proc.proc.poll() is not None


def ready(http_port: int) -> bool:
    """Whether the supervisor on this TCP port answers /readyz with 200."""
    return http_status(f"http://127.0.0.1:{http_port}/readyz") == 200


def pod_env(proc: PodProcess, name: str, queue: str) -> tuple[dict[str, str], int]:
    """What one pod has of its own on a cluster: its ports (its own IP there; here, ports of its own) and name."""
    host = image_env()["SUPERVISOR_HTTP"].rpartition(":")[0]
    http_port = free_port()
    extra = {"SUPERVISOR_HTTP": f"{host}:{http_port}", "PORT": str(free_port()), "HOSTNAME": name}
    # The app's queue name, so that the test's Redis keys are its own and deleted afterwards.
    extra["APP_QUEUE"] = queue
    return {**proc.env, **extra}, http_port


# Three whole stacks at once (37 s, the suite's second longest): in `make test-all` and CI, not
# in `make test`, which the VM layout's test below keeps on the same deployment files.
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kubernetes_pods_run_as_three_replicas_that_migrate_once(
    running: list[Running], database: str, queue: str, tmp_path: Path
) -> None:
    """Three pods from deployment.yaml migrate once among them and all serve /readyz 200; one of them runs beat."""
    secrets = {"DATABASE_URL": database, "REDIS_URL": REDIS_URL}
    inits = []
    for i in range(3):
        proc = pod_process("webstack", "migrate", tmp_path / f"p{i}", secrets)
        env, _ = pod_env(proc, f"webstack-{i}", queue)
        inits.append(Running(proc.argv, env, proc.cwd, tmp_path / f"p{i}-migrate.log"))
    running.extend(inits)
    for i, init in enumerate(inits):
        wait_until(partial(exited, init), 120, f"init container {i} to exit", seen=init.tail)
        assert init.proc.returncode == 0, init.tail()
    outcomes = sorted(init.events("migrate.done")[-1]["jobs"]["migrate"] for init in inits)
    assert outcomes == ["skipped", "skipped", "succeeded"], [init.tail(5) for init in inits]
    assert migration_runs(database) == 1

    pods: list[tuple[Running, PodProcess, int]] = []
    for i in range(3):
        proc = pod_process("webstack", "app", tmp_path / f"p{i}", secrets)
        env, http_port = pod_env(proc, f"webstack-{i}", queue)
        pods.append((Running(proc.argv, env, proc.cwd, tmp_path / f"p{i}-app.log"), proc, http_port))
    running.extend(pod for pod, _, _ in pods)

    for pod, proc, http_port in pods:
        wait_until(
            partial(ready, http_port),
            120,
            f"/readyz 200 from {pod.argv[-1]} on port {http_port}",
            seen=pod.tail,
        )
        assert http_status(f"http://127.0.0.1:{http_port}/healthz") == 200
        # `kubectl exec ... supervisor status` finds the socket from the image's SUPERVISOR_SOCKET.
        # /readyz answers for web alone (traffic); everything well, beat's first heartbeat included, comes after.
        wait_until(
            lambda proc=proc: status(proc.env["SUPERVISOR_SOCKET"])["supervisor"]["ready"],
            60,
            f"supervisor.ready in {pod.argv[-1]}",
            seen=lambda proc=proc: [
                u for u in status(proc.env["SUPERVISOR_SOCKET"])["units"] if u["kind"] == "program"
            ],
        )
        assert Path(proc.env["SUPERVISOR_SOCKET"]).parent == proc.mounts["/run/supervisor"]
    beats = []
    for pod, proc, _ in pods:
        units = {u["name"]: u for u in status(proc.env["SUPERVISOR_SOCKET"])["units"]}
        beats.append(units["beat"]["state"])
        assert units["migrate"]["state"] == "skipped"
        # Skipped for ALEMBIC_CMD=true, not for finding the database at head: the app never migrates.
        assert ["ALEMBIC_CMD" in e["why"] for e in pod.events("job.skipped")] == [True], pod.tail()
    assert migration_runs(database) == 1
    # Beat is a singleton on Postgres: one replica runs it, the other two stand by (and are ready).
    assert sorted(beats) == ["running", "standby", "standby"], beats
    wait_until(
        lambda: beat_rows(database) >= 1, 60, "a row from beat's task, written by a worker", seen=pods[0][0].tail
    )

    for pod, _, _ in pods:
        assert pod.stop() == 0, pod.tail()


@pytest.mark.timeout(180)
def test_vm_layout_runs_from_the_units_exec_start(
    running: list[Running], database: str, queue: str, tmp_path: Path
) -> None:
    """The unit's ExecStart, under a prefix, runs the documented layout with systemd's environment until ready."""
    prefix = tmp_path / "root"
    settings = unit_settings()
    state, runtime = "/var/lib/" + settings["StateDirectory"][0], "/run/" + settings["RuntimeDirectory"][0]
    roots = {r: f"{prefix}{r}" for r in ("/opt/app", "/etc/stack-supervisor", state, runtime)}
    # The layout, as docs/deployment.md installs it. The virtualenv is this checkout's, linked.
    (prefix / "opt/app").mkdir(parents=True)
    (prefix / "opt/app/venv").symlink_to(VENV_BIN.parent)
    shutil.copytree(
        ROOT / "examples/webstack", prefix / "opt/app/webstack", ignore=shutil.ignore_patterns("__pycache__")
    )
    (prefix / "etc/stack-supervisor").mkdir(parents=True)
    (prefix / "etc/stack-supervisor/supervisor.toml").write_text(map_paths((VM / "supervisor.toml").read_text(), roots))
    http_port = free_port()
    environment = environment_file((VM / "environment").read_text())
    assert set(environment) == {"DATABASE_URL", "REDIS_URL"}
    environment.update(DATABASE_URL=database, REDIS_URL=REDIS_URL, APP_QUEUE=queue)
    environment.update(PORT=str(free_port()), SUPERVISOR_HTTP=f"127.0.0.1:{http_port}")
    env_file = map_paths(settings["EnvironmentFile"][0].lstrip("-"), roots)
    Path(env_file).write_text("".join(f"{k}={v}\n" for k, v in environment.items()))
    # What systemd creates before ExecStart: StateDirectory= and RuntimeDirectory=.
    for directory in (state, runtime):
        Path(roots[directory]).mkdir(parents=True, mode=0o750)

    argv = [map_paths(arg, roots) for arg in shlex.split(settings["ExecStart"][0])]
    env = {"PATH": SYSTEMD_PATH}
    for assignment in settings["Environment"]:
        key, _, value = assignment.partition("=")
        env[key] = map_paths(value, roots)
    env.update(environment_file(Path(env_file).read_text()))
    daemon = Running(argv, env, Path("/"), tmp_path / "supervisor.log")  # systemd's WorkingDirectory is /
    running.append(daemon)

    wait_until(lambda: http_status(f"http://127.0.0.1:{http_port}/readyz") == 200, 120, "/readyz 200", seen=daemon.tail)
    doc = status(env["SUPERVISOR_SOCKET"])
    states = {u["name"]: u["state"] for u in doc["units"]}
    assert states == {
        "postgres": "ready",
        "redis": "ready",
        "migrate": "succeeded",
        "web": "running",
        "worker": "running",
        "beat": "running",
    }
    assert Path(env["SUPERVISOR_SOCKET"]).parent == Path(roots[runtime])
    written = {p.name for p in Path(roots[state]).iterdir()}
    assert {"worker.heartbeat", "beat.heartbeat"} <= written, written
    assert migration_runs(database) == 1
    assert daemon.stop() == 0, daemon.tail()  # KillSignal=SIGTERM: a clean stop
