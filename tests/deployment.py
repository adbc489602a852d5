"""Read the deployment files (Kubernetes manifests, Dockerfile, systemd unit) and run what they say on this machine."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from supervisor.client.api import Client

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
VM = ROOT / "deploy" / "vm"
UNIT = ROOT / "conf" / "systemd" / "stack-supervisor.service"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
# What systemd gives a service as PATH (systemd.exec(5), "Environment variables in spawned processes").
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- Kubernetes ------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    """Every manifest under deploy/kubernetes (the kustomization is not one: kubectl never applies it)."""
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> list[dict[str, Any]]:
    """Every document of every manifest."""
    docs: list[dict[str, Any]] = []
    for path in manifest_files():
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def resource(kind: str, name: str) -> dict[str, Any]:
    """The one resource of this kind and name."""
    found = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(deployment: str) -> dict[str, Any]:
    """The pod template's spec of a Deployment."""
    return resource("Deployment", deployment)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def container(deployment: str, name: str) -> dict[str, Any]:
    """One container (or init container) of a Deployment's pod."""
    spec = pod_spec(deployment)
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        if c["name"] == name:
            return c  # type: ignore[no-any-return]
    raise AssertionError(f"{deployment} has no container {name}")


def container_port(c: Mapping[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by name or number, as the container's port number."""
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in c["ports"] if p["name"] == port)


# ---- the image ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def image_env() -> dict[str, str]:
    """The image's ENV, as a container gets it (PATH is the caller's to set)."""
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    env.pop("PATH", None)
    return env


def image_uid() -> int:
    """The uid the image's USER names."""
    user = next(rest for keyword, rest in dockerfile_instructions() if keyword == "USER")
    return int(user.split(":")[0])


# ---- paths: what the container or the VM sees, mapped onto this machine ------------------


def map_paths(text: str, mapping: Mapping[str, Path | str]) -> str:
    """Replace each absolute path root in ``mapping`` (e.g. ``/tmp``) where it begins a path, in one pass."""
    roots = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, roots)) + r")(?=/|$|[\"'\s:,\]])")
    return pattern.sub(lambda m: str(mapping[m.group(1)]), text)


@dataclass
class PodProcess:
    """A container of a pod, as this machine runs it: its argv, environment and working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    mounts: dict[str, Path] = field(default_factory=dict)


def pod_process(deployment: str, name: str, where: Path, secrets: Mapping[str, str]) -> PodProcess:
    """The exact command and environment of a container, with its mounts and /app mapped under ``where``.

    The image's code (/app) is this checkout and the image's virtualenv is ours. Each volume is a
    directory of its own under ``where``: a ConfigMap's items are written there with the same
    mapping, and emptyDirs start empty. The environment is the image's ENV, then the container's
    env, with each secretKeyRef's key looked up in ``secrets``.
    """
    spec = pod_spec(deployment)
    c = container(deployment, name)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mapping: dict[str, Path | str] = {"/app": ROOT}
    for mount in c["volumeMounts"]:
        target = where / mount["name"]
        target.mkdir(parents=True, exist_ok=True)
        mapping[mount["mountPath"]] = target
    for mount in c["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            data = resource("ConfigMap", volume["configMap"]["name"])["data"]
            for item in volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                (where / mount["name"] / item["path"]).write_text(map_paths(data[item["key"]], mapping))
        else:
            assert "emptyDir" in volume, f"{name} mounts {mount['name']}, neither a ConfigMap nor an emptyDir"
    env = {k: map_paths(v, mapping) for k, v in image_env().items()}
    env["PATH"] = f"{VENV_BIN}:{SYSTEMD_PATH}"  # the image's PATH: its virtualenv first
    env["HOME"] = str(ROOT)  # the image's user has /app as its home
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = map_paths(var["value"], mapping)
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["key"]]
    argv = [map_paths(a, mapping) for a in [*c["command"], *c.get("args", [])]]
    argv[0] = str(VENV_BIN / argv[0])
    workdir = next(rest for keyword, rest in dockerfile_instructions() if keyword == "WORKDIR")
    return PodProcess(argv, env, Path(map_paths(workdir, mapping)), {k: Path(v) for k, v in mapping.items()})


# ---- systemd ---------------------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    """The [Service] section of the unit: every value of each key, in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def environment_file(text: str) -> dict[str, str]:
    """Parse a systemd EnvironmentFile: KEY=value lines; # and ; start comments."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


# ---- running -----------------------------------------------------------------------------


class Running:
    """A process started with exactly the given environment, its output in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.argv = argv
        self.log_path = log
        self._log: IO[bytes] = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events with this name."""
        out = []
        for raw in self.log_path.read_bytes().splitlines():
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                out.append(event)
        return out

    def tail(self, n: int = 30) -> str:
        """The last lines of output, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 40) -> int | None:
        """SIGTERM (the container runtime's and systemd's stop signal), then wait; SIGKILL past ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def http_status(url: str) -> int:
    """The status code of a GET (4xx and 5xx included); raises when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def status(socket_path: str) -> dict[str, Any]:
    """The daemon's status document, through its control socket."""
    code, doc = Client(socket_path, timeout=10).request("GET", "/v1/status")
    assert code == 200, doc
    return doc  # type: ignore[no-any-return]
