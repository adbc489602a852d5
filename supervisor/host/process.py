"""Spawn, signal, sweep and reap OS processes, and pump their output line by line.

Nothing here waits on one pid: the daemon's ``Reaper`` is the only caller of
``waitpid``, so the standard library's subprocess helpers (whose own
``waitpid(pid)`` would race it) are not used.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import pwd
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from supervisor.config.searchpath import default_path
from supervisor.host import guard, oomscore
from supervisor.host.proctree import session_members
from supervisor.host.proctree import tree_rss as tree_rss  # re-exported: the runners and the daemon read RSS here
from supervisor.host.proctree import trees_rss as trees_rss
from supervisor.machine.errors import SpawnError
from supervisor.machine.events import ExitStatus
from supervisor.machine.record import Record

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LISTEN_FD = 3  # sd_listen_fds: the first handed-on socket is fd 3
LOCK_FD = 4  # a singleton's lock connection: the server cannot see it close while the program lives
# Variables that speak to *us*, not to our children (systemd notify, watchdog, sockets).
_PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
_libc = ctypes.CDLL(None, use_errno=True)


def close_inherited_fds_on_exec() -> int:
    """Mark every fd above 2 close-on-exec; return how many were inheritable.

    What our own parent handed us (a shell's extra fds, a test runner's pipes) is not
    for our children; the fast spawn path relies on close-on-exec to keep it from them.
    """
    count = 0
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            if os.get_inheritable(fd):
                os.set_inheritable(fd, False)
                count += 1
        except OSError:
            continue  # the directory's own fd, gone already
    return count


def release_guard() -> None:
    """At a graceful exit, every program reaped: close the guard's pipe and wait for it to go too."""
    guard.shared().close()


def set_subreaper() -> bool:
    """Make orphans of our descendants re-parent to us; return whether the kernel agreed."""
    return _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


