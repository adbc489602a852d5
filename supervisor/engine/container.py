"""What the daemon says at start-up about the container it runs in: its limits and its OOM policy."""

from __future__ import annotations

from typing import Any

from supervisor.stack import limits, oom


def announce(log: Any, found: limits.Limits | None = None) -> limits.Limits:
    """Log the CPUs and memory the programs are sized by, and the one warning of an unreadable file."""
    found = found if found is not None else limits.read()
    log.info(
        "supervisor.limits",
        cpus=found.cpus,
        memory_mb=found.memory_mb,
        cpus_from=found.cpus_from,
        memory_from=found.memory_from,
    )
    for warning in found.warnings:
        log.warning("supervisor.cgroup_unreadable", detail=warning)
    group = oom.oom_group()
    if group is not None:
        log.warning(
            "supervisor.oom_group",
            file=str(group),
            detail="memory.oom.group is 1: one program's OOM kill will kill the whole container, "
            "the supervisor included; set it to 0 (Kubernetes 1.32: singleProcessOOMKill)",
        )
    return found
