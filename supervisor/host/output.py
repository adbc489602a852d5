"""Pump a child's output pipe into whole lines, without letting it block or bloat the loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


class OutputPump:
    """Reads a child's pipe when it is readable and hands on whole lines.

    One bounded read per wake-up keeps a flooding child from starving the
    loop; a line longer than ``max_line`` is cut so memory stays bounded.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None] | None = None,
        max_line: int = 16384,
        chunk: int = 65536,
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._on_line = on_line
        self._on_eof = on_eof
        self._max_line = max_line
        self._chunk = chunk
        self._partial = b""
        self._last_read = 0
        os.set_blocking(fd, False)
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
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self._max_line:
            lines.append(self._partial[: self._max_line] + b" [line cut]")
            self._partial = b""
        for line in lines:
            if len(line) > self._max_line:
                line = line[: self._max_line] + b" [line cut]"
            self._on_line(line.rstrip(b"\r").decode(errors="replace"))

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
            self._on_line(self._partial.decode(errors="replace"))
            self._partial = b""
        if self._on_eof is not None:
            self._on_eof()
