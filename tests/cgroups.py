"""Real cgroup v1 groups for tests, made with unique names and removed afterwards (root only)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

V1 = Path("/sys/fs/cgroup")


def need_v1(controller: str) -> Path:
    """Return the v1 mount of ``controller``, or skip saying why it cannot be used."""
    if os.geteuid() != 0:
        pytest.skip("real cgroups need root")
    mount = V1 / controller
    if not (mount / "cgroup.procs").exists():
        pytest.skip(f"no cgroup v1 {controller} controller mounted at {mount}")
    return mount


def _own(controller: str) -> Path:
    """The test process's own cgroup of ``controller``: the new group goes under it."""
    mount = V1 / controller
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            where = mount / path.lstrip("/")
            return where if where.is_dir() else mount
    return mount


@contextmanager
def cgroup(controller: str, **settings: str) -> Iterator[Path]:
    """A fresh group of ``controller`` with ``settings`` written (file name: value), removed at the end."""
    need_v1(controller)
    parent = _own(controller)
    where = parent / f"supervisor-test-{uuid.uuid4().hex[:12]}"
    where.mkdir()
    try:
        for name, value in settings.items():
            (where / name).write_text(value)
        yield where
    finally:
        # Processes first go back to the parent (a group with members cannot be removed).
        for _ in range(50):
            pids = (where / "cgroup.procs").read_text().split()
            if not pids:
                break
            for pid in pids:
                try:
                    (parent / "cgroup.procs").write_text(pid)
                except OSError:
                    pass  # gone meanwhile
        where.rmdir()


def enter(*groups: Path) -> tuple[str, ...]:
    """An argv prefix that puts the command into ``groups`` before it execs."""
    moves = "; ".join(f"echo $$ > {g / 'cgroup.procs'}" for g in groups)
    return ("/bin/sh", "-c", f'{moves}; exec "$@"', "sh")
