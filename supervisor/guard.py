"""The guard: one small shell that SIGKILLs our programs' process groups when we die.

PDEATHSIG through ``setpriv`` costs every spawn a second exec (about 1 ms). Instead, the
first spawn starts one long-lived ``/bin/sh`` (dash: about 1 MB resident) in its own session,
with INT, TERM, HUP and QUIT ignored and the read end of a pipe as its stdin; the write end
stays with us alone (close-on-exec, like every fd of the daemon). After each spawn we write
``+ PID``; once the reaper has collected the pid, ``- PID``. When the pipe reads EOF,
because we exited or were SIGKILLed, the guard SIGKILLs each registered process group (our
programs lead their own session and group, so the pid is the pgid) and exits. A graceful exit
has reaped every program first, so nothing is registered then.

A reused pid is never killed: it is unregistered as soon as it is reaped, and the guard also
compares the process's start time (``/proc/PID/stat`` field 22) with the one it read on ``+``, for
the pids someone reaped without us (a test's own ``waitpid``) and for the microseconds between
a ``waitpid`` and its ``- PID`` line.

No race window: a program is covered from the moment its line is in the pipe (EOF comes after
buffered lines, so the guard's own latency does not count), and before that by the line that
announces its spawn (``? TICKS MARK``). ``posix_spawn`` returns after the program's exec, and
the program may run for a while before the daemon is scheduled again to write ``+ PID`` (the
bench's ``kill -9`` right after a child's first instruction found that gap in 4 of 14 runs). The
spawn puts a mark unique to it in the program's environment (``SUPERVISOR_SPAWN_MARK``). If the
pipe ends while a spawn is announced and unregistered, the guard kills each session leader
started since the announcement whose ``/proc/PID/environ`` holds that mark: our program, even
behind an exec wrapper (``env``, ``tini``), and nothing else, whatever its name. (The pipe's EOF
comes only after the spawned child's exec: until then the child holds its own copy of the write
end.) A program that empties its environment before it execs (``env -i``) in that window is
missed. With ``setpriv`` there was a gap of about a millisecond, from the spawn to setpriv's
``prctl``, in which the daemon's death went unnoticed.

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
from typing import Any

NAME = "supervisor-guard"  # its argv[0]: what ps shows, and how tests find it
QUICK_DEATH_S = 1.0
QUICK_DEATHS_TO_GIVE_UP = 3
EXIT_WAIT_S = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc's unit of start times (USER_HZ)
MARK = "SUPERVISOR_SPAWN_MARK"  # the variable that marks a program whose spawn is pending

# POSIX sh, builtins only: no fork while it waits, and nothing but this loop in memory. An entry
# of $pids is " PID:STARTTIME " (field 22 of /proc/PID/stat, read by the guard: reading it here
# would wait for the child's exec to finish, about 0.5 ms); removal cuts it out with two pattern
# expansions. A pid gone before its line is read is not ours any more, and is left out.
#
# "? TICKS MARK" comes before each spawn and stays pending until its "+ PID" (or "- 0" for a
# spawn that failed): a program runs from posix_spawn's return, before its "+" is written. If the
# pipe ends while a spawn is pending, every session leader started at or after TICKS (clock ticks
# since boot, as /proc/PID/stat field 22 counts them) whose environment holds MARK is that program,
# and its group is killed too. dash's read drops the environment's NUL separators; a mark is
# fixed-length hex, so it cannot run on into the next variable's name.
SCRIPT = """\
trap '' INT TERM HUP QUIT
set -f
cd /
pids=' '
mark=
while read -r op p; do
  case $op in
    \\?) mark=$p ;;
    +) mark=
       st=
       IFS= read -r st 2>/dev/null < "/proc/$p/stat"
       set -- ${st##*") "}
       [ $# -ge 20 ] && shift 19 && pids="$pids$p:$1 " ;;
    -) mark=
       case $pids in *" $p:"*) pids="${pids%% "$p":*} ${pids#* "$p":* }" ;; esac ;;
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
[ -n "$mark" ] || exit 0
since=${mark%% *}
want="SUPERVISOR_SPAWN_MARK=${mark#* }"
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
        self.argv = argv or [NAME, "-c", SCRIPT]
        self.owner = os.getpid()
        self.pid: int | None = None  # None: not running (never started, reaped, or given up)
        self.registered: set[int] = set()  # the programs it covers
        self.given_up = False
        self.quick_deaths = 0
        self.restarts = 0
        self._fd = -1
        self._started_at = 0.0
        self._atexit = False

    def available(self) -> bool:
        """Start the guard when none runs yet; return whether spawns may rely on it."""
        if self.pid is not None:
            return True
        if self.given_up:
            return False
        return self._start()

    def expect(self) -> str:
        """Announce a spawn; return the mark to put in its environment under ``MARK``.

        Until ``register`` or ``failed``, a session leader started from now on whose environment
        holds the mark is ours, should we die before naming its pid.
        """
        ticks = int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLOCK_TICKS) - 1  # rounding: a tick early
        mark = os.urandom(8).hex()
        if not self._send(f"? {ticks} {mark}\n".encode()):
            self._replace("its pipe is broken or full")
        return mark

    def failed(self) -> None:
        """The announced spawn did not happen."""
        self._send(b"- 0\n")

    def register(self, pid: int) -> bool:
        """Have the guard cover ``pid``; return False when no guard could take it."""
        self.registered.add(pid)
        return self._send(f"+ {pid}\n".encode()) or self._replace("its pipe is broken or full")

    def reaped(self, pid: int) -> bool:
        """Learn that ``pid`` was reaped: stop covering it; return True when it was the guard itself."""
        if pid == self.pid:
            self.pid = None  # reaped: the number may be reused, so never signal it again
            self._replace(f"guard {pid} died")
            return True
        if pid in self.registered:
            self.registered.discard(pid)
            if not self._send(f"- {pid}\n".encode()):
                self._replace("its pipe is broken or full")
        return False

    def close(self) -> None:
        """Close the pipe and wait (bounded) for the guard to finish: a graceful exit leaves no guard."""
        if self._fd < 0:
            return
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

    def _send(self, line: bytes) -> bool:
        if self._fd < 0:
            return False
        try:
            os.write(self._fd, line)  # shorter than PIPE_BUF: written whole or not at all
        except OSError:  # EPIPE: it died; EAGAIN: it stopped reading
            return False
        return True

    def _start(self) -> bool:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            self.pid = os.posix_spawn(
                self.shell,
                self.argv,
                {"PATH": "/usr/bin:/bin"},
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
            next="programs start through setpriv (PDEATHSIG) from now on",
        )


def _log() -> Any:
    from supervisor import logs  # only on the rare paths: spawning alone never configures logging

    return logs.get()


_shared: list[Guard] = []


def shared() -> Guard:
    """Return this process's guard (created, not started, on first use; a forked child gets its own)."""
    if not _shared or _shared[0].owner != os.getpid():
        _shared[:] = [Guard()]
    return _shared[0]
