"""SUPERVISOR_CPUS and SUPERVISOR_MEMORY_MB come from the daemon's cgroup, v1 or v2, else from the machine."""

from __future__ import annotations

import math
import os
from pathlib import Path

from supervisor.config import load
from supervisor.stack import limits

MACHINE_MB = limits.machine_memory() >> 20
MACHINE_CPUS = len(os.sched_getaffinity(0))


def v2_tree(tmp_path: Path, cpu_max: str | None, memory_max: str | None, parent_memory: str | None = None) -> Path:
    """A directory laid out like a cgroup v2 /sys/fs/cgroup, with the daemon in /app/web."""
    root = tmp_path / "cgroup"
    group = root / "app" / "web"
    group.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    if cpu_max is not None:
        (group / "cpu.max").write_text(cpu_max + "\n")
    if memory_max is not None:
        (group / "memory.max").write_text(memory_max + "\n")
    if parent_memory is not None:
        (root / "app" / "memory.max").write_text(parent_memory + "\n")
    (tmp_path / "self-cgroup").write_text("0::/app/web\n")
    return root


def v1_tree(tmp_path: Path, quota: str, period: str, limit: str) -> Path:
    """A directory laid out like cgroup v1's mounts, with the daemon in /job in cpu and memory."""
    root = tmp_path / "cgroup"
    for controller in ("cpu", "memory", "cpuset"):
        (root / controller / "job").mkdir(parents=True)
    (root / "cpu" / "job" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "job" / "cpu.cfs_period_us").write_text(period + "\n")
    (root / "memory" / "job" / "memory.limit_in_bytes").write_text(limit + "\n")
    (tmp_path / "self-cgroup").write_text("4:memory:/job\n3:cpuset:/\n1:cpu:/job\n0::/\n")
    return root


def test_v2_cpu_max_is_rounded_up_and_memory_max_is_in_mib(tmp_path: Path) -> None:
    """cpu.max 150000/100000 gives 2 CPUs; memory.max of 300 MiB gives 300."""
    root = v2_tree(tmp_path, "150000 100000", str(300 << 20))
    found = limits.read(root, tmp_path / "self-cgroup")
    assert (found.cpus, found.memory_mb) == (min(2, MACHINE_CPUS), 300)
    assert found.memory_from.endswith("app/web/memory.max")
    assert found.warnings == ()


def test_v2_max_means_the_machine_unless_an_ancestor_limits(tmp_path: Path) -> None:
    """ "max" is no limit; a parent's memory.max still bounds the group."""
    root = v2_tree(tmp_path, "max 100000", "max", parent_memory=str(200 << 20))
    found = limits.read(root, tmp_path / "self-cgroup")
    assert found.cpus == MACHINE_CPUS or found.cpus_from == "cpuset"
    assert found.memory_mb == 200
    assert found.memory_from.endswith("app/memory.max")


def test_v1_quota_over_period_and_limit_in_bytes(tmp_path: Path) -> None:
    """v1: cfs_quota_us over cfs_period_us, rounded up; memory.limit_in_bytes in MiB."""
    root = v1_tree(tmp_path, "50000", "100000", str(512 << 20))
    found = limits.read(root, tmp_path / "self-cgroup")
    assert (found.cpus, found.memory_mb) == (1, 512)
    assert found.environment() == {"SUPERVISOR_CPUS": "1", "SUPERVISOR_MEMORY_MB": "512"}


def test_v1_without_limits_gives_the_machine(tmp_path: Path) -> None:
    """A quota of -1 and v1's huge "unlimited" number mean the machine's figures."""
    root = v1_tree(tmp_path, "-1", "100000", "9223372036854771712")
    found = limits.read(root, tmp_path / "self-cgroup")
    assert found.memory_mb == MACHINE_MB
    assert found.memory_from == "machine"
    assert found.cpus == MACHINE_CPUS
    assert found.warnings == ()


def test_an_unreadable_file_falls_back_to_the_machine_with_one_warning(tmp_path: Path) -> None:
    """A limit file that cannot be read gives the machine's figures and one warning naming it, no traceback."""
    root = v2_tree(tmp_path, None, None)
    (root / "app" / "web" / "cpu.max").mkdir()  # reading a directory fails as an unreadable file does
    (root / "app" / "web" / "memory.max").write_text("lots\n")
    found = limits.read(root, tmp_path / "self-cgroup")
    assert (found.cpus, found.memory_mb, found.memory_from) == (MACHINE_CPUS, MACHINE_MB, "machine")
    assert len(found.warnings) == 1
    assert "cpu.max" in found.warnings[0] and "machine" in found.warnings[0]


def test_an_unreadable_proc_cgroup_warns_too(tmp_path: Path) -> None:
    """Without /proc/self/cgroup the figures are the machine's, with a warning."""
    found = limits.read(tmp_path, tmp_path / "missing")
    assert found.memory_from == "machine" and len(found.warnings) == 1


def test_export_sets_both_variables() -> None:
    """export() puts both figures in the environment it is given."""
    env: dict[str, str] = {}
    found = limits.export(env)
    assert env == {"SUPERVISOR_CPUS": str(found.cpus), "SUPERVISOR_MEMORY_MB": str(found.memory_mb)}
    assert 1 <= found.cpus <= math.inf


def test_check_warns_when_max_memory_adds_up_to_more_than_the_limit(tmp_path: Path) -> None:
    """The programs' max_memory summed over the cgroup's memory is a warning, not an error."""
    path = tmp_path / "supervisor.toml"
    path.write_text(
        '[programs.web]\ncommand = ["true"]\nmax_memory = "200MB"\n'
        '[programs.worker]\ncommand = ["true", "--concurrency=${SUPERVISOR_CPUS}"]\nmax_memory = "200MB"\n'
    )
    tight = load(path, environ={"SUPERVISOR_MEMORY_MB": "300", "SUPERVISOR_CPUS": "3"})
    assert any("max_memory adds up to" in w and "300 MiB" in w for w in tight.warnings)
    assert tight.config.programs["worker"].command[1] == "--concurrency=3"
    roomy = load(path, environ={"SUPERVISOR_MEMORY_MB": "4096"})
    assert not any("max_memory" in w for w in roomy.warnings)
