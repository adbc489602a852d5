"""What a deployer copies holds together: manifests validate, ports and paths match the configs, the lock is whole."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from collections import deque
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from supervisor.config.loader import load
from tests.deployment import (
    K8S,
    ROOT,
    VENV_BIN,
    VM,
    container,
    container_port,
    dockerfile_instructions,
    image_env,
    image_uid,
    manifest_files,
    map_paths,
    pod_process,
    pod_spec,
    resource,
    resources,
    unit_settings,
)

LOCK = ROOT / "docker" / "requirements.lock"
# (Deployment, container running `supervisor run`, its configuration file in the ConfigMap)
PODS = [("webstack", "app", "supervisor.toml")]
SECRETS = {"DATABASE_URL": "postgresql://app@db:5432/app", "REDIS_URL": "redis://redis:6379/0"}


def memory_bytes(text: str) -> int:
    """Bytes in a Kubernetes quantity such as '2Gi' or '512Mi'."""
    value, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi|K|M|G)?", text).groups()  # type: ignore[union-attr]
    scale = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9, None: 1}
    return int(value) * scale[unit]


def pod_config(deployment: str, name: str, tmp_path: Path) -> Any:
    """The configuration a container loads, as the supervisor reads it with the container's environment."""
    proc = pod_process(deployment, name, tmp_path / deployment, SECRETS)
    config = Path(proc.argv[proc.argv.index("--config") + 1])
    return load(config, proc.env)


# ---- Kubernetes ------------------------------------------------------------------------


def test_the_manifests_hold_every_kind_a_deployment_needs() -> None:
    """Deployments, a Service, a PodDisruptionBudget and a ConfigMap (`make lint` validates each strictly)."""
    assert {r["kind"] for r in resources()} >= {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"}


def test_kustomization_applies_every_manifest_and_names_the_image() -> None:
    """kustomization.yaml lists exactly the manifests in its folder, and its images entry names the pods' image."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in manifest_files())
    named = {i["name"] for i in kustomization["images"]}
    for deployment, _, _ in PODS:
        spec = pod_spec(deployment)
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            assert c["image"] in named, f"{deployment}/{c['name']}: image {c['image']} is not in the kustomization"


@pytest.mark.parametrize(("deployment", "name", "config_key"), PODS)
def test_probes_and_ports_match_the_configuration(deployment: str, name: str, config_key: str, tmp_path: Path) -> None:
    """Probes hit /healthz and /readyz on the port the supervisor listens on; the grace period outlasts shutdown."""
    c = container(deployment, name)
    loaded = pod_config(deployment, name, tmp_path)
    assert Path(loaded.path).name == config_key
    assert not loaded.warnings, loaded.warnings  # e.g. stop ladders that do not fit in shutdown_timeout
    http_port = int(loaded.config.supervisor.http.rpartition(":")[2])
    assert loaded.config.supervisor.http.startswith("0.0.0.0:"), "the kubelet probes the pod's IP, not its loopback"
    paths = {kind: c[kind]["httpGet"]["path"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for kind in paths:
        assert container_port(c, c[kind]["httpGet"]["port"]) == http_port, kind
    assert "preStop" not in c.get("lifecycle", {}), "[supervisor] drain does what a preStop sleep did"
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    sup = loaded.config.supervisor
    assert grace > sup.drain + sup.shutdown_timeout, "SIGKILL would cut the drain or the ladders"


def test_readiness_for_traffic_is_webs_in_the_app_pod_and_under_compose(tmp_path: Path) -> None:
    """The app pod and the container compose runs set traffic = ["web"]: a worker or Redis never empties the Service."""
    assert pod_config("webstack", "app", tmp_path).config.supervisor.traffic == ["web"]
    cmd = next(json.loads(rest) for keyword, rest in dockerfile_instructions() if keyword == "CMD")
    compose_config = ROOT / cmd[cmd.index("--config") + 1].removeprefix("/app/")
    assert load(compose_config, image_env()).config.supervisor.traffic == ["web"]


def grace_seconds(text: str) -> float:
    """Seconds in a Compose duration such as '40s' or '1m30s'."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", text)
    assert parts and text, text
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


