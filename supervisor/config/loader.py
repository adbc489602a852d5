"""Find, read, interpolate, validate and resolve a configuration file."""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from supervisor.config import hints, instances
from supervisor.config.interpolation import FromEnv, interpolate, unset_warnings
from supervisor.config.models import ConfigFile, plain
from supervisor.config.settings import DEFAULT_PATH, Config, JobConfig, Loaded, ProgramConfig, absolute, find_path
from supervisor.machine.errors import ConfigError, ConfigNotFound
from supervisor.machine.instances import order_key

__all__ = ["DEFAULT_PATH", "Loaded", "env_overrides", "find_path", "load"]


def _walk(
    node: Any, environ: Mapping[str, str], key: str, problems: list[tuple[str, str]], unset: list[tuple[str, str]]
) -> Any:
    if isinstance(node, str):
        return interpolate(node, environ, key, problems, unset)
    if isinstance(node, list):
        return [_walk(v, environ, f"{key}[{i}]", problems, unset) for i, v in enumerate(node)]
    if isinstance(node, dict):
        return {k: _walk(v, environ, f"{key}.{k}" if key else k, problems, unset) for k, v in node.items()}
    return node


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return hints.unknown_key(tuple(err["loc"]))
    if err.get("type") == "missing":
        return "required key is missing"
    kind = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false"}.get(str(err.get("type")))
    if kind is not None and isinstance(err.get("input"), str):
        return f"expected {kind}, not a string (got {err['input']!r}): values are not converted, write it unquoted"
    if "input" in err and err.get("type") not in ("model_type", "dict_type"):
        value = err["input"]
        if isinstance(value, str | int | float | bool) and repr(value) not in msg:
            return f"{msg} (got {value!r})"
    return msg


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Loaded:
    """Read and validate a file; raise ``ConfigError`` listing every problem found."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    path = Path(path)
    shown = str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        where = absolute(path, env)
        raise ConfigNotFound(shown, str(where), str(absolute(Path("."), env))) from None
    except OSError as exc:
        raise ConfigError(shown, [("", f"cannot read: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, [("", f"not valid TOML: {exc}")]) from None
    problems: list[tuple[str, str]] = []
    unset: list[tuple[str, str]] = []  # (key, VAR) for each plain ${VAR} whose variable is unset
    data = _walk(raw, env, "", problems, unset)
    overrides = env_overrides(env)
    for name in _with_instances(raw, overrides):  # ${SUPERVISOR_INSTANCE} stays for config.instances
        unset = [(k, var) for k, var in unset if not (k.startswith(f"programs.{name}.") and var == instances.ENV)]
        data["programs"][name] = _walk(raw["programs"][name], {**env, **_KEEP}, f"programs.{name}", problems, [])
    _apply_db_host(data, env)
    try:
        config = plain(ConfigFile(**_deep_update(data, overrides)))
    except ValidationError as exc:
        # Every problem at once: the variables, the values, and the units named that do not exist.
        errors = [(_key(e["loc"]), _message(e)) for e in exc.errors()]
        raise ConfigError(shown, problems + _unrelated(errors, problems) + hints.references(data)) from None
    config = _apply_alembic_cmd(config, env)
    where = absolute(path, env)
    config = _resolve_paths(config, where.parent)
    _check_start_first(config, problems)
    _check_traffic(config, problems)
    config = instances.expand(config, problems)
    plan = _check_graph(config, problems)
    if problems:
        raise ConfigError(shown, list(dict.fromkeys(problems)))  # once, not once per instance
    warnings = unset_warnings(unset, overrides) + _warnings(config, env)
    return Loaded(path=where, config=config, plan=plan, warnings=warnings)


def _unrelated(errors: list[tuple[str, str]], unset: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The errors that are not a consequence of an unset ``${VAR:?}`` (its key, or the table around it)."""

    def related(key: str, other: str) -> bool:
        return key == other or other.startswith((f"{key}.", f"{key}[")) or key.startswith((f"{other}.", f"{other}["))

    return [(key, what) for key, what in errors if not any(related(key, other) for other, _ in unset)]


