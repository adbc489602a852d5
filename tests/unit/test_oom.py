"""OOM kills are told from other SIGKILLs by the kernel's oom_kill counters: cgroup v2, v1, then /proc/vmstat."""

from __future__ import annotations

from pathlib import Path

import structlog

from supervisor.engine import container
from supervisor.host import oomscore
from supervisor.stack import limits, oom


def test_v2_memory_events_is_the_counter_and_vmstat_the_fallback(tmp_path: Path) -> None:
    """In a v2 cgroup, memory.events' oom_kill is the counter; /proc/vmstat only without a cgroup's."""
    group = tmp_path / "cg" / "app"
    group.mkdir(parents=True)
    (tmp_path / "cg" / "cgroup.controllers").write_text("memory\n")
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (tmp_path / "self").write_text("0::/app\n")
    (tmp_path / "vmstat").write_text("pgfault 12\noom_kill 7\n")
    files = oom.counter_files(tmp_path / "cg", tmp_path / "self", str(tmp_path / "vmstat"))
    assert files == [group / "memory.events"]
    counters = oom.OomCounters(files)
    assert not counters.killed_since()
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    assert counters.killed_since()
    assert not counters.killed_since()  # counted once
    (tmp_path / "vmstat").write_text("pgfault 12\noom_kill 8\n")
    assert not counters.killed_since()  # another cgroup's kill is not ours
    (group / "memory.events").unlink()
    assert counters.killed_since() is None  # nothing left to read: nobody can tell
    assert oom.counter_files(tmp_path / "cg", tmp_path / "self", str(tmp_path / "vmstat")) == [tmp_path / "vmstat"]


def test_v1_memory_oom_control_is_the_counter(tmp_path: Path) -> None:
    """In a v1 memory cgroup, memory.oom_control's oom_kill line is the counter."""
    group = tmp_path / "cg" / "memory" / "job"
    group.mkdir(parents=True)
    (group / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    (tmp_path / "self").write_text("4:memory:/job\n")
    files = oom.counter_files(tmp_path / "cg", tmp_path / "self", str(tmp_path / "nothing"))
    assert files == [group / "memory.oom_control"]


def test_oom_group_one_is_found_and_warned_about(tmp_path: Path) -> None:
    """memory.oom.group = 1 in the daemon's v2 cgroup is reported; 0 is not."""
    group = tmp_path / "app"
    group.mkdir()
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    (tmp_path / "self").write_text("0::/app\n")
    (group / "memory.oom.group").write_text("1\n")
    assert oom.oom_group(tmp_path, tmp_path / "self") == group / "memory.oom.group"
    (group / "memory.oom.group").write_text("0\n")
    assert oom.oom_group(tmp_path, tmp_path / "self") is None


def test_announce_logs_the_limits_and_no_oom_group_warning_on_v1() -> None:
    """At start-up the daemon logs its limits; on this host's cgroups there is no oom_group warning."""
    with structlog.testing.capture_logs() as logs:
        found = container.announce(structlog.get_logger(), limits.Limits(2, 300, "cpu.max", "memory.max"))
    assert logs[0]["event"] == "supervisor.limits" and logs[0]["cpus"] == 2 and found.memory_mb == 300


def test_children_default_to_500_above_the_daemon_capped_at_1000() -> None:
    """The children's default oom_score_adj is the daemon's own plus 500, never above 1000."""
    assert oomscore.child_default() == min(1000, oomscore.own() + 500)
