"""The guard: one small shell that SIGKILLs our programs' process groups when we die.

PDEATHSIG through ``setpriv`` costs every spawn a second exec (about 1 ms). Instead, the
first spawn starts one long-lived ``/bin/sh`` (dash: about 1 MB resident) in its own session,
with INT, TERM, HUP and QUIT ignored and the read end of a pipe as its stdin; the write end
stays with us alone (close-on-exec, like every fd of the daemon). When the pipe reads EOF,
because we exited or were SIGKILLed, the guard SIGKILLs our programs' process groups (our
programs lead their own session and group, so the pid is the pgid) and exits. It finds them two
ways:

- **By mark.** Every program gets ``SUPERVISOR_SPAWN_MARK`` in its environment, random and the
  same for all the programs of one daemon, and handed to the guard as an argument when it
  starts. The guard kills each session leader started since our first spawn whose
  ``/proc/PID/environ`` holds it: our programs, even behind an exec wrapper (``env``,
  ``tini``), and nobody else whatever their name. This covers a program from its exec on, so
  there is no window between ``posix_spawn`` and any line of ours. (The pipe's EOF comes only
  after a spawned child's exec, since the child holds its own copy of the write end until then.)
  ``/proc/PID/environ`` shows the environment as it was at exec, where it was put: a program
  that writes over that memory (``setproctitle``, as Celery, gunicorn and PostgreSQL do for
  their titles) hides its mark from then on, and then only its pid line covers it; a grandchild
  of that kind in a session of its own is not found. Reading a process's environment takes its
  memory map's lock, so a process stuck on a hung file system may slow the scan, which comes
  after every registered group is killed.
- **By pid.** After a spawn we write ``+ PID``; once the reaper has collected the pid,
  ``- PID``. This covers a program that empties its environment (``env -i``). The lines are
  batched: written once per turn of the event loop, not per spawn, because each write wakes the
  guard, and on this kind of VM a wake-up of a process on the other CPU costs about 75 us, where
  the write itself costs 0.4.

A graceful exit has reaped every program first; it writes ``x``, and the guard exits without a
scan.

A reused pid is never killed: it is unregistered as soon as it is reaped, and the guard also
compares the process's start time (``/proc/PID/stat`` field 22) with the one it read on ``+``, for
the pids someone reaped without us (a test's own ``waitpid``) and for the moment between a
``waitpid`` and its ``- PID`` line. The scan by mark kills only processes that carry our mark.

The supervisor must never be the failure. Writes are non-blocking and SIGPIPE is ignored, so a
dead or stuck guard shows as EPIPE or EAGAIN, never as a hang or a crash. A guard that dies is
reaped like any child and replaced at once, and every live pid is registered again, so the
programs already running are covered again within the reaper's wake-up. A stuck guard is
SIGKILLed before its pipe is closed (it would read EOF and kill our programs). After three
guards in a row that died within a second of their start, or one that could not start, we give
up on it and the spawner falls back to ``setpriv`` (PDEATHSIG) for the rest of our life.

The guard is per process, like the pid whose death it watches, hence ``shared()``; a forked
child gets a fresh one.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

NAME = "supervisor-guard"  # its argv[0]: what ps shows, and how tests find it
QUICK_DEATH_S = 1.0
QUICK_DEATHS_TO_GIVE_UP = 3
EXIT_WAIT_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc's unit of start times (USER_HZ)
MARK = "SUPERVISOR_SPAWN_MARK"  # the variable that marks our programs, for the guard

# POSIX sh, builtins only: no fork while it waits, and nothing but this loop in memory. $1 is the
# mark, $2 the clock tick (since boot, as /proc/PID/stat field 22 counts) of our first spawn. An
# entry of $pids is " PID:STARTTIME " (field 22, read by the guard: reading it here would wait
# for the child's exec to finish, about 0.5 ms); removal cuts it out with two pattern expansions.
# A pid gone before its line is read is not ours any more, and is left out. dash's read drops
# the NUL separators of /proc/PID/environ; the mark is fixed-length hex, so it cannot run on into
# the next variable's name.
SCRIPT = """\
trap '' INT TERM HUP QUIT
set -f
cd /
want="SUPERVISOR_SPAWN_MARK=$1"
since=$2
pids=' '
while read -r op p; do
  case $op in
    +) st=
       IFS= read -r st 2>/dev/null < "/proc/$p/stat"
       set -- ${st##*") "}
       [ $# -ge 20 ] && shift 19 && pids="$pids$p:$1 " ;;
    -) case $pids in *" $p:"*) pids="${pids%% "$p":*} ${pids#* "$p":* }" ;; esac ;;
    x) exit 0 ;;
  esac
