"""The guard: a SIGKILLed supervisor leaves no program nor grandchild, whatever happened to the guard."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import PY, alive, is_guard, program, wait_until

FAMILIES = 3


def families(n: int) -> str:
    """A configuration of ``n`` programs that each keep two grandchildren in their process group."""
    return "".join(f"[programs.f{i}]\ncommand = {program('family', f'f{i}', 2)}\n" for i in range(n))


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return members


def running_families(d: Any, n: int) -> dict[int, list[int]]:
    """Wait for every family to run with both grandchildren; return each main pid's group."""

    def ready() -> dict[int, list[int]] | None:
        units = [d.unit(f"f{i}") for i in range(n)]
        if any(u["state"] != "running" for u in units):
            return None
        groups = {u["pid"]: group(u["pid"]) for u in units}
        return groups if all(len(members) == 3 for members in groups.values()) else None

    return wait_until(ready, 20, f"{n} families of three to run", seen=d.tail)


def guard_of(pid: int) -> int | None:
    """The pid of supervisor ``pid``'s guard, when it runs."""
    found = [c.pid for c in psutil.Process(pid).children() if is_guard(c) and c.status() != psutil.STATUS_ZOMBIE]
    return found[0] if found else None


def test_a_sigkilled_daemon_leaves_no_program_nor_grandchild(run_daemon) -> None:
    """SIGKILL to the supervisor: the guard kills every program's whole group, grandchildren included."""
    d = run_daemon(families(FAMILIES))
    d.wait_ready()
    everyone = [pid for members in running_families(d, FAMILIES).values() for pid in members]
    keeper = wait_until(lambda: guard_of(d.proc.pid), 5, "the guard to run")
    d.signal(signal.SIGKILL)
    d.wait_exit()
    left = lambda: [pid for pid in everyone if alive(pid)]  # noqa: E731
    wait_until(lambda: not left(), 5, "every program and grandchild to be gone", seen=left)
    wait_until(lambda: not alive(keeper), 5, f"the guard {keeper} to exit")


def test_a_killed_guard_is_replaced_and_the_programs_stay_covered(run_daemon) -> None:
    """SIGKILL to the guard: the daemon starts another, still restarts programs, and its death still kills all."""
    d = run_daemon(families(FAMILIES))
    d.wait_ready()
    before = running_families(d, FAMILIES)
    first = wait_until(lambda: guard_of(d.proc.pid), 5, "the guard to run")
    os.kill(first, signal.SIGKILL)
    second = wait_until(lambda: (g := guard_of(d.proc.pid)) != first and g, 15, "a new guard", seen=d.tail)
    event = d.wait_event("guard.replaced")
    assert event["registered"] == FAMILIES and event["pid"] == second
    # A restart after the guard's death: spawned, and covered, by the new guard.
    restarted = d.unit("f0")["pid"]
    os.kill(restarted, signal.SIGKILL)
    wait_until(
        lambda: (u := d.unit("f0"))["state"] == "running" and u["pid"] != restarted,
        10,
        "f0 to be restarted",
        seen=d.tail,
    )
    after = running_families(d, FAMILIES)
    assert after[d.unit("f0")["pid"]] and set(before) - set(after) == {restarted}
    d.signal(signal.SIGKILL)
    d.wait_exit()
    everyone = {pid for members in after.values() for pid in members}
    left = lambda: [pid for pid in everyone if alive(pid)]  # noqa: E731
    wait_until(lambda: not left(), 5, "programs started before and after the guard's death to be gone", seen=left)


# Spawns a program, waits until the guard has read its line (the pipe empty, the guard back in
# read(0, ...)), kills and reaps it (through the Reaper, or by a bare waitpid that the guard never
# hears of), prints its pid, whether the guard still covers it, its start time and the guard's
# pid, and waits to be killed.
REAPS = """\
import fcntl, os, signal, struct, sys, termios, time
from supervisor.host import guard
from supervisor.host.process import Reaper, SpawnSpec, spawn
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
child = spawn(SpawnSpec(["sleep", "100"], env=dict(os.environ), capture=False))
keeper = guard.shared()
with open(f"/proc/{child.pid}/stat") as f:
    start = f.read().rpartition(") ")[2].split()[19]
def taken():
    unread = struct.unpack("i", fcntl.ioctl(keeper._fd, termios.FIONREAD, b"0000"))[0]
    with open(f"/proc/{keeper.pid}/syscall") as f:
        call = f.read().split()
    return unread == 0 and call[0] in ("0", "63") and call[1] == "0x0"  # read(0, ...) on x86-64, arm64
deadline = time.monotonic() + 5
while not taken():
    assert time.monotonic() < deadline, "the guard did not take its line"
    time.sleep(0.001)
os.kill(child.pid, signal.SIGKILL)
if sys.argv[1] == "reaper":
    done = []
    reaper = Reaper()
    reaper.own(child.pid, done.append)
    while not done:
        signal.sigtimedwait({signal.SIGCHLD}, 5)
        reaper.reap()
else:
    os.waitpid(child.pid, 0)
print(child.pid, child.pid in keeper.registered, start, keeper.pid, flush=True)
time.sleep(100)
"""


