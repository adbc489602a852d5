"""The status document: what makes status exit 0, and how the table reads."""

from __future__ import annotations

from typing import Any

from supervisor.machine.status import problems, render_table


def doc(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "supervisor": {"pid": 1, "version": "0.1.0", "state": "running", "uptime_s": 42.0, "ready": True},
        "units": [
            {"name": "postgres", "kind": "dependency", "state": "ready", "latency_ms": 1.9, "error": None},
            {
                "name": "migrate",
                "kind": "job",
                "state": "succeeded",
                "attempts": 1,
                "exit_code": 0,
                "revision": {"current": ["0002"], "heads": ["0002"]},
            },
            {
                "name": "web",
                "kind": "program",
                "state": "running",
                "pid": 4242,
                "uptime_s": 4000.0,
                "restarts": 2,
                "health": "healthy",
                "last_exit": {"signal": "SIGKILL", "reason": "health"},
            },
        ],
    }
    base.update(overrides)
    return base


def test_all_good_has_no_problems() -> None:
    """Running programs, finished jobs and ready dependencies make no problem."""
    assert problems(doc()) == []


def test_each_kind_of_problem_is_named() -> None:
    """Unhealthy programs, failed jobs and unready dependencies each give one reason."""
    d = doc()
    d["units"][0].update(state="unavailable", error="connection refused")
    d["units"][1].update(state="failed", error="exit code 1")
    d["units"][2].update(health="unhealthy")
    assert problems(d) == [
        "postgres unavailable: connection refused",
        "job migrate failed: exit code 1",
        "web is unhealthy",
    ]


def test_table_has_one_row_per_unit_and_the_columns() -> None:
    """The table shows state, pid, uptime, restarts, health and last exit."""
    lines = render_table(doc()).splitlines()
    assert lines[0].split()[:4] == ["NAME", "KIND", "STATE", "PID"]
    web = next(line for line in lines if line.startswith("web"))
    assert "4242" in web and "1h06m" in web and "SIGKILL (health)" in web and "healthy" in web
    assert "db 0002 / head 0002" in next(line for line in lines if line.startswith("migrate"))
    assert lines[-1].startswith("supervisor 0.1.0 pid 1 running")


def test_a_pending_program_says_what_it_waits_for() -> None:
    """NOTE names what holds a pending program: a dependency, or a start it comes after."""
    worker = {"name": "worker", "kind": "program", "state": "pending", "pid": None, "waiting_for": ["web"]}
    lines = render_table(doc(units=[*doc()["units"], worker])).splitlines()
    assert next(line for line in lines if line.startswith("worker")).endswith("waiting for web")


def test_cpu_and_mem_columns_show_the_sample_or_a_dash() -> None:
    """CPU and MEM show a program's tree figures, and a dash where there is none yet."""
    d = doc()
    d["units"][2].update(cpu_percent=12.34, rss_bytes=47_500_000)
    lines = render_table(d).splitlines()
    assert lines[0].split()[7:9] == ["CPU", "MEM"]
    web = next(line for line in lines if line.startswith("web")).split()
    assert web[7:9] == ["12.3%", "45.3M"]
    postgres = next(line for line in lines if line.startswith("postgres")).split()
    assert postgres[7:9] == ["-", "-"]


def test_health_reads_failing_before_the_threshold_and_a_dash_without_a_process() -> None:
    """HEALTH: failing N/T while checks fail below the threshold; unhealthy at it; - when nothing runs."""
    web = doc()["units"][2]

    def cell(**fields: Any) -> str:
        row = next(line for line in render_table(doc(units=[{**web, **fields}])).splitlines() if line.startswith("web"))
        return row.split()[6]

    assert cell(health_failures=1, health_failure_threshold=2) == "failing"
    assert "failing 1/2" in render_table(doc(units=[{**web, "health_failures": 1, "health_failure_threshold": 2}]))
    assert cell(health="unhealthy", health_failures=2, health_failure_threshold=2) == "unhealthy"
    assert cell(health_failures=0, health_failure_threshold=2) == "healthy"
    assert cell(state="stopped", pid=None, health="unknown") == "-"
    assert problems(doc(units=[{**web, "health_failures": 1, "health_failure_threshold": 2}])) == []