done
for e in $pids; do
  p=${e%%:*}
  st=
  IFS= read -r st 2>/dev/null < "/proc/$p/stat"
  set -- ${st##*") "}
  [ $# -ge 20 ] && shift 19 && [ "$1" != "${e#*:}" ] && continue
  kill -s KILL -- "-$p" 2>/dev/null
done
set +f
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  st=
  IFS= read -r st 2>/dev/null < "$d/stat" || continue
  set -f
  set -- ${st##*") "}
  set +f
  [ $# -ge 20 ] && [ "$4" = "$p" ] || continue
  shift 19
  [ "$1" -ge "$since" ] 2>/dev/null || continue
  env=
  l=
  { while IFS= read -r l || [ -n "$l" ]; do env="$env$l"; l=; done < "$d/environ"; } 2>/dev/null
  case $env in *"$want"*) kill -s KILL -- "-$p" 2>/dev/null ;; esac
done
"""


class Guard:
    """The guard process of this process, and the pids it would kill."""

    def __init__(self, argv: list[str] | None = None, shell: str = "/bin/sh") -> None:
        self.shell = shell
        # The script comes in the environment, so that ps shows one short line, not the script.
        self.argv = argv or [NAME, "-c", 'eval "$SUPERVISOR_GUARD"']
        self.owner = os.getpid()
        self.mark = os.urandom(8).hex()  # what every program of ours carries in its environment as MARK
        self.pid: int | None = None  # None: not running (never started, reaped, or given up)
        self.registered: set[int] = set()  # the programs it covers
        self.given_up = False
        self.quick_deaths = 0
        self.restarts = 0
        # How lines are batched: set to the event loop's call_soon, a flush waits for the end of
        # the loop's turn; None writes at once.
        self.defer: Callable[[Callable[[], None]], object] | None = None
        self._lines: list[bytes] = []
        self._fd = -1
        self._since = 0  # the clock tick of the first start: no program of ours is older
        self._started_at = 0.0
        self._atexit = False

    def available(self) -> bool:
        """Start the guard when none runs yet; return whether spawns may rely on it."""
        if self.pid is not None:
            return True
        if self.given_up:
            return False
        return self._start()

    def register(self, pid: int) -> None:
        """Have the guard cover ``pid`` by its number too (its mark covers it already)."""
        self.registered.add(pid)
        self._queue(f"+ {pid}\n".encode())

    def reaped(self, pid: int) -> bool:
        """Learn that ``pid`` was reaped: stop covering it; return True when it was the guard itself."""
        if pid == self.pid:
            self.pid = None  # reaped: the number may be reused, so never signal it again
            self._replace(f"guard {pid} died")
            return True
        if pid in self.registered:
            self.registered.discard(pid)
            self._queue(f"- {pid}\n".encode())
        return False

    def flush(self) -> None:
        """Write the lines queued so far: in one write, or a few of up to PIPE_BUF bytes each."""
        lines, self._lines = self._lines, []
        chunk = b""
        for line in lines:
            if len(chunk) + len(line) > select.PIPE_BUF:
                if not self._send(chunk):
                    self._replace("its pipe is broken or full")  # the new guard is handed every pid
                    return
                chunk = b""
            chunk += line
        if chunk and not self._send(chunk):
            self._replace("its pipe is broken or full")

    def close(self) -> None:
        """Close the pipe and wait (bounded) for the guard to finish: a graceful exit leaves no guard."""
        if self._fd < 0:
            return
        if self.owner == os.getpid():  # not a forked child's atexit: the guard is its parent's
            self.flush()
            if self._fd < 0:
                return  # the flush found it dead, and no new one could start
            if not self.registered:
                self._send(b"x\n")  # every program is reaped: nothing to scan for
        os.close(self._fd)
        self._fd = -1
        pid, self.pid = self.pid, None
        if pid is None or self.owner != os.getpid():
            return
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return  # gone and reaped already
        try:
            select.select([pidfd], [], [], EXIT_WAIT_S)
            os.waitpid(pid, os.WNOHANG)
        except OSError:
            pass
        finally:
            os.close(pidfd)

    # ---- the pipe and the process ---------------------------------------------------

    def _queue(self, line: bytes) -> None:
        if self._fd < 0:
            return
        self._lines.append(line)
        if self.defer is not None and len(self._lines) == 1:
            try:
                self.defer(self.flush)
                return
            except Exception:  # a closed loop: the caller's spawn must not fail for it
                self.defer = None
        if self.defer is None:
            self.flush()

    def _send(self, data: bytes) -> bool:
        if self._fd < 0:
            return False
        try:
            # Up to PIPE_BUF (4096) bytes go whole or not at all; more could go in part, which
            # the guard would misread, so a batch that large goes through a new guard instead.
            if len(data) > select.PIPE_BUF or os.write(self._fd, data) != len(data):
                return False
        except OSError:  # EPIPE: it died; EAGAIN: it stopped reading
            return False
        return True

    def _start(self) -> bool:
        if not self._since:
            self._since = int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLOCK_TICKS) - 1  # a tick early: rounding
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            self.pid = os.posix_spawn(
                self.shell,
                [*self.argv, NAME, self.mark, str(self._since)],
                {"PATH": "/usr/bin:/bin", "SUPERVISOR_GUARD": SCRIPT},
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_end, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                ],
                setsid=True,
                setsigdef=[s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)],
                setsigmask=(),
            )
        except OSError as exc:
            os.close(write_end)
            self._give_up(f"cannot start {self.shell}: {exc.strerror}")
            return False
        finally:
            os.close(read_end)
        self._fd = write_end
        self._lines = []  # a new guard is handed every registered pid below
        self._started_at = time.monotonic()
        if not self._atexit:
            atexit.register(self.close)
            self._atexit = True
        lines = "".join(f"+ {pid}\n" for pid in self.registered).encode()
        try:
            os.write(self._fd, lines)  # blocking: a fresh guard reads everything we hand it
        except OSError:
            self._discard()
            self._give_up("a new guard refused its registrations")
            return False
        os.set_blocking(self._fd, False)
        return True

    def _replace(self, why: str) -> bool:
        if self.given_up:
            return False
        lived_s = time.monotonic() - self._started_at
        self._discard()
        self.quick_deaths = self.quick_deaths + 1 if lived_s < QUICK_DEATH_S else 0
        if self.quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
            self._give_up(f"{self.quick_deaths} guards in a row died within {QUICK_DEATH_S}s")
            return False
        if not self._start():
            return False
        self.restarts += 1
        _log().warning(
            "guard.replaced",
            why=why,
            pid=self.pid,
            registered=len(self.registered),
            next="the new guard covers every running program",
        )
        return True

    def _discard(self) -> None:
        if self.pid is not None:
            # Still our unreaped child (or its zombie): kill it before it can read EOF.
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.pid = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _give_up(self, why: str) -> None:
        self.given_up = True
        _log().error(
            "guard.unavailable",
            why=why,
            registered=len(self.registered),
            uncovered="the programs running now would outlive a SIGKILL of the supervisor",
            next="programs start through setpriv (PDEATHSIG) from now on",
        )


def _log() -> Any:
    from supervisor.host import logs  # only on the rare paths: spawning alone never configures logging

    return logs.get()


_shared: list[Guard] = []


def shared() -> Guard:
    """Return this process's guard (created, not started, on first use; a forked child gets its own)."""
    if not _shared or _shared[0].owner != os.getpid():
        _shared[:] = [Guard()]
    return _shared[0]