def test_the_app_drains_5s_and_is_killed_only_after_drain_and_shutdown(tmp_path: Path) -> None:
    """Kubernetes and Compose drain 5 s; their grace periods exceed drain + shutdown_timeout: no SIGKILL cuts it."""
    k8s = pod_config("webstack", "app", tmp_path).config.supervisor
    assert k8s.drain == 5.0
    assert pod_spec("webstack")["terminationGracePeriodSeconds"] > k8s.drain + k8s.shutdown_timeout
    app = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["app"]
    cmd = next(json.loads(rest) for keyword, rest in dockerfile_instructions() if keyword == "CMD")
    config = ROOT / cmd[cmd.index("--config") + 1].removeprefix("/app/")
    compose = load(config, {**image_env(), **{k: str(v) for k, v in app["environment"].items()}}).config.supervisor
    assert compose.drain == 5.0
    assert grace_seconds(app["stop_grace_period"]) > compose.drain + compose.shutdown_timeout
    assert load(config, image_env()).config.supervisor.drain == 0.0  # a laptop, no load balancer: no wait


def test_service_reaches_the_web_program_on_ready_app_pods(tmp_path: Path) -> None:
    """The Service selects the app's pods and targets the port the web program listens on."""
    service = resource("Service", "webstack")
    app_labels = resource("Deployment", "webstack")["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= app_labels.items()
    listen = pod_config("webstack", "app", tmp_path).config.programs["web"].listen
    (port,) = service["spec"]["ports"]
    assert container_port(container("webstack", "app"), port["targetPort"]) == int(listen.rpartition(":")[2])


def test_replicas_roll_without_losing_capacity() -> None:
    """Three app replicas roll with maxUnavailable 0 under a PDB."""
    app = resource("Deployment", "webstack")["spec"]
    assert app["replicas"] == 3
    assert app["strategy"]["rollingUpdate"]["maxUnavailable"] == 0 and app["strategy"]["rollingUpdate"]["maxSurge"]
    pdb = resource("PodDisruptionBudget", "webstack")["spec"]
    assert pdb["selector"]["matchLabels"] == app["selector"]["matchLabels"]
    assert pdb["maxUnavailable"] == 1


def test_beat_is_a_singleton_of_the_app_replicas_and_of_the_vms(tmp_path: Path) -> None:
    """Beat runs inside the app's pods as a singleton on Postgres: no Deployment of its own; the same on VMs."""
    assert [r["metadata"]["name"] for r in resources() if r["kind"] == "Deployment"] == ["webstack"]
    config = pod_config("webstack", "app", tmp_path).config
    vm = load(VM / "supervisor.toml", {"DATABASE_URL": SECRETS["DATABASE_URL"], "REDIS_URL": SECRETS["REDIS_URL"]})
    shipped = load(ROOT / "conf" / "supervisor.toml", {})
    for cfg in (config, vm.config, shipped.config):
        beat = cfg.programs["beat"]
        assert beat.singleton is not None and cfg.dependencies[beat.singleton].type == "postgres"
        assert beat.singleton in beat.depends_on


def test_init_container_migrates_and_the_app_skips_its_job(tmp_path: Path) -> None:
    """`supervisor migrate` runs with the app's configuration and secrets; the app then has ALEMBIC_CMD=true."""
    init, app = container("webstack", "migrate"), container("webstack", "app")
    assert [*init["command"], *init["args"]][:2] == ["supervisor", "migrate"]
    assert init["args"][-2:] == app["args"][-2:] == ["--config", "/etc/supervisor/supervisor.toml"]
    assert init["image"] == app["image"]
    secret_refs = [v for v in app["env"] if "valueFrom" in v]
    assert secret_refs and all(v in init["env"] for v in secret_refs)
    assert {"name": "ALEMBIC_CMD", "value": "true"} in app["env"]
    assert not any(v["name"] == "ALEMBIC_CMD" for v in init["env"])
    loaded = pod_config("webstack", "app", tmp_path)
    assert loaded.config.jobs["migrate"].command == ["true"]  # as the app container reads it
    assert loaded.config.jobs["migrate"].lock == "postgres"


@pytest.mark.parametrize(("deployment", "name", "config_key"), PODS)
def test_pods_run_unprivileged_on_a_read_only_root(deployment: str, name: str, config_key: str) -> None:
    """Non-root as the image's user, read-only root, no privilege; everything the config writes is on an emptyDir."""
    spec = pod_spec(deployment)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == image_uid() != 0
    empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    c = container(deployment, name)
    writable = [m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty_dirs]
    config = tomllib.loads(resource("ConfigMap", "webstack-supervisor")["data"][config_key])
    written = [config["supervisor"]["socket"]]
    for program in config.get("programs", {}).values():
        written += [program.get("health", {}).get("file"), *program.get("environment", {}).values()]
        if "--schedule" in program["command"]:
            written.append(program["command"][program["command"].index("--schedule") + 1])
    for path in filter(None, written):
        assert any(path.startswith(w + "/") for w in writable), f"{path} is on the read-only root"
    assert image_env()["SUPERVISOR_SOCKET"] == config["supervisor"]["socket"], "`kubectl exec ... status` finds it"


def test_memory_limit_leaves_room_above_the_programs_max_memory(tmp_path: Path) -> None:
    """The app container's memory limit exceeds the sum of max_memory, so the graceful restart comes first."""
    limit = memory_bytes(container("webstack", "app")["resources"]["limits"]["memory"])
    programs = pod_config("webstack", "app", tmp_path).config.programs.values()
    ceilings = sum(p.max_memory for p in programs if p.max_memory)
    assert ceilings > 0 and limit >= ceilings + 256 * 2**20


# ---- the image ---------------------------------------------------------------------------


def locked() -> dict[str, tuple[Version, int]]:
    """The lock's pins: name -> (version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    text = LOCK.read_text()
    for block in re.split(r"\n(?=\S)", text):
        first = block.split("\\")[0].strip()
        if not first or first.startswith("#"):
            continue
        requirement = Requirement(first)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{first}: not pinned"
        pins[canonicalize_name(requirement.name)] = (Version(spec.version), block.count("--hash=sha256:"))
    return pins


def test_lock_pins_and_hashes_every_runtime_dependency() -> None:
    """Every requirement of the project, its example extra and build backend, and theirs, is pinned and hashed."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = locked()
    assert all(hashes for _, hashes in pins.values()), "an entry without --hash fails --require-hashes"
    roots = [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["example"],
        *pyproject["build-system"]["requires"],
    ]
    queue = deque((Requirement(r), "") for r in roots)
    seen: set[tuple[str, str]] = set()
    env = cast("dict[str, str]", default_environment())  # this interpreter: CPython 3.11 on Linux, as the image's
    while queue:
        requirement, extra = queue.popleft()
        if requirement.marker and not requirement.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} breaks {requirement}"
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(installed.version) != version:
            continue  # its metadata here is another version's: its own requirements may differ
        for wanted in ["", *sorted(requirement.extras)]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            queue.extend((Requirement(r), wanted) for r in installed.requires or [])
    assert len(seen) > 20, "the walk followed the dependency tree"


