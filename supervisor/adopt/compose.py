"""A Docker Compose file as a draft of ours: the app's services become units of one container.

A service with a command (or entrypoint) is a program, or a job when another service waits for
it with ``service_completed_successfully``. Postgres, Redis (or Valkey) and RabbitMQ services
stay Compose services; they become dependencies probed by name, as the app container reaches
them. Carried: ``command``/``entrypoint``, ``environment``, ``env_file``, ``working_dir``,
``user``, ``depends_on`` with its conditions, ``healthcheck``, ``restart``, ``stop_signal``,
``stop_grace_period``. Everything else, and any service that is neither, becomes a note.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from supervisor.adopt.draft import Draft, NotThisKind, Unit, one_line
from supervisor.adopt.words import Untranslatable, duration, seconds, variables

_PROBED = (
    (re.compile(r"(^|/)(postgres|postgis|timescaledb)[^/]*$"), "postgres"),
    (re.compile(r"(^|/)(redis|valkey|keydb|dragonfly)[^/]*$"), "redis"),
    (re.compile(r"(^|/)rabbitmq[^/]*$"), "tcp"),
)
_RESTART = {"no": "never", "always": "always", "unless-stopped": "always", "on-failure": "on-failure"}
_CURL_URL = re.compile(r"https?://[^\s'\"]+")
_ESCAPED = "\0dollar\0"  # Compose's $$, a literal $, kept out of the way of variable references
_HANDLED = {
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "working_dir",
    "user",
    "depends_on",
    "healthcheck",
    "restart",
    "stop_signal",
    "stop_grace_period",
    "deploy",
}


def read(text: str, source: str) -> Draft:
    """Return the draft of a Compose file; raise ``NotThisKind`` naming the line where YAML or Compose failed."""
    import yaml  # only `import` needs it

    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise NotThisKind(mark.line + 1 if mark else None, f"not YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise NotThisKind(None, f"not YAML: {exc}") from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not all(isinstance(s, dict) for s in services.values()):
        raise NotThisKind(1, "not a Compose file: no `services:` mapping of services")
    draft = Draft(source, "compose")
    draft.notes += [f"{key}: {one_line(_short(v))} (stays in Compose)" for key, v in data.items() if key != "services"]
    completed = {
        dep
        for svc in services.values()
        if isinstance(svc.get("depends_on"), dict)
        for dep, cond in svc["depends_on"].items()
        if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully"
    }
    kinds: dict[str, str] = {}
    ours = {str(s.get("image")) for s in services.values() if "command" in s or "entrypoint" in s}
    app: set[str] = set()  # the app's own image, run with the image's command: drafted as comments
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        probed = next((kind for pattern, kind in _PROBED if pattern.search(image.split(":")[0])), None)
        if probed and "command" not in svc:
            kinds[name] = "dependency"
            _dependency(draft.unit("dependency", name), probed, svc)
        elif "command" in svc or "entrypoint" in svc:
            kinds[name] = "job" if name in completed else "program"
        elif "build" in svc or (image and image in ours):
            app.add(name)
        else:
            what = f"image {image}" if image else "no image"
            draft.notes.append(f"service {name} ({what}): not the app's code, it stays a Compose service")
    if any("env_file" in svc or not str(svc.get("working_dir", "/")).startswith("/") for svc in services.values()):
        draft.remarks.append(
            "relative paths (env_file, working_dir) are the Compose file's: keep this file in its directory"
        )
    for name, svc in services.items():
        if kinds.get(name) in ("job", "program"):
            _runnable(draft.unit(kinds[name], name), svc, kinds)
        elif name in app:
            unit = draft.unit("job" if name in completed else "program", name)
            unit.commented = (
                f"service {name} runs its image's own command (CMD), which this file does not show: "
                "write it as the command below, then uncomment the table"
            )
            _runnable(unit, {**svc, "command": ["CMD-OF-THE-IMAGE"]}, kinds)
    return draft


def _short(value: Any) -> str:
    """The value as a comment shows it, whole: a note that is cut short would lose what it keeps."""
    return str(value)


def _dependency(unit: Unit, kind: str, svc: dict[str, Any]) -> None:
    """A database or broker service: probed where the app container reaches it, by its service name."""
    raw = svc.get("environment")
    env = raw if isinstance(raw, dict) else dict(str(i).partition("=")[::2] for i in raw or [])
    env = {str(k): str(v) for k, v in env.items() if v is not None}
    if kind == "postgres":
        user = env.get("POSTGRES_USER") or "postgres"
        db = env.get("POSTGRES_DB") or user
        plain = "$" not in user + db
        url = (
            f"postgresql://{user}@{unit.name}:5432/{db}"
            if plain
            else f"postgresql://postgres@{unit.name}:5432/postgres"
        )
        unit.keys.update(type="postgres", url="${DATABASE_URL:-" + url + "}")
        unit.remarks.append("the password: PGPASSWORD in the environment, or in DATABASE_URL")
    elif kind == "redis":
        unit.keys.update(type="redis", url="${REDIS_URL:-redis://" + unit.name + ":6379/0}")
    else:
        unit.keys.update(type="tcp", url=f"{unit.name}:5672")
    unit.remarks.append(f"image {svc.get('image')}: it stays a Compose service; the supervisor waits for it")
    if "healthcheck" in svc:
        unit.remarks.append("its healthcheck stays in Compose: the probe above is ours")


def _words(value: Any, unit: Unit, key: str) -> list[str] | None:
    """A command or entrypoint (a string split as Compose splits it, or a list), variables in our form."""
    notes: list[str] = []
    try:
        if isinstance(value, str):
            words = shlex.split(value.replace("$$", _ESCAPED))
        elif isinstance(value, list):
            words = [str(w).replace("$$", _ESCAPED) for w in value]
        else:
            unit.lose(f"{key}: {one_line(_short(value))}")
            return None
        out = [variables(w, notes).replace(_ESCAPED, "$") for w in words]
    except (Untranslatable, ValueError) as exc:
        unit.lose(f"{key}: {one_line(_short(value))} ({exc})")
        return None
    unit.remarks += notes
    return out


def _runnable(unit: Unit, svc: dict[str, Any], kinds: dict[str, str]) -> None:
    """A service that runs the app's code: a program, or a job that others wait for."""
    entry = _words(svc["entrypoint"], unit, "entrypoint") if "entrypoint" in svc else []
    command = _words(svc["command"], unit, "command") if "command" in svc else []
    if entry is None or command is None or not entry + command:
        unit.keys["command"] = ["false"]
        unit.remarks.append("command: write the command here (the source's could not be carried)")
    else:
        unit.keys["command"] = entry + command
    if "working_dir" in svc:
        unit.keys["cwd"] = str(svc["working_dir"])
    if "user" in svc:
        unit.keys["user"] = str(svc["user"])
    _depends(unit, svc.get("depends_on"), kinds)
    if "env_file" in svc:
        files = _env_files(svc["env_file"], unit)
        if files:
            unit.keys["env_file"] = files
    env = _env_dict(svc.get("environment"), unit)
    if env:
        unit.keys["environment"] = env
    if unit.kind == "program":
        _program_keys(unit, svc)
    else:
        for key in ("healthcheck", "restart", "stop_signal", "stop_grace_period", "deploy"):
            if key in svc:
                unit.lose(f"{key}: {one_line(_short(svc[key]))} (a job runs once)")
    for key, val in svc.items():
        if key not in _HANDLED:
            unit.lose(f"{key}: {one_line(_short(val))}")


