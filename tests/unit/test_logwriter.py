"""The daemon's stdout writer: a reader that comes back after lines were dropped gets them reported, never a hang."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
