"""What every child gets, on every spawn path (posix_spawn + the guard, posix_spawn + setpriv, the Python fork)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from supervisor.host.process import SpawnSpec, close_inherited_fds_on_exec, spawn
from tests.conftest import PY, alive, wait_until

# A shell, not Python: Python itself ignores SIGPIPE and opens fds as it starts.
PROBE = [
    "sh",
    "-c",
    'echo "$(grep SigIgn /proc/$$/status | cut -f2)|$(ls /proc/$$/fd | sort -n | tr "\\n" " ")|'
    '$(readlink /proc/$$/fd/3)|$([ "$LISTEN_PID" = "$$" ] && echo ours)|$(pwd)|$(cut -d" " -f6 /proc/$$/stat)|$$";'
    "exec sleep 30",  # the test lists its fds from outside, once the shell's own pipes are gone
]


@pytest.fixture(params=["guard", "setpriv", "fork"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each spawn path (the guard's is the default one)."""
    if request.param == "guard":
        monkeypatch.delenv("SUPERVISOR_SPAWN", raising=False)
    else:
        monkeypatch.setenv("SUPERVISOR_SPAWN", str(request.param))
    return str(request.param)


# clock_nanosleep and nanosleep on x86-64 (230, 35) and arm64 (115, 101).
SLEEP_SYSCALLS = {"230", "35", "115", "101"}


def sleeping(pid: int) -> bool:
    """Whether ``pid`` is blocked in a sleep system call."""
    if "nanosleep" in Path(f"/proc/{pid}/wchan").read_text():
        return True
    return Path(f"/proc/{pid}/syscall").read_text().split(" ", 1)[0] in SLEEP_SYSCALLS


def run(spec: SpawnSpec) -> list[str]:
    """Spawn, read stdout to the end, reap; return the probe's fields."""
    close_inherited_fds_on_exec()  # as the daemon does at start-up
    child = spawn(spec)
    assert child.stdout_fd is not None and child.stderr_fd is not None
    with os.fdopen(child.stdout_fd) as out:
        fields = out.readline().strip().split("|")
        # Blocked in its sleep: by then ld.so and the locale files that sleep opens while it
        # starts (as fd 3) are closed again, and what is left is what the child inherited.
        wait_until(lambda: sleeping(child.pid), 15, "sleep to be sleeping")
        fields[1] = " ".join(sorted(os.listdir(f"/proc/{child.pid}/fd"), key=int))
    os.close(child.stderr_fd)
    os.kill(child.pid, signal.SIGKILL)
    os.waitpid(child.pid, 0)
    return fields


def test_session_signals_fds_and_cwd(path: str, tmp_path: Path) -> None:
    """Own session, no ignored signals, only 0-2 open, and the configured cwd."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # what the child must not inherit
    ignored, fds, _, _, cwd, session, pid = run(SpawnSpec(PROBE, env=dict(os.environ), cwd=str(tmp_path)))
    # Signals 1-31; 32 and up are glibc's own real-time signals, which no program handles.
    assert int(ignored, 16) & 0x7FFFFFFF == 0, f"ignored signals inherited: {ignored}"
    assert fds.split() == ["0", "1", "2"], f"leaked fds: {fds}"
    assert cwd == str(tmp_path)
    assert session == pid, "the child leads its own session"


def test_listen_socket_is_fd_3_with_our_pid(path: str) -> None:
    """With listen, fd 3 is the socket and LISTEN_PID is the child's own pid."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        _, fds, three, ours, _, _, _ = run(SpawnSpec(PROBE, env=dict(os.environ), listen_fd=sock.fileno()))
    finally:
        sock.close()
    assert three.startswith("socket:") and ours == "ours"
    assert fds.split() == ["0", "1", "2", "3"], f"fds: {fds}"


def test_child_dies_with_a_sigkilled_parent(path: str) -> None:
    """When the process that spawned it is SIGKILLed, the child goes too (the guard, or PDEATHSIG)."""
    code = (
        "import os, sys, time\n"
        "from supervisor.host.process import SpawnSpec, spawn\n"
        "c = spawn(SpawnSpec(['sleep', '100'], env=dict(os.environ), capture=False))\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(100)\n"
    )
    parent = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    # The guard covers the program from spawn()'s return; PDEATHSIG from its exec on (setpriv sets
    # it a moment before it execs the program: a window of about a millisecond, in docs/concepts.md).
    execd = lambda: (c := _cmdline(child)) and c[0].endswith("sleep") and c[1:] == ["100"]  # noqa: E731
    wait_until(execd, 15, f"child {child} to exec its program")
    parent.kill()
    parent.wait()
    wait_until(lambda: not alive(child), 5, f"child {child} to die with its parent")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_user_drop_keeps_pdeathsig(path: str) -> None:
    """user = nobody: the child runs as nobody, and still dies with its parent."""
    code = (
        "import os, time\n"
        "from supervisor.host.process import SpawnSpec, spawn\n"
        "c = spawn(SpawnSpec(['sleep', '100'], env=dict(os.environ), user='nobody', capture=False))\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(100)\n"
    )
    parent = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())

    def uid() -> str:
        status = Path(f"/proc/{child}/status").read_text().splitlines()
        return next(line for line in status if line.startswith("Uid")).split()[1]

    # setpriv drops privileges, then execs sleep: the uid changes within moments of the spawn.
    wait_until(lambda: uid() == "65534", 10, f"child {child} to run as nobody (65534)", seen=uid)
    parent.kill()
    parent.wait()
    wait_until(lambda: not alive(child), 5, f"child {child} (as nobody) to die with its parent")