def _depends(unit: Unit, value: Any, kinds: dict[str, str]) -> None:
    names: list[str] = []
    entries = value.items() if isinstance(value, dict) else ((n, {}) for n in value or [])
    for name, cond in entries:
        cond = cond if isinstance(cond, dict) else {}
        if name not in kinds:
            unit.lose(f"depends_on: {name} (not a unit here: it stays in Compose)")
            continue
        names.append(name)
        extra = {k: v for k, v in cond.items() if k != "condition"}
        if extra:
            unit.lose(f"depends_on: {name}: {extra}")
    if names:
        unit.keys["depends_on"] = names


def _env_files(value: Any, unit: Unit) -> list[str]:
    out: list[str] = []
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, dict):
            path = str(entry.get("path", ""))
            out.append(path if entry.get("required", True) else f"-{path}")
        else:
            out.append(str(entry))
    return out


def _env_dict(value: Any, unit: Unit) -> dict[str, str]:
    """Compose's environment (a list of KEY=value or a mapping); a bare KEY is inherited anyway."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for item in value:
            k, eq, v = str(item).partition("=")
            pairs.append((k, v if eq else None))
    env: dict[str, str] = {}
    for k, v in pairs:
        if v is None:
            unit.remarks.append(f"environment {k}: inherited from the supervisor's environment")
            continue
        text = "true" if v is True else "false" if v is False else str(v)
        notes: list[str] = []
        try:
            env[str(k)] = variables(text.replace("$$", _ESCAPED), notes).replace(_ESCAPED, "$")
        except Untranslatable as exc:
            unit.lose(f"environment {k}={text} ({exc})")
            continue
        unit.remarks += notes
    return env


def _program_keys(unit: Unit, svc: dict[str, Any]) -> None:
    if "restart" in svc:
        policy = str(svc["restart"]).split(":")[0]
        if policy in _RESTART:
            unit.keys["restart"] = {"policy": _RESTART[policy]}
            if ":" in str(svc["restart"]):
                unit.lose(f"restart: {svc['restart']} (the count: restart.max_restarts counts within a window)")
        else:
            unit.lose(f"restart: {svc['restart']}")
    if "stop_signal" in svc:
        sig = str(svc["stop_signal"]).upper()
        unit.keys["stop_signal"] = sig if sig.startswith("SIG") else f"SIG{sig}"
    if "stop_grace_period" in svc:
        grace = seconds(svc["stop_grace_period"])
        if grace is None:
            unit.lose(f"stop_grace_period: {svc['stop_grace_period']}")
        else:
            unit.keys["stop_timeout"] = duration(grace)
    if "healthcheck" in svc:
        _health(unit, svc["healthcheck"])
    deploy = svc.get("deploy")
    if isinstance(deploy, dict):
        rest = {k: v for k, v in deploy.items() if k != "replicas"}
        if isinstance(deploy.get("replicas"), int) and deploy["replicas"] > 1:
            unit.keys["instances"] = deploy["replicas"]
            unit.remarks.append(f"deploy.replicas = {deploy['replicas']}: instances on one shared socket")
        elif "replicas" in deploy:
            rest["replicas"] = deploy["replicas"]
        if rest:
            unit.lose(f"deploy: {one_line(_short(rest))}")


def _health(unit: Unit, check: Any) -> None:
    if not isinstance(check, dict) or check.get("disable") or check.get("test") in (["NONE"], "NONE"):
        return
    test = check.get("test")
    if isinstance(test, str):
        argv = ["sh", "-c", test]
    elif isinstance(test, list) and test and test[0] == "CMD-SHELL":
        argv = ["sh", "-c", " ".join(map(str, test[1:]))]
    elif isinstance(test, list) and test and test[0] == "CMD":
        argv = [str(w) for w in test[1:]]
    else:
        unit.lose(f"healthcheck: {one_line(_short(check))}")
        return
    notes: list[str] = []
    try:  # Compose expands the test's variables, and its $$ is the shell's $, as in a command
        argv = [variables(w.replace("$$", _ESCAPED), notes).replace(_ESCAPED, "$") for w in argv]
    except Untranslatable as exc:
        unit.lose(f"healthcheck: {one_line(_short(check))} ({exc})")
        return
    unit.remarks += notes
    health: dict[str, Any] = {}
    url = _CURL_URL.search(" ".join(argv)) if argv and argv[0] in ("curl", "wget") else None
    if url:
        health["http"] = url.group(0)
    else:
        health["exec"] = argv
    for ours, theirs in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if theirs in check:
            value = seconds(check[theirs])
            if value is None:
                unit.lose(f"healthcheck.{theirs}: {check[theirs]}")
            else:
                health[ours] = duration(value)
    if isinstance(check.get("retries"), int) and check["retries"] >= 1:
        health["failure_threshold"] = check["retries"]
    for key in check:
        if key not in ("test", "interval", "timeout", "start_period", "retries"):
            unit.lose(f"healthcheck.{key}: {check[key]}")
    unit.keys["health"] = health
