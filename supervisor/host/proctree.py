"""Read process trees from /proc: the pids of a session, the resident memory of a tree.

Only the processes concerned are read (``/proc/PID/task/*/children``, ``/proc/PID/statm``),
never psutil's pass over the whole table; psutil is imported only on kernels without
children lists.
"""

from __future__ import annotations

import os


def session_members(sid: int) -> list[int]:
    """Return the pids of every process in session ``sid`` (what is left of one program)."""
    found = []
    for pid in _all_pids():
        try:
            if os.getsid(pid) == sid:
                found.append(pid)
        except OSError:
            continue
    return found


def _all_pids() -> list[int]:
    """Every pid on the host, from /proc (what psutil.pids() reads, without importing psutil)."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _read(path: str, whole: bool = True) -> bytes:
    """Read a /proc file with three system calls; ``open()`` adds an fstat, an ioctl and an lseek."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 65536)
        if whole and data:  # seq_file hands out a page per read: read to the end
            while chunk := os.read(fd, 65536):
                data += chunk
        return data
    finally:
        os.close(fd)


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``, from the kernel's per-thread ``children`` lists."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            found.extend(int(word) for word in _read(f"/proc/{pid}/task/{tid}/children").split())
        except OSError:
            continue  # the thread or the process ended meanwhile
    return found


def _rss(pid: int) -> int:
    try:
        return int(_read(f"/proc/{pid}/statm", whole=False).split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def trees_rss(roots: set[int]) -> dict[int, int]:
    """Return the resident memory of each root's whole process tree.

    Only the trees are read (``/proc/PID/task/*/children``, ``/proc/PID/statm``), never the
    whole process table: on a busy host that pass cost milliseconds per check.
    """
    if not _children_listed():
        return _trees_rss_by_table(roots)
    totals = {}
    for root in roots:
        total, stack, seen = 0, [root], set()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += _rss(pid)
            stack.extend(_children(pid))
        totals[root] = total
    return totals


_LISTED: list[bool] = []


def _children_listed() -> bool:
    """Whether this kernel lists children per thread (CONFIG_PROC_CHILDREN); asked once."""
    if not _LISTED:
        _LISTED.append(os.path.exists(f"/proc/self/task/{os.getpid()}/children"))
    return _LISTED[0]


def _trees_rss_by_table(roots: set[int]) -> dict[int, int]:
    """The same figure from one psutil pass over every process (kernels without ``children``)."""
    import psutil  # ~20 ms and ~3 MB: only on kernels without children lists

    if not roots:
        return {}
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for proc in psutil.process_iter(["ppid", "memory_info"]):
        info = proc.info
        children.setdefault(info["ppid"] or 0, []).append(proc.pid)
        rss[proc.pid] = info["memory_info"].rss if info["memory_info"] is not None else 0
    totals = {}
    for root in roots:
        total, stack = 0, [root]
        while stack:
            pid = stack.pop()
            total += rss.get(pid, 0)
            stack.extend(children.get(pid, ()))
        totals[root] = total
    return totals


def tree_rss(pid: int) -> int:
    """Return the resident memory of ``pid`` and all its descendants, in bytes."""
    return trees_rss({pid})[pid]


def _stat_usage(pid: int) -> tuple[int, int]:
    """CPU clock ticks (its own, and its reaped children's) and RSS bytes of one process, from one read."""
    try:
        fields = _read(f"/proc/{pid}/stat", whole=False).rpartition(b")")[2].split()
        # After the name: state is field 3, so utime (14), stime, cutime, cstime (17) and rss (24)
        return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14]), int(fields[21]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0, 0


def trees_usage(roots: set[int]) -> dict[int, tuple[int, int]]:
    """Return each root's whole tree's CPU clock ticks so far and resident memory: one /proc read per process.

    A child's ticks move into its parent's cutime/cstime when the parent reaps it, so the
    tree's total keeps counting it; a child that is never reaped by its parent drops out.
    """
    if not _children_listed():
        return _trees_usage_by_table(roots)
    totals = {}
    for root in roots:
        ticks = rss = 0
        stack, seen = [root], set()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            t, r = _stat_usage(pid)
            ticks, rss = ticks + t, rss + r
            stack.extend(_children(pid))
        totals[root] = (ticks, rss)
    return totals


def _trees_usage_by_table(roots: set[int]) -> dict[int, tuple[int, int]]:
    """The same figures from one pass over every process (kernels without ``children``)."""
    if not roots:
        return {}
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            ppid = int(_read(f"/proc/{pid}/stat", whole=False).rpartition(b")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    totals = {}
    for root in roots:
        ticks = rss = 0
        stack = [root]
        while stack:
            pid = stack.pop()
            t, r = _stat_usage(pid)
            ticks, rss = ticks + t, rss + r
            stack.extend(children.get(pid, ()))
        totals[root] = (ticks, rss)
    return totals


def incarnation_of(pid: int, incarnations: set[int]) -> int | None:
    """Return the one of ``incarnations`` that ``pid`` is, or descends from (walking up at most 64 parents)."""
    seen = 0
    while incarnations and pid > 1 and seen < 64:
        if pid in incarnations:
            return pid
        try:
            pid = int(_read(f"/proc/{pid}/stat", whole=False).rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        seen += 1
    return None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in its tree, parents before their children."""
    found: list[int] = []
    queue = _children(pid)
    seen = {pid}
    while queue:
        child = queue.pop(0)
        if child not in seen:
            seen.add(child)
            found.append(child)
            queue.extend(_children(child))
    return found
