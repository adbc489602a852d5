"""Pump a child's output pipe into whole lines, without letting it block or bloat the loop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable

CUT = b" [line cut]"
PIPE_BYTES = 1 << 20  # a burst the child writes before it waits for us (the usual pipe-max-size)
# A read's worth. A read, its lines and its rendered events (about twice its size) stay within
# the CPU's cache at 32 KiB: a flood costs 0.36 µs a line rendered as JSON, where 64 KiB reads
# cost 0.49 and 16 KiB ones 0.42 (the per-read work outweighs the saving below that).
CHUNK = 32768


def _cut(line: bytes, max_line: int) -> bytes:
    return line[:max_line] + CUT if len(line) > max_line else line


class OutputPump:
    """Reads a child's pipe when it is readable and hands on whole lines, a read's worth at a time.

    One bounded read per wake-up keeps a flooding child from starving the loop; the lines of a
    read are split and decoded in bulk (a line costs no Python call of its own); a line longer
    than ``max_line`` bytes is cut so memory stays bounded.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        on_lines: Callable[[list[str]], None],
        on_eof: Callable[[], None] | None = None,
        max_line: int = 16384,
        chunk: int = CHUNK,
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._on_lines = on_lines
        self._on_eof = on_eof
        self._max_line = max_line
        self._chunk = chunk
        self._partial = b""
        self._last_read = 0
        os.set_blocking(fd, False)
        with contextlib.suppress(OSError, AttributeError):  # a bigger pipe: fewer stalls for a burst
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        self._last_read = 0
        try:
            data = os.read(self._fd, self._chunk)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._finish()
            return
        self._last_read = len(data)
        head, newline, tail = data.rpartition(b"\n")
        if not newline:  # no end of line in this read: it all belongs to the partial line
            self._partial += data
            if len(self._partial) > self._max_line:
                self._emit(self._partial[: self._max_line] + CUT)
                self._partial = b""
            return
        head = self._partial + head
        self._partial = tail
        if len(self._partial) > self._max_line:
            head += b"\n" + self._partial[: self._max_line] + CUT
            self._partial = b""
        self._emit(head)

    def _emit(self, block: bytes) -> None:
        """Hand on the lines of ``block`` (whole lines without the last newline), cut and decoded."""
        lines = block.decode(errors="replace").split("\n")
        # A line of n characters has at most 4n bytes: only a long one needs counting in bytes.
        if len(block) > self._max_line and max(map(len, lines)) > self._max_line // 4:
            parts = block.split(b"\n")
            if max(map(len, parts)) > self._max_line:
                lines = b"\n".join([_cut(p, self._max_line) for p in parts]).decode(errors="replace").split("\n")
        if b"\r" in block:
            lines = [line.rstrip("\r") for line in lines]
        self._on_lines(lines)

    def close(self, drain_bytes: int = 1 << 20) -> None:
        """Read what is already in the pipe (bounded), flush a partial line, and close it."""
        while self._fd >= 0 and drain_bytes > 0:
            self._readable()  # non-blocking: EOF closes, EAGAIN reads nothing
            if not self._last_read:
                break
            drain_bytes -= self._last_read
        self._finish()

    def _finish(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        if self._partial:
            self._on_lines([self._partial.decode(errors="replace")])
            self._partial = b""
        if self._on_eof is not None:
            self._on_eof()