ENV_PREFIX = "SUPERVISOR_"
_KEEP = {instances.ENV: instances.VAR}


def _with_instances(raw: dict[str, Any], overrides: Mapping[str, Any]) -> list[str]:
    """The programs of the raw file that set ``instances``, in the file or by an override."""
    programs, again = raw.get("programs"), overrides.get("programs")
    if not isinstance(programs, dict):
        return []
    again = again if isinstance(again, Mapping) else {}
    return [
        n
        for n, t in programs.items()
        if isinstance(t, dict) and ("instances" in t or "instances" in (again.get(n) or {}))
    ]


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the ``SUPERVISOR_<TABLE>__<KEY>`` overrides as nested data, each value marked ``FromEnv``.

    pydantic-settings reads them; it is imported only when one is set, since its import
    alone costs the daemon ~100 ms of start-up.
    """
    tables = tuple(f"{ENV_PREFIX}{name}".lower() for name in ConfigFile.model_fields)
    if not any(key.lower().startswith(tables) for key in environ):
        return {}
    from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

    class Overrides(BaseSettings):
        """The fields of ``ConfigFile``, as pydantic-settings sees them, to read the overrides."""

        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_ignore_empty=False)
        __annotations__ = {name: field.annotation for name, field in ConfigFile.model_fields.items()}

    class EnvironSource(EnvSettingsSource):
        """Read from the given mapping instead of ``os.environ``."""

        def _load_env_vars(self) -> Mapping[str, str | None]:
            # Not case-sensitive (the model's default): the source matches lower-cased names.
            return {k.lower(): FromEnv(v) for k, v in environ.items()}

    return dict(EnvironSource(Overrides)())


def _deep_update(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        out[k] = _deep_update(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _apply_db_host(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Honour the old ``entrypoint.sh`` variables ``DB_HOST``/``DB_PORT`` for a postgres without a url."""
    for dep in (data.get("dependencies") or {}).values():
        if isinstance(dep, dict) and dep.get("type") == "postgres" and not dep.get("url") and env.get("DB_HOST"):
            port = env.get("DB_PORT", "5432")
            user = env.get("PGUSER") or env.get("DB_USER") or ""
            auth = f"{user}@" if user else ""
            dbname = env.get("PGDATABASE") or env.get("DB_NAME") or ""
            dep["url"] = f"postgresql://{auth}{env['DB_HOST']}:{port}/{dbname}"


def _apply_alembic_cmd(config: Config, env: Mapping[str, str]) -> Config:
    """``ALEMBIC_CMD`` replaces the migration job's command (the job with alembic_config, or ``migrate``)."""
    alembic_cmd = env.get("ALEMBIC_CMD")
    if alembic_cmd is None:
        return config
    jobs = {
        name: replace(job, command=shlex.split(alembic_cmd) or ["true"], from_alembic_cmd=True)
        if job.alembic_config or name == "migrate"
        else job
        for name, job in config.jobs.items()
    }
    return replace(config, jobs=jobs)


def _check_start_first(config: Config, problems: list[tuple[str, str]]) -> None:
    for name, prog in config.programs.items():
        if prog.restart.order != "start-first":
            continue
        missing = [
            what
            for what, ok in (
                ("listen", prog.listen is not None),
                (
                    "notify = true, ready_log or a file health check",
                    prog.notify or prog.ready_log or (prog.health and prog.health.file),
                ),
            )
            if not ok
        ]
        if missing:
            problems.append(
                (
                    f"programs.{name}.restart.order",
                    f"'start-first' needs {' and '.join(missing)}: both incarnations accept on one socket, so a "
                    "probe sent to the listen address may be answered by the old one; readiness must come from "
                    "the new incarnation itself (notify = true, ready_log, or a file health check)",
                )
            )