@dataclass(frozen=True, repr=False, eq=False)
class SpawnSpec(Record):
    """What to run and how."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    user: str | None = None
    listen_fd: int | None = None  # handed on as fd 3 with LISTEN_FDS=1
    capture: bool = True  # pipe stdout and stderr back to us
    lock_fd: int | None = None  # handed on as fd 4 (LOCK_FD); a number above 4, so no earlier dup2 hits it
    oom_score_adj: int | None = None  # set on the child right after its exec; None: inherit ours
    stdin: str | None = None  # a file the child reads as stdin; else /dev/null


@dataclass
class Child:
    """A spawned process and the read ends of its output pipes."""

    pid: int
    stdout_fd: int | None = None
    stderr_fd: int | None = None


def child_environment(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """Return ``base`` without our private variables, updated with ``extra``.

    Unless ``extra`` sets ``PATH``, the supervisor's own scripts directory follows the inherited one.
    """
    env = {k: v for k, v in base.items() if k not in _PRIVATE_ENV}
    env.update(extra)
    if "PATH" not in extra:
        env["PATH"] = default_path(base.get("PATH"))
    return env


def _resolve_user(user: str | None) -> pwd.struct_passwd | None:
    if user is None:
        return None
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        raise SpawnError(f"unknown user {user!r}") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise SpawnError(f"cannot run as {user!r}: the supervisor is not root")
    return entry


def spawn(spec: SpawnSpec) -> Child:
    """Start ``spec`` (see ``_spawn``), then give it its ``oom_score_adj``; what it forks inherits it."""
    child = _spawn(spec)
    if spec.oom_score_adj is not None:
        oomscore.apply(child.pid, spec.oom_score_adj)
    return child


def _spawn(spec: SpawnSpec) -> Child:
    """Start ``spec``; return once the exec succeeded, or raise ``SpawnError``.

    The fast path is ``posix_spawn`` (vfork: ~0.1 ms, no copy of the daemon's memory) of the
    program itself, registered with the guard (``supervisor.host.guard``), which SIGKILLs its process
    group should we die. A program that switches user goes through util-linux's ``setpriv``
    instead, which sets PDEATHSIG after the uid change and execs it (a second exec, ~1 ms); so do
    all programs when the guard cannot run, or with ``SUPERVISOR_SPAWN=setpriv``. Without
    ``setpriv``, or with ``SUPERVISOR_SPAWN=fork``, a forked child does the same in Python (~7 ms).
    """
    entry = _resolve_user(spec.user)
    env = dict(spec.env)
    if entry is not None:
        env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    exe = spec.argv[0]
    if "/" not in exe:
        found = shutil.which(exe, path=env.get("PATH", os.defpath))
        if found is None:
            raise SpawnError(f"{exe!r} not found on PATH")
        exe = found
    if not os.path.exists(exe):
        raise SpawnError(f"{exe!r} not found")
    if not os.access(exe, os.X_OK) or os.path.isdir(exe):
        raise SpawnError(f"{exe!r} is not an executable file")
    if spec.cwd is not None and not os.path.isdir(spec.cwd):
        raise SpawnError(f"cwd {spec.cwd!r} is not a directory")
    mode = os.environ.get("SUPERVISOR_SPAWN", "")
    switches_user = entry is not None and os.geteuid() == 0
    keeper = guard.shared() if mode not in ("fork", "setpriv") else None
    if keeper is not None and keeper.available():
        env[guard.MARK] = keeper.mark  # the guard finds it by this from its exec on
        if not switches_user:
            child = _posix_spawn(spec, exe, env, [])
            keeper.register(child.pid)
            return child
    setpriv = _setpriv()
    if setpriv is not None and mode != "fork":
        argv = [setpriv, "--pdeathsig", "KILL"]
        if switches_user:
            assert entry is not None
            argv += ["--reuid", str(entry.pw_uid), "--regid", str(entry.pw_gid), "--init-groups"]
        child = _posix_spawn(spec, exe, env, [*argv, "--"])
        if keeper is not None and keeper.pid is not None:
            keeper.register(child.pid)  # PDEATHSIG kills the program; the guard its whole group
        return child
    return _fork_exec(spec, exe, env, entry)


_SIGNALS_TO_DEFAULT = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
_setpriv_path: list[str | None] = []


def _setpriv() -> str | None:
    if not _setpriv_path:
        _setpriv_path.append(shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin"))
    return _setpriv_path[0]


def _posix_spawn(spec: SpawnSpec, exe: str, env: dict[str, str], prefix: list[str]) -> Child:
    argv = [*prefix, exe, *spec.argv[1:]]
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_OPEN, 0, spec.stdin or os.devnull, os.O_RDONLY, 0),
    ]
    if spec.listen_fd is not None:
        # The shell learns the pid it will keep through exec, for sd_listen_fds' LISTEN_PID.
        argv = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh", *argv]
        env = {**env, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "listen"}
        actions.append((os.POSIX_SPAWN_DUP2, spec.listen_fd, LISTEN_FD))  # clears CLOEXEC on the copy
    if spec.lock_fd is not None:
        actions.append((os.POSIX_SPAWN_DUP2, spec.lock_fd, LOCK_FD))
    out_r = out_w = err_r = err_w = -1
    if spec.capture:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        actions[1:1] = [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
    # posix_spawn has no chdir in Python 3.11: the daemon is single-threaded, so it moves and comes back.
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if spec.cwd is not None else -1
    try:
        if spec.cwd is not None:
            os.chdir(spec.cwd)
        # Every other fd of ours is close-on-exec (Python's default, and libpq's sockets).
        pid = os.posix_spawn(
            argv[0], argv, env, file_actions=actions, setsid=True, setsigdef=_SIGNALS_TO_DEFAULT, setsigmask=()
        )
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w):
            if fd >= 0:
                os.close(fd)
        raise SpawnError(f"{exc.strerror}: {argv[0]}") from None
    finally:
        if here >= 0:
            os.fchdir(here)
            os.close(here)
    for fd in (out_w, err_w):
        if fd >= 0:
            os.close(fd)
    return Child(pid, out_r if out_r >= 0 else None, err_r if err_r >= 0 else None)


def _fork_exec(spec: SpawnSpec, exe: str, env: dict[str, str], entry: pwd.struct_passwd | None) -> Child:
    out_r = out_w = err_r = err_w = -1
    if spec.capture:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's side runs between fork and exec
        report_fd = report_w
        try:
            # Keep the report pipe clear of fd 3 and of the range closed before exec.
            report_fd = fcntl.fcntl(report_w, fcntl.F_DUPFD_CLOEXEC, 256)
            _child(spec, exe, env, entry, parent, out_w, err_w, report_fd)
        except BaseException as exc:
            code = getattr(exc, "errno", 0) or 0
            try:
                os.write(report_fd, f"{code}:{exc}".encode()[:1000])
            finally:
                os._exit(127)
    os.close(report_w)
    for fd in (out_w, err_w):
        if fd >= 0:
            os.close(fd)
    report = b""
    while chunk := os.read(report_r, 1024):  # EOF arrives with the exec (CLOEXEC)
        report += chunk
    os.close(report_r)
    if report:
        # Safe to wait here: the loop has not run since the fork, so no reaper saw this pid.
        os.waitpid(pid, 0)
        for fd in (out_r, err_r):
            if fd >= 0:
                os.close(fd)
        _, _, message = report.decode(errors="replace").partition(":")
        raise SpawnError(message)
    return Child(pid, out_r if out_r >= 0 else None, err_r if err_r >= 0 else None)


def _child(
    spec: SpawnSpec,
    exe: str,
    env: dict[str, str],
    entry: pwd.struct_passwd | None,
    parent: int,
    out_w: int,
    err_w: int,
    report_w: int,
) -> None:  # pragma: no cover - runs in the forked child
    """Set up the child between fork and exec; ``report_w`` must stay open until the exec."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)  # ignored dispositions (SIGPIPE) survive exec
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.setsid()  # own session and process group: signals reach the program's own children
    null = os.open(spec.stdin or os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if out_w >= 0:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
    if spec.listen_fd is not None:
        if spec.listen_fd == LISTEN_FD:
            os.set_inheritable(LISTEN_FD, True)
        else:
            os.dup2(spec.listen_fd, LISTEN_FD)  # dup2 clears CLOEXEC on the copy
        env.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="listen")
        first_free = LISTEN_FD + 1
    else:
        first_free = 3
    if spec.lock_fd is not None:
        os.dup2(spec.lock_fd, LOCK_FD)
        os.closerange(first_free, LOCK_FD)
        first_free = LOCK_FD + 1
    os.closerange(first_free, report_w)
    os.closerange(report_w + 1, 1 << 20)
    if spec.cwd is not None:
        os.chdir(spec.cwd)
    if entry is not None and os.geteuid() == 0:
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    # After any uid change, which clears it: die with the supervisor, even by SIGKILL.
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)  # the supervisor died before prctl took effect
    os.execve(exe, spec.argv, env)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; return False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def kill_tree(pid: int) -> int:
    """SIGKILL a program's process group, then whatever is left of its session; return kills."""
    killed = 1 if signal_group(pid, signal.SIGKILL) else 0
    return killed + sweep_session(pid)


