"""The CPUs and memory the daemon's own cgroup may use: ``SUPERVISOR_CPUS`` and ``SUPERVISOR_MEMORY_MB``.

``os.cpu_count()`` is the host's count, not the container's: a 2-CPU pod on a 64-CPU node
that sizes its workers by it starts 64 of them. These figures come from the cgroup that
``/proc/self/cgroup`` names: cgroup v2's ``cpu.max`` and ``memory.max``, v1's
``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` and ``memory.limit_in_bytes``. A limit is the
smallest one set on the cgroup or on any of its ancestors below the mount. CPUs are rounded up
and never more than the cpuset (the affinity mask) allows. Without a limit, the machine's
figures. A file that is there but cannot be read (or makes no sense) falls back the same way,
with one warning that names it.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.machine.record import Record

CGROUP_ROOT = "/sys/fs/cgroup"
CPUS_VAR = "SUPERVISOR_CPUS"
MEMORY_VAR = "SUPERVISOR_MEMORY_MB"
_MIB = 1 << 20


@dataclass(frozen=True, repr=False, eq=False)
class Limits(Record):
    """What the daemon's cgroup allows, and where each figure came from."""

    cpus: int
    memory_mb: int
    cpus_from: str  # a file's path, "cpuset" or "machine"
    memory_from: str  # a file's path or "machine"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def environment(self) -> dict[str, str]:
        """The two variables, as interpolation and every child see them."""
        return {CPUS_VAR: str(self.cpus), MEMORY_VAR: str(self.memory_mb)}

    def describe(self) -> str:
        """One line for ``check``: each figure and where it came from."""
        return (
            f"container: {CPUS_VAR}={self.cpus} (from {self.cpus_from}), "
            f"{MEMORY_VAR}={self.memory_mb} (from {self.memory_from})"
        )


@dataclass(frozen=True, repr=False, eq=False)
class Cgroups(Record):
    """Where the daemon's cgroups are: the v2 directory, and the v1 one per controller."""

    v2: Path | None
    v1: dict[str, Path]
    mounts: dict[str, Path]  # the mount each directory is under: ancestors stop there


def locate(root: str | Path = CGROUP_ROOT, proc_cgroup: str | Path = "/proc/self/cgroup") -> Cgroups:
    """Find the daemon's cgroup directories under ``root`` from ``proc_cgroup``; raise OSError if unreadable."""
    root = Path(root)
    v1: dict[str, Path] = {}
    mounts: dict[str, Path] = {}
    v2: Path | None = None
    for line in Path(proc_cgroup).read_text().splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not hid:
            continue
        if hid == "0" and controllers == "":
            # Pure v2 has the controllers at the root; a hybrid host's unified tree has none.
            if (root / "cgroup.controllers").exists():
                v2 = _inside(root, path)
                mounts["v2"] = root
            continue
        for name in controllers.split(","):
            mount = root / name
            if mount.is_dir():
                v1[name] = _inside(mount, path)
                mounts[name] = mount
    return Cgroups(v2=v2, v1=v1, mounts=mounts)


def _inside(mount: Path, path: str) -> Path:
    """The cgroup's directory: under the mount as named, or the mount itself (a namespaced container)."""
    where = mount / path.lstrip("/")
    return where if where.is_dir() else mount


def _ancestors(where: Path, mount: Path) -> list[Path]:
    """``where`` and its parents up to and including ``mount``."""
    out = [where]
    while where != mount and mount in where.parents:
        where = where.parent
        out.append(where)
    return out


class _Reader:
    """Reads limit files, keeping the first problem as the one warning."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def text(self, path: Path) -> str | None:
        """The file's first line; None when it is absent (no limit) or unreadable (warned)."""
        try:
            return path.read_text().split("\n", 1)[0].strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.warn(path, exc.strerror or str(exc))
            return None

    def warn(self, path: Path, what: str) -> None:
        if not self.warnings:
            self.warnings.append(f"cannot read {path} ({what}): using the machine's figures")


