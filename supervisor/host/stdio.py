"""Standard descriptors 0, 1 and 2 that exist, whatever the caller left closed.

Started with one closed (``supervisor run >&-``, a bare init), the first file or socket the
process opens would take its number: log lines would go into the control socket, a child would
inherit it as its stdin. Each closed one is pointed at /dev/null first, as daemons do.
Standard library only: client commands run it too.
"""

from __future__ import annotations

import io
import os
import sys

_NAMES = ("stdin", "stdout", "stderr")


def ensure_standard_fds() -> list[int]:
    """Open /dev/null onto each of 0, 1, 2 that is closed; return the ones that were."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself, in order
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if getattr(sys, _NAMES[fd]) is None:  # Python found it closed at start and left None
            mode = "r" if fd == 0 else "w"
            setattr(sys, _NAMES[fd], io.TextIOWrapper(io.FileIO(fd, mode, closefd=False), line_buffering=fd != 0))
    return closed