def sweep_session(sid: int) -> int:
    """SIGKILL every process still in session ``sid``: children that left the process group."""
    killed = 0
    for member in session_members(sid):
        try:
            os.kill(member, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed


def decode_status(wait_status: int) -> ExitStatus:
    """Turn a raw ``waitpid`` status into an ``ExitStatus``."""
    if os.WIFSIGNALED(wait_status):
        return ExitStatus(signal=os.WTERMSIG(wait_status))
    return ExitStatus(code=os.WEXITSTATUS(wait_status))


@dataclass
class Reaper:
    """The one owner of ``waitpid``: hands each exit to whoever spawned the pid."""

    owners: dict[int, Callable[[ExitStatus], None]] = field(default_factory=dict)
    on_orphan: Callable[[int, ExitStatus], None] | None = None

    def own(self, pid: int, on_exit: Callable[[ExitStatus], None]) -> None:
        """Register the callback that receives ``pid``'s exit status."""
        self.owners[pid] = on_exit

    def reap(self) -> int:
        """Collect every exited child without blocking; return how many were reaped."""
        count = 0
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return count
            except OSError as exc:  # pragma: no cover - EINTR is retried by Python
                if exc.errno == errno.EINTR:
                    continue
                raise
            if pid == 0:
                return count
            count += 1
            if guard.shared().reaped(pid):
                continue  # the guard itself: replaced already
            owner = self.owners.pop(pid, None)
            exit_status = decode_status(status)
            if owner is not None:
                owner(exit_status)
            elif self.on_orphan is not None:
                self.on_orphan(pid, exit_status)
