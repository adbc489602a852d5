"""Whether a valid configuration can also run here: directories, users, executables, files.

``check`` and ``run`` (before it starts anything) ask this; ``load()`` does not, so that
a configuration can be validated on a machine that is not the one it runs on.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Mapping
from pathlib import Path

from supervisor.config.envfile import EnvFileError, load_env_files
from supervisor.config.searchpath import default_path
from supervisor.config.settings import Config, JobConfig, ProgramConfig


def problems(config: Config, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return ``(key, problem)`` for everything that would keep a unit from being started."""
    found: list[tuple[str, str]] = []
    units: list[tuple[str, JobConfig | ProgramConfig]] = [
        *((f"jobs.{n}", j) for n, j in config.jobs.items()),
        # instances differ only in their index: the first stands for them all, under its program's name
        *((f"programs.{p.instance_of or n}", p) for n, p in config.programs.items() if not p.instance),
    ]
    for key, unit in units:
        found += _unit_problems(key, unit, environ)
    for name, job in config.jobs.items():
        skipped = job.from_alembic_cmd and job.command == ["true"]
        if not skipped:
            found += _readable(f"jobs.{name}.alembic_config", job.alembic_config)
    for name, alert in config.alerts.items():  # run by the daemon, from its own PATH and directory
        why = alert.command and _unresolved(alert.command[0], default_path(environ.get("PATH")), "the PATH", None)
        if why:
            found.append((f"alerts.{name}.command[0]", why))
    return found


def _unit_problems(key: str, unit: JobConfig | ProgramConfig, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    cwd_ok = True
    if unit.cwd is not None and not os.path.isdir(unit.cwd):
        cwd_ok = False
        what = "is not a directory" if os.path.exists(unit.cwd) else "does not exist"
        found.append((f"{key}.cwd", f"{unit.cwd} {what}"))
    if unit.user is not None and not _user_exists(unit.user):
        found.append((f"{key}.user", f"no such user: {unit.user!r}"))
    file_env: dict[str, str] = {}
    for i, entry in enumerate(unit.env_file):
        try:
            file_env.update(load_env_files([entry]))
        except EnvFileError as exc:  # a missing optional file ("-path") is no error
            found.append((f"{key}.env_file" + (f"[{i}]" if len(unit.env_file) > 1 else ""), str(exc)))
    own = unit.environment.get("PATH") or file_env.get("PATH")
    search = own or default_path(environ.get("PATH"))
    where_from = f"its PATH={own}" if own else "the supervisor's PATH or its scripts directory"
    commands = [(f"{key}.command[0]", unit.command[0])]
    if isinstance(unit, ProgramConfig) and unit.health is not None and unit.health.exec is not None:
        commands.append((f"{key}.health.exec[0]", unit.health.exec[0]))
    if isinstance(unit, ProgramConfig) and unit.health is not None and unit.health.file and unit.user is None:
        found += _writable_dir(f"{key}.health.file", unit.health.file, unit.cwd)
    for where, argv0 in commands:
        if "/" in argv0 and not os.path.isabs(argv0) and not cwd_ok:
            continue  # relative to a cwd that is already reported
        why = _unresolved(argv0, search, where_from, unit.cwd)
        if why:
            found.append((where, why))
    return found


def _user_exists(user: str) -> bool:
    try:
        if user.isdigit():
            pwd.getpwuid(int(user))
        else:
            pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _unresolved(argv0: str, search: str, where_from: str, cwd: str | None) -> str | None:
    """Return why ``argv0`` cannot be executed, or None when it resolves."""
    if "/" in argv0:
        path = Path(cwd or ".") / argv0
        if not path.is_file():
            return f"{argv0}: no such file"
        if not os.access(path, os.X_OK):
            return f"{argv0}: not executable"
        return None
    if shutil.which(argv0, path=search) is None:
        return f"{argv0!r} is not found on {where_from}"
    return None


def _readable(key: str, path: str | None) -> list[tuple[str, str]]:
    if path is None:
        return []
    if not os.path.isfile(path):
        return [(key, f"{path} does not exist" if not os.path.exists(path) else f"{path} is not a file")]
    if not os.access(path, os.R_OK):
        return [(key, f"{path} is not readable")]
    return []


def _writable_dir(key: str, path: str, cwd: str | None) -> list[tuple[str, str]]:
    """A health file goes in a directory the program can write (a read-only root with no tmpfs cannot).

    A directory that does not exist yet may be the program's to make: only one that exists and
    cannot be written is refused. A program with its own ``user`` is not judged by our access.
    """
    directory = os.path.dirname(os.path.join(cwd or ".", path)) or "."
    if os.path.isdir(directory) and not os.access(directory, os.W_OK):
        why = "a read-only filesystem: mount a tmpfs there" if _read_only(directory) else "no write permission"
        return [(key, f"{directory} is not writable ({why}): the program cannot write {path}")]
    return []


def _read_only(directory: str) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False
