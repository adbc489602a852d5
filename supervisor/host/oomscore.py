"""The OOM killer's preference: children get a higher ``oom_score_adj`` than the daemon.

When memory runs out, the kernel kills the process with the highest score. A supervisor that
is killed takes every program's supervision with it, so by default each program starts 500
above the daemon's own adjustment (at most 1000): the kernel picks a child first.
"""

from __future__ import annotations

import contextlib

CHILD_MARGIN = 500


def own() -> int:
    """The daemon's own ``oom_score_adj`` (0 when it cannot be read)."""
    try:
        with open("/proc/self/oom_score_adj", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def child_default() -> int:
    """The adjustment a program gets when its configuration sets none: the daemon's plus 500, capped."""
    return min(1000, own() + CHILD_MARGIN)


def apply(pid: int, value: int) -> bool:
    """Set ``pid``'s adjustment; False when the kernel refuses (lowering it needs CAP_SYS_RESOURCE)."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
        return True
    return False
