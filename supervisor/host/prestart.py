"""Spawn the programs that wait on nothing before the engine is imported; the engine adopts them.

On a start whose configuration comes from the cache, importing the engine (asyncio, structlog,
the state machines, the control server) is most of the time to the first spawn: about 80 of
93 ms in a start of 100 programs. A program that waits on nothing needs none of that to start:
no ``depends_on`` or ``after``, ``autostart``, no ``listen`` socket, no ``notify`` socket and no ``user`` to
switch to. ``start`` spawns those at once, through ``process.spawn`` with the ``SpawnSpec`` the
engine builds for them (``program_spec``, shared with the engine), and the engine's first spawn
of each takes its child (``Prestarted.take``) instead of starting another. The engine reaps,
restarts and logs it from then on; a program that exited in between is reaped on the engine's
first turn. Whatever was not taken then is killed.

Nothing starts early when the daemon would refuse to come up: when another supervisor answers
on the control socket, or when the ``http`` address or a program's ``listen`` address cannot be
bound. Should the daemon fail to come up all the same, the programs it started early are
killed and reaped before it exits (and the guard kills them should it die).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from collections.abc import Mapping

from supervisor.config.envfile import unit_environment
from supervisor.config.settings import Loaded, ProgramConfig
from supervisor.host import guard, oomscore, process, socketlock
from supervisor.host.listen import bindable
from supervisor.host.process import Child, SpawnSpec

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}


def program_spec(
    cfg: ProgramConfig,
    base_env: Mapping[str, str],
    notify_socket: str | None = None,
    listen_fd: int | None = None,
    argv: list[str] | None = None,
    capture: bool = True,
) -> SpawnSpec:
    """How a program's processes are started (its probes' too, with ``argv``).

    Env files are read at each call: an unreadable one raises ``EnvFileError``.
    """
    extra = unit_environment(cfg.env_file, cfg.environment)
    if cfg.notify and notify_socket and argv is None:
        extra["NOTIFY_SOCKET"] = notify_socket
    env = process.child_environment(dict(base_env), extra)
    if cfg.stack_dump:
        env.setdefault("PYTHONFAULTHANDLER", "1")  # SIGABRT then writes every thread's stack
    program = argv is None  # its probes keep the daemon's OOM preference
    return SpawnSpec(
        argv=argv or list(cfg.command),
        env=env,
        cwd=cfg.cwd,
        user=cfg.user,
        listen_fd=None if argv is not None else listen_fd,
        capture=capture,
        oom_score_adj=(cfg.oom_score_adj if cfg.oom_score_adj is not None else oomscore.child_default())
        if program
        else None,
    )


def eligible(cfg: ProgramConfig) -> bool:
    """Whether a program may start before the engine: it waits on nothing the engine sets up."""
    return (
        cfg.autostart
        and not cfg.depends_on
        and not cfg.after
        and cfg.listen is None
        and not cfg.notify
        and cfg.user is None
        and cfg.singleton is None  # it runs only once its lock is held, which takes the engine
    )


class Prestarted:
    """The programs started early, until the engine takes them."""

    def __init__(self) -> None:
        self.children: dict[str, tuple[SpawnSpec, Child, float]] = {}  # name: spec, child, wall time
        self.started: list[str] = []  # every name started early, taken or not

    def take(self, name: str, spec: SpawnSpec) -> tuple[Child, float] | None:
        """The child started early for ``name`` with this very spec, and when; None when there is none.

        Started with another spec (an env file edited in between), the early child is killed and
        reaped first, so that two copies of the program never run side by side.
        """
        entry = self.children.pop(name, None)
        if entry is None:
            return None
        if entry[0] != spec:
            self._kill(entry[1], reap=True)
            return None
        return entry[1], entry[2]

    def discard(self, reap: bool = True) -> list[str]:
        """Kill what was not taken (its whole group); reap it unless a reaper will. Return the names."""
        names = list(self.children)
        for _, child, _ in self.children.values():
            self._kill(child, reap)
        self.children.clear()
        return names

    @staticmethod
    def _kill(child: Child, reap: bool) -> None:
        process.kill_tree(child.pid)  # its group, and what left the group for its session
        for fd in (child.stdout_fd, child.stderr_fd):
            if fd is not None:
                os.close(fd)
        if reap:  # unreaped so far: nothing else waits for our children before the engine's loop
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
            guard.shared().reaped(child.pid)


def start(loaded: Loaded, environ: Mapping[str, str] = os.environ) -> Prestarted:
    """Spawn every eligible program now, unless the daemon could not come up; return what started."""
    started = Prestarted()
    cfg = loaded.config
    programs = {name: p for name, p in cfg.programs.items() if eligible(p)}
    if not programs or not _can_come_up(loaded):
        return started
    # Until the engine has its handlers (Daemon.run unblocks them), a stop request waits rather
    # than killing us with programs already running: they would go by the guard's SIGKILL, not
    # their stop ladders. Both spawn paths clear the mask in the child.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    process.set_subreaper()  # before any spawn: orphans of these come back to us, as later ones do
    process.close_inherited_fds_on_exec()  # what our parent handed us is not for our programs
    keeper = guard.shared()
    keeper.defer = lambda flush: None  # one write for the whole batch, below
    try:
        for name, prog in programs.items():
            try:
                spec = program_spec(prog, environ)
                wall = time.time()
                started.children[name] = (spec, process.spawn(spec), wall)
                started.started.append(name)
            except Exception:  # SpawnError, EnvFileError, OSError, or a surprise: never fatal here
                continue  # the engine starts it, and reports why it cannot
    finally:
        keeper.defer = None
        keeper.flush()
    return started


def _can_come_up(loaded: Loaded) -> bool:
    """Whether nothing we can check now would make the daemon refuse to start."""
    sup = loaded.config.supervisor
    if not socketlock.take(sup.socket, sup.group) or _taken(sup.socket):
        return False  # another supervisor: ``run`` will exit 69, and must leave nothing behind
    addresses = [sup.http] if sup.http else []
    addresses += [p.listen for p in loaded.config.programs.values() if p.listen is not None]
    return all(bindable(address) for address in addresses)


def _taken(path: str) -> bool:
    """Whether the daemon would refuse the control socket: something else there, or someone answering."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return True
    except OSError:
        return False  # nothing there
    return socketlock.answers(path)  # else nobody: a stale file is removed by the daemon
