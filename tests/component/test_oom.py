"""An OOM kill in a real memory cgroup is named: reason oom, program.oom_killed, the metric; children score first."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.cgroups import cgroup, enter, need_v1
from tests.conftest import Daemon, program, wait_until


def test_a_child_over_the_cgroup_limit_is_named_an_oom_kill(run_daemon: Callable[..., Daemon]) -> None:
    """A daemon in a 150 MB v1 memory cgroup whose child allocates 400 MB reports the kill as oom."""
    need_v1("memory")
    with cgroup("memory", **{"memory.limit_in_bytes": str(150 << 20)}) as memory:
        d = run_daemon(
            f"""
[programs.hog]
command = {program("memory_hog", 400)}
min_uptime = "0s"
restart = {{ backoff = {{ initial = "30s", max = "30s" }} }}
[programs.calm]
command = ["sleep", "600"]
""",
            prefix=enter(memory),
        )
        killed = d.wait_event("program.oom_killed", 30, program="hog")
        hog = d.wait_unit("hog", last_exit={"signal": "SIGKILL", "reason": "oom"})
        exited = d.wait_event("program.exited", program="hog", pid=killed["pid"])
        assert exited["hint"] == "killed by the kernel's OOM killer", exited
        assert int((memory / "memory.oom_control").read_text().split("oom_kill ")[1].split()[0]) >= 1

        def oom_restarts() -> str | None:
            text = urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=5).read().decode()
            line = next((x for x in text.splitlines() if 'program="hog"' in x and 'reason="oom"' in x), "")
            return line if line.startswith("supervisor_program_restarts_total") and not line.endswith(" 0.0") else None

        wait_until(oom_restarts, 15, "the oom restart in /metrics", seen=d.tail)
        calm = d.wait_unit("calm", state="running")["pid"]
        own = int(Path(f"/proc/{d.proc.pid}/oom_score_adj").read_text())
        assert int(Path(f"/proc/{calm}/oom_score_adj").read_text()) == min(1000, own + 500)
        assert hog["restarts"] >= 1
        d.stop()