def _cpu_quota(groups: Cgroups, reader: _Reader) -> tuple[float, str] | None:
    """The smallest quota (in CPUs) along the cgroup's ancestry, with its file."""
    found: list[tuple[float, str]] = []
    if groups.v2 is not None:
        for d in _ancestors(groups.v2, groups.mounts["v2"]):
            text = reader.text(d / "cpu.max")
            if text is None:
                continue
            quota, _, period = text.partition(" ")
            if quota == "max":
                continue
            try:
                found.append((int(quota) / int(period or "100000"), str(d / "cpu.max")))
            except (ValueError, ZeroDivisionError):
                reader.warn(d / "cpu.max", f"not a quota: {text!r}")
    elif "cpu" in groups.v1:
        for d in _ancestors(groups.v1["cpu"], groups.mounts["cpu"]):
            quota_text = reader.text(d / "cpu.cfs_quota_us")
            period_text = reader.text(d / "cpu.cfs_period_us")
            if quota_text is None or period_text is None:
                continue
            try:
                quota_us, period_us = int(quota_text), int(period_text)
                if quota_us > 0:
                    found.append((quota_us / period_us, str(d / "cpu.cfs_quota_us")))
            except (ValueError, ZeroDivisionError):
                reader.warn(d / "cpu.cfs_quota_us", f"not a quota: {quota_text!r} over {period_text!r}")
    return min(found) if found else None


def _memory_limit(groups: Cgroups, reader: _Reader, machine: int) -> tuple[int, str] | None:
    """The smallest memory limit (bytes) along the cgroup's ancestry, with its file."""
    found: list[tuple[int, str]] = []
    if groups.v2 is not None:
        dirs, name = _ancestors(groups.v2, groups.mounts["v2"]), "memory.max"
    elif "memory" in groups.v1:
        dirs, name = _ancestors(groups.v1["memory"], groups.mounts["memory"]), "memory.limit_in_bytes"
    else:
        return None
    for d in dirs:
        text = reader.text(d / name)
        if text is None or text == "max":
            continue
        try:
            value = int(text)
        except ValueError:
            reader.warn(d / name, f"not a size: {text!r}")
            continue
        if 0 < value < machine:  # v1 writes "no limit" as a huge number
            found.append((value, str(d / name)))
    return min(found) if found else None


def machine_memory() -> int:
    """The machine's RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def read(root: str | Path = CGROUP_ROOT, proc_cgroup: str | Path = "/proc/self/cgroup") -> Limits:
    """Return the daemon's limits; never raises (the worst case is the machine's figures and a warning)."""
    reader = _Reader()
    try:
        allowed = len(os.sched_getaffinity(0))
    except OSError:
        allowed = os.cpu_count() or 1
    machine_cpus = os.cpu_count() or allowed
    ram = machine_memory()
    try:
        groups = locate(root, proc_cgroup)
    except OSError as exc:
        reader.warn(Path(proc_cgroup), exc.strerror or str(exc))
        groups = Cgroups(v2=None, v1={}, mounts={})
    quota = _cpu_quota(groups, reader)
    memory = _memory_limit(groups, reader, ram)
    if reader.warnings:  # one unreadable file: none of the cgroup's figures are trusted
        quota = memory = None
    if quota is not None and math.ceil(quota[0]) <= allowed:
        cpus, cpus_from = max(1, math.ceil(quota[0])), quota[1]
    elif allowed < machine_cpus:
        cpus, cpus_from = allowed, "cpuset"
    else:
        cpus, cpus_from = machine_cpus, "machine"
    memory_mb, memory_from = (memory[0] // _MIB, memory[1]) if memory else (ram // _MIB, "machine")
    return Limits(cpus, memory_mb, cpus_from, memory_from, tuple(reader.warnings))


def export(environ: MutableMapping[str, str], limits: Limits | None = None) -> Limits:
    """Set ``SUPERVISOR_CPUS`` and ``SUPERVISOR_MEMORY_MB`` in ``environ``; return the limits read."""
    limits = limits if limits is not None else read()
    environ.update(limits.environment())
    return limits
