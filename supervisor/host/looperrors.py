"""What asyncio reports from inside the loop, as structured lines; a flood of one report is one line.

asyncio's default handler logs each report as free text. Out of file descriptors, its accept
fails once per pending connection on every retry (a retry a second per listener): hundreds of
lines a second, and none that says which limit. Here the first report of a kind is logged at
once, with its traceback and the task or callback it came from; a kind is a message and an
exception type. The same kind again within ``QUIET_S`` is counted and told with the next
line of that kind. Running out of descriptors says the limit and how many are open.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from supervisor.machine.quiet import Quiet

OUT_OF_RESOURCE = "socket.accept() out of system resource"
QUIET_S = 10.0
OWN_FIELDS = ("message", "exception", "error", "times", "event", "level", "exc_info")  # not the context's
RAISE_FD_LIMIT = "raise the open-files limit (LimitNOFILE= in a systemd unit, ulimit -n, a container's nofile ulimit)"
FD_HINT = f"{RAISE_FD_LIMIT}, or find who holds connections to the supervisor open"


def open_fds() -> int:
    """How many descriptors this process has open now (-1 where /proc cannot say)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own
    except OSError:
        return -1


class LoopErrors:
    """The loop's exception handler: structured, and at most one line per kind every ``QUIET_S``."""

    def __init__(self, log: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.quiet: Quiet[str] = Quiet(QUIET_S, clock)  # by kind: a message's first line and the exception's type

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take over from asyncio's default handler."""
        loop.set_exception_handler(self.handle)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Count the report; log it unless its kind was logged within ``QUIET_S``."""
        message = str(context.get("message") or "unhandled exception in the loop").split("\n", 1)[0]
        exc = context.get("exception")
        # One kind per message and exception type: a second bug within QUIET_S is a line of its own.
        kind = message if exc is None or message == OUT_OF_RESOURCE else f"{message}: {type(exc).__name__}"
        if not (times := self.quiet.count(kind)):
            return
        if message == OUT_OF_RESOURCE:
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            fds = open_fds()  # unknown (-1) when even listing them needs a descriptor
            where = {"open": fds} if fds >= 0 else {}
            self.log.error("supervisor.out_of_files", error=str(exc), limit=limit, times=times, **where, hint=FD_HINT)
            return
        # Which task, future or callback it was (asyncio's own handler printed them): the rest of the context.
        seen_in: dict[str, str] = {key: repr(value) for key, value in context.items() if key not in OWN_FIELDS}
        self.log.error("supervisor.loop_error", message=message, error=repr(exc), times=times, **seen_in, exc_info=exc)
