"""``supervisor exec``: one command in a program's environment, as ``foreman run`` and ``docker compose run``.

No daemon is needed: the file is read as ``check`` reads it. The command gets what program NAME
would get (its env files, ``environment``, ``PATH``, ``cwd`` and ``user``), once the dependencies
NAME waits on (directly, or through its jobs and programs) answer their probes. Then this process
*becomes* the command (``execvpe``): its exit code, signals, stdin and terminal are the command's own.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from supervisor.config.settings import Config
from supervisor.machine.errors import EXIT_CONFIG, EXIT_OK, ConfigError, ConfigNotFound

EXIT_USAGE = 2
EXIT_NOT_FOUND = 127  # as a shell says "command not found"


def dependencies_of(config: Config, name: str) -> list[str]:
    """Return the dependencies unit ``name`` waits on, directly or through the jobs and programs it names."""
    found: list[str] = []
    seen: set[str] = set()
    todo = [name]
    while todo:
        unit = todo.pop(0)
        if unit in seen:
            continue
        seen.add(unit)
        if unit in config.dependencies:
            found.append(unit)
        elif unit in config.jobs:
            todo.extend(config.jobs[unit].depends_on)
            lock = config.jobs[unit].lock
            if lock:
                todo.append(lock)
        elif unit in config.programs:
            todo.extend(config.programs[unit].depends_on)
        elif unit in config.templates:  # a program with instances: they all wait on the same
            todo.extend(config.templates[unit].depends_on)
    return found


def run(config_path: str | None, like: str | None, wait: bool, argv: list[str]) -> int:
    """Wait, then become ``argv`` in program ``like``'s environment; return a code only when that fails."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("supervisor: exec needs a command: supervisor exec [--like NAME] -- CMD...", file=sys.stderr)
        return EXIT_USAGE
    from supervisor.stack import limits

    limits.export(os.environ)  # ${SUPERVISOR_CPUS} and the like, as `run` sets them
    from supervisor.config.loader import load
    from supervisor.config.settings import find_path, path_origin

    try:
        loaded = load(find_path(config_path))
    except ConfigNotFound as exc:
        print(f"supervisor: {exc.render(path_origin(config_path))}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_CONFIG
    programs = loaded.config.programs
    name = like if like is not None else next(iter(programs), None)
    if name in loaded.config.templates:  # a program with instances: as its first, web:0, has it
        name = loaded.config.members(name)[0]
    if name not in programs:
        known = ", ".join(dict.fromkeys(p.instance_of or n for n, p in programs.items())) or "none"
        what = f"no program named {name!r}" if name is not None else f"{loaded.path} has no programs"
        print(f"supervisor: exec --like: {what}; the programs are: {known}", file=sys.stderr)
        return EXIT_USAGE
    from supervisor.host.prestart import program_spec
    from supervisor.machine.errors import SupervisorError

    try:
        spec = program_spec(programs[name], os.environ, argv=list(argv), capture=False)
    except (SupervisorError, OSError) as exc:  # an env file that cannot be read, as its spawn would fail
        print(f"supervisor: exec --like {name}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    deps = dependencies_of(loaded.config, name)
    if wait and deps:
        from supervisor import runtime

        try:
            code = runtime.wait(loaded, None, deps)
        except KeyboardInterrupt:
            return 130  # Ctrl-C while waiting: CMD never ran
        if code != EXIT_OK:
            return code
    return become(spec)


def become(spec: Any) -> int:
    """Replace this process with ``spec``'s command, as its user and in its directory; a code if it cannot."""
    env = dict(spec.env)
    try:
        if spec.cwd is not None:  # first, as root may enter where the user may not: as the spawn does
            os.chdir(spec.cwd)
        if spec.user is not None:
            _switch_user(spec.user, env)
    except (OSError, LookupError) as exc:
        print(f"supervisor: exec: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # Python ignores SIGPIPE and SIGXFSZ for itself; an exec'd command must get the defaults back,
    # or `CMD | head` would never end it.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(spec.argv[0], spec.argv, env)  # PATH from env: the program's own
    except OSError as exc:
        print(f"supervisor: exec: {spec.argv[0]!r}: {exc.strerror}", file=sys.stderr)
    return EXIT_NOT_FOUND


def _switch_user(user: str, env: dict[str, str]) -> None:
    """Become ``user`` (from root), with its groups and home, as the program's spawn does."""
    import pwd

    entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    if os.geteuid() == entry.pw_uid:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"cannot run as {user!r}: not root (the program would run as {user!r})")
    os.initgroups(entry.pw_name, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
