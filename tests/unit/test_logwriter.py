"""The daemon's stdout writer: a reader that comes back after lines were dropped gets them reported, never a hang."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

# In an event loop as the daemon's: fill the pipe and the backlog until lines are dropped; then be
# the reader that comes back, reading the pipe empty and logging again without yielding to the
# loop, so that one of structlog's writes drains the whole backlog itself (1 MiB through a 64 KiB
# pipe: about 16 rounds); then let the loop run, and look for the report.
SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from supervisor.host import logs

    def read_all(fd):
        got = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return got
            got += chunk

    async def main():
        r, w = os.pipe()
        os.set_blocking(r, False)
        out = logs.configure("json", "info", os.fdopen(w, "w"))
        log = logs.get()
        while out.dropped_total == 0:
            log.info("fill", pad="x" * 1000)
        for _ in range(200):
            read_all(r)
            log.info("tick")
        for _ in range(5):
            await asyncio.sleep(0)
        seen = read_all(r)
        if b'"log.dropped"' not in seen:
            sys.exit("the drops were never reported")
        print("reported", out.dropped_total)

    asyncio.run(main())
    """
)


def test_a_write_that_drains_the_backlog_reports_the_drops_without_deadlocking() -> None:
    """The report of dropped lines is itself a log line: written from inside a write, it once deadlocked.

    structlog's PrintLogger holds a (non-reentrant) lock while it writes; a ``log.dropped`` line
    logged from inside that write waited on the same lock for ever, and the daemon with it (seen
    as a daemon that never exited after SIGTERM while its log reader was catching up).
    """
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("reported "), proc.stdout


# The daemon's stdout on /dev/full (every write: ENOSPC); then the disk has room again, which the
# script plays by putting a pipe on the same descriptor; the next lines go through and are read.
FULL_THEN_ROOM = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from supervisor.host import logs

    async def main():
        out = logs.configure("json", "info", open("/dev/full", "w"))
        log = logs.get()
        for _ in range(10):
            log.info("lost")
        assert out.dropped_total == 10, out.dropped_total
        r, w = os.pipe()
        os.dup2(w, out.fileno())
        log.info("back")
        for _ in range(5):
            await asyncio.sleep(0)
        for line in os.read(r, 1 << 16).decode().splitlines():
            print(line)

    asyncio.run(main())
    """
)


def test_a_full_disk_drops_lines_until_it_has_room_then_says_how_many_and_why() -> None:
    """ENOSPC on the daemon's stdout: lines are dropped and counted, never raised into the caller.

    A daemon that died on a full disk under its log file took every program down with it.
    """
    proc = subprocess.run([sys.executable, "-c", FULL_THEN_ROOM], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["event"] == "back", events
    dropped = next(e for e in events if e["event"] == "log.dropped")
    assert dropped["lines"] == 10 and dropped["why"] == "No space left on device", dropped


# A log file on a disk that fills up mid-line: the kernel writes what fits, then refuses the rest.
# RLIMIT_FSIZE plays the disk (EFBIG with SIGXFSZ ignored, as ENOSPC would be); the loop runs.
# Then the disk has room again (the limit lifted), and one more line is logged.
FILLS_THEN_ROOM = textwrap.dedent(
    """
    import asyncio, json, os, resource, signal, sys, tempfile
    from supervisor.host import logs

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    path = os.path.join(tempfile.mkdtemp(), "stack.log")

    async def main():
        out = logs.configure("json", "info", open(path, "w"))
        log = logs.get()
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        for i in range(30):
            log.info("line", i=i, pad="x" * 50)
        for _ in range(3):
            await asyncio.sleep(0)  # the report is tried, and refused too
        size, lost = os.path.getsize(path), out.dropped_total
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        log.info("back")
        for _ in range(3):
            await asyncio.sleep(0)
        print(json.dumps({"size": size, "lost": lost, "lines": open(path).read().splitlines()}))

    asyncio.run(main())
    """
)


def _fill_then_room() -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", FILLS_THEN_ROOM], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen: dict[str, Any] = json.loads(proc.stdout)
    return seen


def test_a_log_file_whose_disk_fills_mid_line_drops_the_rest_and_never_raises_into_the_caller() -> None:
    """A partial write to a regular file: the rest is dropped and counted, not waited for.

    Waiting meant asking the loop to watch the file, which epoll refuses for a regular file: the
    PermissionError came out of whatever call had logged the line.
    """
    seen = _fill_then_room()
    assert seen["size"] == 1000 and seen["lost"] >= 20, seen


def test_after_a_line_torn_by_a_full_disk_the_next_lines_are_whole_and_every_loss_is_counted() -> None:
    """The fragment ends on its own line; `back` and `log.dropped` parse; the report counts all lost lines."""
    seen = _fill_then_room()
    *whole, fragment = seen["lines"][:-2]
    assert all(json.loads(line)["event"] == "line" for line in whole)
    assert fragment.startswith('{"i": ') and not fragment.endswith("}"), fragment
    back, dropped = (json.loads(line) for line in seen["lines"][-2:])
    assert back["event"] == "back", seen["lines"][-3:]
    assert dropped["event"] == "log.dropped" and dropped["lines"] == seen["lost"], (dropped, seen["lost"])
