"""The daemon's own stdout, written without ever blocking the loop.

When nobody reads (a paused pager, a stuck log shipper), whole lines wait in
a bounded backlog that the loop drains when the pipe is writable again; past
the bound, lines are dropped and counted, and a ``log.dropped`` line says so
once writing resumes. That line is logged from the loop, never from inside a
write: structlog holds a lock (not re-entrant) while it writes, and a line
logged within would wait on it for ever. The file description we were handed is never switched
to non-blocking (a shell or a container runtime shares it): a pipe or a
terminal is reopened through ``/proc/self/fd``, a socket is sent to with
``MSG_DONTWAIT``, and a regular file is written as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
import stat
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from supervisor.host.outputlog import OutputSink


class LogWriter:
    """A text stream for structlog and ``logging`` whose writes never wait for the reader."""

    def __init__(self, stream: TextIO, max_backlog_bytes: int = 1 << 20) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._max = max_backlog_bytes
        self._partial = ""
        self._backlog: deque[bytes] = deque()
        self._backlog_bytes = 0
        self._armed: asyncio.AbstractEventLoop | None = None
        self.dropped_total = 0
        self.last_error = ""  # why a write was refused (a full disk...), for the next log.dropped line
        self._dropped_unreported = 0
        self._report_scheduled = False
        self.on_resumed: Callable[[int], None] | None = None  # told how many lines were dropped
        self.sink: OutputSink | None = None  # children's lines, rendered in bulk (set by logs.configure)
        self._sock: socket.socket | None = None
        self._fd = -1
        self._own_fd = False
        self._pollable = True
        self._mid_line = False  # the backlog's head is what is left of a line partly written
        self._torn = False  # a partly written line was dropped: the next write ends it first
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError):
            return  # not a real file (a test's StringIO): written through as it is
        mode = os.fstat(fd).st_mode
        if stat.S_ISSOCK(mode):
            self._sock = socket.socket(fileno=os.dup(fd))
            self._fd = self._sock.fileno()
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            try:
                self._fd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                self._own_fd = True
            except OSError:
                self._fd = -1
        if self._fd < 0:
            self._fd = fd  # a regular file, or a pipe we could not reopen: plain writes
        self._pollable = not stat.S_ISREG(mode)  # epoll refuses to watch a regular file

    def isatty(self) -> bool:
        """Whether the stream we stand for is a terminal (structlog picks colours by it)."""
        return self._tty

    def fileno(self) -> int:
        """The descriptor written to."""
        return self._fd

    def write(self, text: str) -> int:
        """Take text; complete lines go out now, or wait in the backlog, or are dropped."""
        if self._fd < 0:
            return self._stream.write(text)
        self._partial += text
        if "\n" not in self._partial:
            return len(text)
        whole, _, self._partial = self._partial.rpartition("\n")
        for line in whole.split("\n"):
            self._queue((line + "\n").encode(errors="replace"))
        self._pump(inside_write=True)
        return len(text)

    def write_block(self, data: bytes, lines: int) -> None:
        """Take ``lines`` whole lines at once (children's output): they go, wait or are dropped together."""
        if self._fd < 0 or self._partial:
            self.write(data.decode(errors="replace"))
            return
        if self._backlog_bytes + len(data) > self._max:
            self.dropped_total += lines
            self._dropped_unreported += lines
            return
        self._backlog.append(data)
        self._backlog_bytes += len(data)
        self._pump()

    def flush(self) -> None:
        """Writes are never held back; nothing to do."""

    def _queue(self, data: bytes) -> None:
        if self._backlog_bytes + len(data) > self._max:
            self.dropped_total += 1
            self._dropped_unreported += 1
            return
        self._backlog.append(data)
        self._backlog_bytes += len(data)

    def _send(self, data: bytes) -> int:
        if self._sock is not None:
            return self._sock.send(data, socket.MSG_DONTWAIT)
        return os.write(self._fd, data)

    def _pump(self, inside_write: bool = False) -> None:
        """Write what the reader takes now; arm the loop for the rest; then report what was dropped.

        ``inside_write``: called from ``write``, within the logger's own write: the report waits
        for the loop's next turn (or for ``close``).
        """
        while self._backlog:
            if self._torn:  # end the fragment on its own line, so the next line is whole
                self._backlog[0] = b"\n" + self._backlog[0]
                self._backlog_bytes += 1
                self._torn, self._mid_line = False, True  # torn again if this one is refused whole
            head = self._backlog[0]
            try:
                n = self._send(head)
            except (BlockingIOError, InterruptedError):
                self._arm()
                return
            except OSError as exc:
                self._lose_backlog(exc)
                return
            self._backlog_bytes -= n
            if n < len(head):
                self._backlog[0] = head[n:]
                self._mid_line = True
                if not self._pollable:  # a file's disk filled up mid-line: the next write says so
                    continue
                self._arm()
                return
            self._backlog.popleft()
            self._mid_line = False
        self._disarm()
        if not self._dropped_unreported:
            return
        if inside_write:
            self._report_soon()
        else:
            self._report()

    def _lose_backlog(self, exc: OSError) -> None:
        """The stream refused a write for good or for now (a full disk, a gone terminal): drop what waits.

        The daemon goes on without its log rather than stop over it. Each later line tries again,
        so logging comes back by itself once the disk has room, and ``log.dropped`` then says how
        many lines were lost. A reader that left (EPIPE) will never read: nothing is reported.
        """
        lost = sum(block.count(b"\n") for block in self._backlog) or 1
        self.dropped_total += lost
        if exc.errno != errno.EPIPE:
            self._dropped_unreported += lost
        self.last_error = exc.strerror or str(exc)
        self._torn, self._mid_line = self._torn or self._mid_line, False
        self._backlog.clear()
        self._backlog_bytes = 0
        self._disarm()

    def _report(self) -> None:
        """Say how many lines were dropped since the last report (a log line of its own)."""
        if self._dropped_unreported and not self._backlog:
            lost, self._dropped_unreported = self._dropped_unreported, 0
            refused = self.dropped_total
            if self.on_resumed is not None:
                self.on_resumed(lost)
            if self.dropped_total > refused:  # the report itself was refused: the next one counts these too
                self._dropped_unreported += lost
            else:
                self.last_error = ""

    def _report_soon(self) -> None:
        """Report on the loop's next turn; without a loop, ``close`` (or a later drain) reports."""
        if self._report_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._report_scheduled = True

        def report() -> None:
            self._report_scheduled = False
            self._report()

        loop.call_soon(report)

    def _arm(self) -> None:
        if self._armed is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (start-up, exit): the next write, or close(), tries again
        loop.add_writer(self._fd, self._pump)
        self._armed = loop

    def _disarm(self) -> None:
        if self._armed is not None:
            with contextlib.suppress(Exception):
                self._armed.remove_writer(self._fd)
            self._armed = None

    def close(self, timeout_s: float = 1.0) -> None:
        """Drain what is left for at most ``timeout_s`` (the daemon is exiting)."""
        self._disarm()
        deadline = time.monotonic() + timeout_s
        if not self._backlog:
            self._report()  # a report that the loop had no turn left for
        while self._backlog and time.monotonic() < deadline and self._fd >= 0:
            select.select([], [self._fd], [], max(0.0, deadline - time.monotonic()))
            try:
                self._pump()
            except OSError:
                break
            self._disarm()