def start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[19]


def reuse(pid: int, not_started_at: str) -> subprocess.Popen[bytes]:
    """Start an unrelated session leader whose pid is ``pid`` (set through ns_last_pid), born at another tick."""
    for _ in range(200):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        proc = subprocess.Popen(["sleep", "100"], start_new_session=True)
        if proc.pid == pid and start_time(pid) != not_started_at:
            return proc
        proc.kill()
        proc.wait()
    pytest.fail(f"could not start a process as pid {pid}: something else on the machine took it each time")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to choose the next pid (ns_last_pid)")
@pytest.mark.parametrize("reaped_by", ["reaper", "bare-waitpid"])
def test_a_reaped_pid_reused_by_an_unrelated_process_is_not_killed(reaped_by: str) -> None:
    """A program's pid, once reaped, may go to someone else's process group: the guard leaves that one alone."""
    parent = subprocess.Popen([PY, "-c", REAPS, reaped_by], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid_text, covered, start, keeper_text = parent.stdout.readline().split()
    pid, keeper = int(pid_text), int(keeper_text)
    # Through the Reaper the guard is told at once; after a bare waitpid only the start time tells.
    assert covered == ("False" if reaped_by == "reaper" else "True")
    stranger = reuse(pid, start)
    try:
        assert os.getpgid(pid) == pid, "the stranger leads a process group numbered like the reaped program"
        parent.kill()
        parent.wait()
        wait_until(lambda: not alive(keeper), 5, f"the guard {keeper} to read EOF and exit")
        # The guard has exited, so any kill it made is done: dead, or SIGKILL pending (bit 9 of the masks).
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        pending = int(status["SigPnd"], 16) | int(status["ShdPnd"], 16)
        assert stranger.poll() is None and not pending & 1 << (signal.SIGKILL - 1), "the guard killed a stranger"
    finally:
        stranger.kill()
        stranger.wait()


# Spawns through a guard that cannot start, or one that dies at once every time, and prints the
# program's pid (logs go to stderr).
FALLS_BACK = """\
import os, signal, sys, time
from supervisor.host import guard, logs
from supervisor.host.process import Reaper, SpawnSpec, spawn
logs.configure("json", stream=sys.stderr)
if sys.argv[1] == "no-shell":
    guard._shared[:] = [guard.Guard(shell="/nonexistent/sh")]
else:
    guard._shared[:] = [guard.Guard(argv=[guard.NAME, "-c", "exit 0"])]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    reaper = Reaper()
    assert guard.shared().available()
    while not guard.shared().given_up:
        signal.sigtimedwait({signal.SIGCHLD}, 5)
        reaper.reap()
child = spawn(SpawnSpec(["sleep", "100"], env=dict(os.environ), capture=False))
print(child.pid, flush=True)
time.sleep(100)
"""


@pytest.mark.parametrize("trouble", ["no-shell", "dies-at-once"])
def test_without_a_guard_programs_start_through_setpriv_and_still_die_with_us(trouble: str) -> None:
    """A guard that cannot start or keeps dying is given up, once, and PDEATHSIG covers the programs."""
    parent = subprocess.Popen([PY, "-c", FALLS_BACK, trouble], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert parent.stdout is not None and parent.stderr is not None
    line = parent.stdout.readline()
    assert line, parent.stderr.read().decode()
    child = int(line)
    execd = lambda: (c := psutil.Process(child).cmdline()) and c[0].endswith("sleep") and c[1:] == ["100"]  # noqa: E731
    wait_until(execd, 15, f"setpriv to exec the program as {child}")  # with PDEATHSIG set
    parent.kill()
    parent.wait()
    wait_until(lambda: not alive(child), 5, f"child {child} to die with its parent")
    logged = parent.stderr.read().decode()
    assert logged.count('"guard.unavailable"') == 1, logged


def test_a_graceful_exit_leaves_no_guard(run_daemon) -> None:
    """SIGTERM: the programs stop, and the guard is gone by the time the supervisor has exited."""
    d = run_daemon(families(1))
    d.wait_ready()
    keeper = wait_until(lambda: guard_of(d.proc.pid), 5, "the guard to run")
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    with pytest.raises(psutil.NoSuchProcess):  # neither running nor a zombie: the supervisor reaped it
        psutil.Process(keeper)


WINDOW = """
import os, signal, subprocess, sys
from supervisor.host import guard, process
keeper = guard.shared()
assert keeper.available()
keeper.defer = lambda flush: None  # the "+ PID" line never leaves: only the mark can tell
# Same name, its own session, started after the guard: only the mark tells them apart.
quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
bystander = subprocess.Popen(["/bin/sleep", "302"], start_new_session=True, **quiet)
child = process.spawn(process.SpawnSpec(sys.argv[1:], dict(os.environ), capture=False))
assert keeper.registered == {child.pid}
print(child.pid, keeper.pid, bystander.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dead after the spawn, before its registration reached the guard
"""


@pytest.mark.parametrize(
    "argv",
    [["/bin/sleep", "301"], ["/usr/bin/env", "sleep", "301"], ["/bin/sh", "-c", "/bin/sleep 301; exit 0"]],
    ids=["direct", "exec-wrapper", "forking-wrapper"],
)
def test_a_daemon_killed_between_a_spawn_and_its_registration_leaves_no_program(argv: list[str]) -> None:
    """A program whose pid never reached the guard is still found, by its mark, and nothing else is."""
    before = subprocess.Popen(["/bin/sleep", "300"], start_new_session=True)  # same name, started before
    bystander = None
    try:
        out = subprocess.run([PY, "-c", WINDOW, *argv], capture_output=True, text=True, timeout=30)
        assert out.returncode == -signal.SIGKILL, out.stderr
        pid, keeper, bystander = map(int, out.stdout.split())
        members = group(pid)
        wait_until(lambda: not alive(pid), 10, f"program {pid} to be killed by guard {keeper}")
        wait_until(lambda: not alive(keeper), 10, f"guard {keeper} to finish")
        left = [m for m in members if alive(m)]
        assert not left, f"the program's group {members} was not all killed: {left} left"
        assert before.poll() is None, "a session leader of the same name, started before the spawn, was killed"
        assert alive(bystander), "an unmarked session leader of the same name, started meanwhile, was killed"
    finally:
        before.kill()
        before.wait()
        if bystander is not None and alive(bystander):
            os.kill(bystander, signal.SIGKILL)


DAEMONIZES = """import os, sys, time
if os.fork() == 0:
    os.setsid()  # a grandchild in a session of its own: out of the program's process group
    time.sleep(300)
    os._exit(0)
time.sleep(300)
"""


def test_a_sigkilled_daemon_leaves_no_grandchild_that_left_for_a_session_of_its_own(run_daemon, tmp_path) -> None:
    """A grandchild that called setsid is out of its program's group, but still carries the mark."""
    script = tmp_path / "daemonizes.py"
    script.write_text(DAEMONIZES)
    d = run_daemon(f'[programs.p]\ncommand = ["{PY}", "{script}"]\n')
    d.wait_ready()
    main = wait_until(lambda: (u := d.unit("p"))["state"] == "running" and u["pid"], 10, "p to run")
    runaway = wait_until(
        lambda: [c.pid for c in psutil.Process(main).children() if os.getsid(c.pid) == c.pid],
        10,
        "the grandchild to lead a session of its own",
    )[0]
    d.signal(signal.SIGKILL)
    d.wait_exit()
    wait_until(lambda: not alive(main) and not alive(runaway), 10, f"{main} and its runaway {runaway} to be gone")


CLOSED_LOOP = """
import asyncio, os, sys
from supervisor.host import guard, process
keeper = guard.shared()
assert keeper.available()
loop = asyncio.new_event_loop()
keeper.defer = loop.call_soon
loop.close()  # a daemon's loop that ended without resetting the guard's batching
child = process.spawn(process.SpawnSpec(["/bin/sleep", "303"], dict(os.environ), capture=False))
print(child.pid, keeper.defer is None, keeper._lines == [], child.pid in keeper.registered, flush=True)
os.kill(child.pid, 9)
os.waitpid(child.pid, 0)
"""


def test_a_spawn_after_the_loop_closed_returns_its_child_and_registers_it_at_once() -> None:
    """Batching through a closed loop must not fail the spawn of a program that is already running."""
    out = subprocess.run([PY, "-c", CLOSED_LOOP], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    _, unbatched, flushed, registered = out.stdout.split()
    assert (unbatched, flushed, registered) == ("True", "True", "True")