def _resolve_paths(config: Config, base: Path) -> Config:
    """Make relative paths absolute against ``base``, the file's directory, keeping links and ``..``.

    Not resolved: a ``cwd`` under ``/srv/app/current`` stays there, so a program restarted
    after the link moved runs in the new release (see ``settings.absolute``).
    """

    def rel(value: str | None) -> str | None:
        return None if value is None else str(base / os.path.expanduser(value))

    def files(paths: tuple[str, ...]) -> tuple[str, ...]:
        # systemd's EnvironmentFile=-path: a leading "-" makes the file optional.
        return tuple(("-" if p.startswith("-") else "") + str(rel(p.removeprefix("-"))) for p in paths)

    jobs = {
        n: replace(j, cwd=rel(j.cwd), alembic_config=rel(j.alembic_config), env_file=files(j.env_file))
        for n, j in config.jobs.items()
    }
    programs = {n: replace(p, cwd=rel(p.cwd), env_file=files(p.env_file)) for n, p in config.programs.items()}
    sup = replace(config.supervisor, socket=str(rel(config.supervisor.socket)))
    return replace(config, jobs=jobs, programs=programs, supervisor=sup)


def _check_traffic(config: Config, problems: list[tuple[str, str]]) -> None:
    """``traffic`` names units of this file, at least one (left out, every unit decides /readyz)."""
    traffic = config.supervisor.traffic
    if traffic is None:
        return
    if not traffic:
        problems.append(("supervisor.traffic", "name at least one unit, or leave it out for every unit"))
    units = {*config.dependencies, *config.jobs, *config.programs}
    for i, name in enumerate(traffic):
        if name not in units:
            problems.append((f"supervisor.traffic[{i}]", hints.unknown_unit(name, units)))


def _check_graph(config: Config, problems: list[tuple[str, str]]) -> list[list[str]]:
    tables: dict[str, list[str]] = {
        "dependencies": list(config.dependencies),
        "jobs": list(config.jobs),
        "programs": list(config.programs),
    }
    seen: dict[str, str] = {}
    groups = {name: config.members(name) for name in config.templates}  # a program with instances: all of them
    tables["programs"] += list(groups)
    for table, units in tables.items():
        for name in units:
            if name == "all":
                problems.append((f"{table}.{name}", "'all' is reserved for the command line"))
            if name in seen:
                problems.append((f"{table}.{name}", f"the name is also used in [{seen[name]}]"))
            seen.setdefault(name, table)
    edges: dict[str, list[str]] = {name: [] for name in seen if name not in groups}
    units_with_deps: dict[str, JobConfig | ProgramConfig] = {**config.jobs, **config.programs}
    for name, unit in units_with_deps.items():
        table = "jobs" if name in config.jobs else "programs"
        label = unit.instance_of or name if isinstance(unit, ProgramConfig) else name  # web, not web:0
        for i, dep in enumerate(unit.depends_on):
            if dep not in seen:
                problems.append((f"{table}.{label}.depends_on[{i}]", hints.unknown_unit(dep, seen)))
            elif dep in (name, label):
                problems.append((f"{table}.{label}.depends_on[{i}]", "a unit cannot depend on itself"))
            else:
                edges[name].extend(groups.get(dep, [dep]))
    order = {name: list(deps) for name, deps in edges.items()}  # depends_on and after together
    for name, prog in config.programs.items():
        for i, other in enumerate(prog.after):
            key = f"programs.{prog.instance_of or name}.after[{i}]"
            if other in (name, prog.instance_of):
                problems.append((key, "a program cannot start after itself"))
            elif other not in config.programs and other not in groups:
                what = f"{seen[other]} are ordered by depends_on" if other in seen else "unknown program"
                near = "" if other in seen else hints.did_you_mean(other, config.programs)
                problems.append((key, f"{other!r}: after names programs only ({what}){near}"))
            else:
                order[name].extend(groups.get(other, [other]))
    for name, job in config.jobs.items():
        if job.lock is not None:
            lock_dep = config.dependencies.get(job.lock)
            if lock_dep is None or lock_dep.type != "postgres":
                near = hints.did_you_mean(job.lock, hints.postgres(config)) if lock_dep is None else ""
                problems.append((f"jobs.{name}.lock", f"{job.lock!r} is not a postgres dependency{near}"))
        if (
            job.alembic_config is not None
            and job.lock is None
            and not any(config.dependencies[d].type == "postgres" for d in job.depends_on if d in config.dependencies)
        ):
            problems.append((f"jobs.{name}.alembic_config", "needs a postgres dependency: set lock or depends_on"))
    for name, prog in config.programs.items():
        _check_singleton(config, prog.instance_of or name, prog, problems)
    if problems:
        return []
    plan = _levels(edges, problems)
    if plan and order != edges:
        _order_loop(edges, order, problems)
    return plan if not problems else []


