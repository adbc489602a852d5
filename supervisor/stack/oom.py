"""Tell an OOM kill from any other SIGKILL: the kernel's ``oom_kill`` counters.

In a container with several programs, the OOM killer's SIGKILL looks like any other. The
kernel counts its kills: cgroup v2 in ``memory.events`` (``oom_kill``, the cgroup and its
descendants), v1 in ``memory.oom_control`` (``oom_kill``), and, the fallback without either,
the whole host in ``/proc/vmstat`` (``oom_kill``). A program that dies of a SIGKILL the
supervisor did not send was OOM-killed when the counter went up since it was last read (at
the last exit of any of the daemon's children).
"""

from __future__ import annotations

from pathlib import Path

from supervisor.stack import limits


def _counter(path: Path) -> int | None:
    """The ``oom_kill`` line of a flat-keyed file, or None when it has none or cannot be read."""
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def counter_files(
    root: str | Path = limits.CGROUP_ROOT, proc_cgroup: str | Path = "/proc/self/cgroup", vmstat: str = "/proc/vmstat"
) -> list[Path]:
    """The daemon's cgroup counter (v2 or v1) where there is one, else the host's.

    The cgroup's counts the kills of its own processes, whatever ran out (the kernel charges a
    kill to the victim's cgroup); the host's counts every kill on the machine, so it is only
    the fallback: with it, another container's OOM kill could be taken for one of ours.
    """
    found: list[Path] = []
    try:
        groups = limits.locate(root, proc_cgroup)
    except OSError:
        groups = None
    if groups is not None and groups.v2 is not None:
        found.append(groups.v2 / "memory.events")
    elif groups is not None and "memory" in groups.v1:
        found.append(groups.v1["memory"] / "memory.oom_control")
    found = [p for p in found if _counter(p) is not None]
    return found or [p for p in [Path(vmstat)] if _counter(p) is not None]


class OomCounters:
    """The last value of each counter; ``killed_since()`` says whether one went up since."""

    def __init__(self, files: list[Path] | None = None) -> None:
        self.files = counter_files() if files is None else files
        self.last = {path: _counter(path) for path in self.files}

    def killed_since(self) -> bool | None:
        """Whether the OOM killer killed a process since the last call (or since start); None: no counter told."""
        killed, compared = False, False
        for path in self.files:
            now = _counter(path)
            before = self.last.get(path)
            if now is not None and before is not None:
                compared = True
                killed = killed or now > before
            self.last[path] = now
        return killed if compared else None


def oom_group(root: str | Path = limits.CGROUP_ROOT, proc_cgroup: str | Path = "/proc/self/cgroup") -> Path | None:
    """The daemon's v2 ``memory.oom.group`` file when it holds 1 (one OOM kills the whole cgroup), else None."""
    try:
        groups = limits.locate(root, proc_cgroup)
    except OSError:
        return None
    if groups.v2 is None:
        return None
    path = groups.v2 / "memory.oom.group"
    try:
        return path if path.read_text().strip() == "1" else None
    except OSError:
        return None
