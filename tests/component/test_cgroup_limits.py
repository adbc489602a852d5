"""In a real cgroup, programs are sized by its CPU quota and memory limit, not by the machine's."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.cgroups import cgroup, enter, need_v1
from tests.conftest import PY, Daemon


def test_a_quota_of_one_and_a_half_cpus_gives_two_and_300_mib_gives_300(run_daemon: Callable[..., Daemon]) -> None:
    """A daemon in a v1 group with a 1.5-CPU quota and a 300 MiB limit hands its programs 2 and 300."""
    need_v1("cpu")
    need_v1("memory")
    with (
        cgroup("cpu", **{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000"}) as cpu,
        cgroup("memory", **{"memory.limit_in_bytes": str(300 << 20)}) as memory,
    ):
        d = run_daemon(
            """
[programs.sized]
command = ["/bin/sh", "-c", "echo arg=${SUPERVISOR_CPUS} env=$SUPERVISOR_CPUS/$SUPERVISOR_MEMORY_MB; exec sleep 60"]
""",
            prefix=enter(cpu, memory),
        )
        line = d.wait_event("program.output", program="sized")["line"]
        assert line == "arg=2 env=2/300", d.tail()
        said = d.wait_event("supervisor.limits")
        assert (said["cpus"], said["memory_mb"]) == (2, 300)
        assert said["cpus_from"].endswith("cpu.cfs_quota_us") and said["memory_from"].endswith("memory.limit_in_bytes")
        d.stop()


def test_check_in_a_cgroup_warns_when_max_memory_exceeds_it(tmp_path: Path) -> None:
    """`check` run inside a 300 MiB group warns that 2 x 200MB of max_memory do not fit."""
    need_v1("memory")
    path = tmp_path / "supervisor.toml"
    path.write_text(
        '[programs.a]\ncommand = ["true"]\nmax_memory = "200MB"\n'
        '[programs.b]\ncommand = ["true"]\nmax_memory = "200MB"\n'
    )
    with cgroup("memory", **{"memory.limit_in_bytes": str(300 << 20)}) as memory:
        done = subprocess.run(
            [*enter(memory), PY, "-m", "supervisor", "check", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert "SUPERVISOR_MEMORY_MB=300" in done.stdout
    assert "warning: programs: max_memory adds up to" in done.stdout, done.stdout