def _check_singleton(config: Config, name: str, prog: ProgramConfig, problems: list[tuple[str, str]]) -> None:
    """A singleton names a postgres dependency, and never runs two copies side by side."""
    if prog.singleton is None:
        return
    dep = config.dependencies.get(prog.singleton)
    if dep is None or dep.type != "postgres":
        near = hints.did_you_mean(prog.singleton, hints.postgres(config)) if dep is None else ""
        problems.append((f"programs.{name}.singleton", f"{prog.singleton!r} is not a postgres dependency{near}"))
    if prog.restart.order == "start-first":
        problems.append((f"programs.{name}.restart.order", "start-first would run two copies of a singleton"))
    if prog.instance_of is not None:
        problems.append((f"programs.{name}.instances", "a singleton runs once: instances would run several copies"))


def _order_loop(edges: dict[str, list[str]], order: dict[str, list[str]], problems: list[tuple[str, str]]) -> None:
    """A loop through ``after`` and ``depends_on`` together is a problem, named link by link."""
    try:
        TopologicalSorter(order).prepare()
    except CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # each waits for the next
        links = [(a, b, "depends_on" if b in edges[a] else "after") for a, b in pairwise(cycle)]
        first = next(a for a, _, kind in links if kind == "after")
        words = ", ".join(f"{a} {kind} {b}" for a, b, kind in links)
        problems.append((f"programs.{first}.after", f"start-order loop: {words}"))


def _levels(edges: dict[str, list[str]], problems: list[tuple[str, str]]) -> list[list[str]]:
    """Group units by levels: each level needs only earlier ones; a cycle is a problem."""
    sorter = TopologicalSorter(edges)
    try:
        sorter.prepare()
    except CycleError as exc:
        # graphlib lists each node before the ones that depend on it; read it as depends_on
        cycle = list(reversed(exc.args[1]))
        problems.append(("depends_on", "dependency cycle: " + " -> ".join(cycle)))
        return []
    levels: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=order_key)
        levels.append(ready)
        sorter.done(*ready)
    return levels


def _warnings(config: Config, env: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    limit = env.get("SUPERVISOR_MEMORY_MB", "")
    total = sum(p.max_memory or 0 for p in config.programs.values())
    if limit.isdigit() and total > int(limit) << 20:
        out.append(
            f"programs: max_memory adds up to {total >> 20} MiB, more than the {limit} MiB the "
            "supervisor's cgroup may use (SUPERVISOR_MEMORY_MB): the kernel's OOM killer may strike first"
        )
    ladder = config.shutdown_span()
    if ladder > config.supervisor.shutdown_timeout:
        out.append(
            f"supervisor.shutdown_timeout: the stop ladders need up to {ladder:g}s along the longest "
            f"chain of dependants but shutdown_timeout is {config.supervisor.shutdown_timeout:g}s; "
            "programs still running then are killed"
        )
    if len(config.supervisor.socket) > 107:
        out.append("supervisor.socket: the path is longer than a Unix socket allows (107 bytes)")
    return out  # and the file system's: Loaded.all_warnings