def test_dockerfile_installs_the_lock_before_the_source() -> None:
    """The lock is copied and installed with --require-hashes before any source; the project adds nothing unhashed."""
    steps = dockerfile_instructions()
    base = next(rest for keyword, rest in steps if keyword == "FROM")
    header = LOCK.read_text().splitlines()[1]
    assert "--generate-hashes" in header and f"--python-version {base.split(':')[1].split('-')[0]}" in header
    copies = [(i, rest) for i, (keyword, rest) in enumerate(steps) if keyword == "COPY"]
    lock_at = next(i for i, rest in copies if rest.split()[0] == "docker/requirements.lock")
    assert all(i > lock_at for i, rest in copies if rest.split()[0] != "docker/requirements.lock")
    runs = [(i, rest) for i, (keyword, rest) in enumerate(steps) if keyword == "RUN"]
    install_at = next(i for i, rest in runs if "--require-hashes" in rest and "requirements.lock" in rest)
    assert lock_at < install_at < min(i for i, rest in copies if i > lock_at)
    project = [rest for i, rest in runs if i > install_at and "pip install" in rest]
    assert project and all("--no-index" in r and "--no-deps" in r for r in project)


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (the last matching rule wins)."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            excluded = not negate
    return excluded


def test_build_context_is_only_what_the_image_copies() -> None:
    """Every COPY source is in the context; .git, virtualenvs, tests, bench and bytecode are not."""
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert not dockerignore_excludes(source), f"COPY {source} is left out of the context"
                assert (ROOT / source).exists()
    for path in (".git", ".venv/bin/python", ".venv-bench/lib", "tests/conftest.py", "bench/run.py", ".ci/run",
                 "supervisor/__pycache__/cli.cpython-311.pyc", "examples/webstack/app/__pycache__/main.cpython-311.pyc",
                 "run/supervisor.sock", "deploy/kubernetes/deployment.yaml"):  # fmt: skip
        assert dockerignore_excludes(path), f"{path} would be sent to the builder"
    assert not dockerignore_excludes("examples/webstack/migrations/versions/0001_events.py")


def test_compose_keeps_metrics_local_and_stops_on_an_invalid_configuration() -> None:
    """Compose binds 9001 to 127.0.0.1 only, and bounds restarts so that exit 78 does not loop; the file says why."""
    text = (ROOT / "docker-compose.yml").read_text()
    app = yaml.safe_load(text)["services"]["app"]
    supervisor_ports = [p for p in app["ports"] if str(p).endswith(":9001")]
    assert supervisor_ports == ["127.0.0.1:9001:9001"]
    match = re.fullmatch(r"on-failure:(\d+)", app["restart"])
    assert match and 1 <= int(match.group(1)) <= 10, app["restart"]
    comment = text[: text.index("    restart: ")].rsplit("\n    # The supervisor", 1)[1]
    assert "78" in comment and "EX_CONFIG" in comment


# ---- the VM ------------------------------------------------------------------------------


def test_vm_configuration_fits_the_units_layout(tmp_path: Path) -> None:
    """The VM config is where ExecStart reads it, writes only to the unit's state and runtime dirs, stops in time."""
    unit = unit_settings()
    exec_start = unit["ExecStart"][0].split()
    config_path = exec_start[exec_start.index("--config") + 1]
    assert Path(config_path).name == (VM / "supervisor.toml").name
    environment_file = unit["EnvironmentFile"][0].lstrip("-")
    assert Path(environment_file).parent == Path(config_path).parent
    state = "/var/lib/" + unit["StateDirectory"][0]
    runtime = "/run/" + unit["RuntimeDirectory"][0]
    config = tomllib.loads((VM / "supervisor.toml").read_text())
    assert Path(config["supervisor"]["socket"]).parent == Path(runtime)
    assert unit["Environment"] == [f"SUPERVISOR_SOCKET={config['supervisor']['socket']}"]
    venv = str(Path(exec_start[0]).parent)
    for table in ("jobs", "programs"):
        for name, unit_cfg in config[table].items():
            assert unit_cfg["command"][0].startswith(venv + "/"), f"{name}: systemd's PATH has no virtualenv"
            assert unit_cfg["cwd"].startswith("/opt/app/")
            for path in [unit_cfg.get("health", {}).get("file"), *unit_cfg.get("environment", {}).values()]:
                assert path is None or path.startswith(state + "/"), path
    # The file's own absolute paths, moved under a prefix, make a configuration that loads.
    prefix = tmp_path / "root"
    roots = {r: f"{prefix}{r}" for r in ("/opt/app/venv", "/opt/app/webstack", state, runtime)}
    (prefix / "opt/app").mkdir(parents=True)
    (prefix / "opt/app/venv").symlink_to(VENV_BIN.parent)
    (prefix / "opt/app/webstack").symlink_to(ROOT / "examples/webstack")
    moved = tmp_path / "supervisor.toml"
    moved.write_text(map_paths((VM / "supervisor.toml").read_text(), roots))
    loaded = load(moved, {**SECRETS, "PATH": "/usr/bin:/bin"})
    assert loaded.config.supervisor.shutdown_timeout < float(unit["TimeoutStopSec"][0])
    assert not loaded.warnings, loaded.warnings
