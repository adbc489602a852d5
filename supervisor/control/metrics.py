"""``/metrics``: Prometheus families read from the units at scrape time (prometheus-client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from supervisor.process import trees_rss
from supervisor.states import State
from supervisor.units.dependency import DependencyRunner
from supervisor.units.job import JobRunner
from supervisor.units.program import ProgramRunner

if TYPE_CHECKING:
    from supervisor.daemon import Daemon

PROGRAM_STATES = [s.value for s in State]
JOB_STATES = ["pending", "running", "retrying", "succeeded", "failed", "skipped"]
DEPENDENCY_STATES = ["waiting", "ready", "unavailable", "timed_out"]


class Metrics:
    """One registry per daemon: no module-level state, so tests can run several."""

    def __init__(self, daemon: Daemon) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.probe_seconds = Histogram(
            "supervisor_probe_duration_seconds",
            "Latency of dependency and health probes.",
            ["kind", "name", "result"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.registry.register(_UnitCollector(daemon))

    def observe_probe(self, kind: str, name: str, seconds: float, ok: bool) -> None:
        """Record one probe's latency."""
        self.probe_seconds.labels(kind, name, "ok" if ok else "fail").observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition and its content type."""
        return generate_latest(self.registry), "text/plain; version=0.0.4; charset=utf-8"


class _UnitCollector(Collector):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        up = GaugeMetricFamily("supervisor_program_up", "1 when the program is running.", labels=["program"])
        state = GaugeMetricFamily(
            "supervisor_program_state", "1 for the program's current state.", labels=["program", "state"]
        )
        restarts = CounterMetricFamily(
            "supervisor_program_restarts", "Restarts by reason.", labels=["program", "reason"]
        )
        uptime = GaugeMetricFamily(
            "supervisor_program_uptime_seconds", "Seconds since the current start.", labels=["program"]
        )
        last_exit = GaugeMetricFamily(
            "supervisor_program_last_exit_code", "Last exit code (negative: the signal number).", labels=["program"]
        )
        rss = GaugeMetricFamily(
            "supervisor_program_rss_bytes", "RSS of the program's process tree.", labels=["program"]
        )
        health_fail = CounterMetricFamily(
            "supervisor_program_health_check_failures", "Failed health checks.", labels=["program"]
        )
        dep_ready = GaugeMetricFamily(
            "supervisor_dependency_ready", "1 when the dependency is ready.", labels=["dependency", "type"]
        )
        job_state = GaugeMetricFamily("supervisor_job_state", "1 for the job's current state.", labels=["job", "state"])
        job_attempts = GaugeMetricFamily("supervisor_job_attempts", "Attempts made.", labels=["job"])
        job_duration = GaugeMetricFamily("supervisor_job_duration_seconds", "How long the job took.", labels=["job"])
        # One pass over the process table for every program's tree, not one per program.
        rss_by_pid = trees_rss({p.model.pid for p in d.programs if p.model.pid is not None})
        for unit in list(d.units.values()):
            if isinstance(unit, ProgramRunner):
                doc = unit.status(rss_by_pid)
                name = unit.name
                up.add_metric([name], 1.0 if unit.model.state is State.RUNNING else 0.0)
                for s in PROGRAM_STATES:
                    state.add_metric([name, s], 1.0 if unit.model.state.value == s else 0.0)
                for reason in ("exit", "health", "memory", "operator", "reload"):
                    restarts.add_metric([name, reason], float(unit.restarts_by_reason.get(reason, 0)))
                uptime.add_metric([name], float(doc["uptime_s"] or 0.0))
                le = unit.model.last_exit
                if le is not None:
                    code = le.status.code if le.status.signal is None else -le.status.signal
                    last_exit.add_metric([name], float(code or 0))
                rss.add_metric([name], float(doc["rss_bytes"] or 0))
                health_fail.add_metric([name], float(unit.health_failures_total))
            elif isinstance(unit, DependencyRunner):
                dep_ready.add_metric([unit.name, unit.cfg.type], 1.0 if unit.state == "ready" else 0.0)
            elif isinstance(unit, JobRunner):
                for s in JOB_STATES:
                    job_state.add_metric([unit.name, s], 1.0 if unit.state == s else 0.0)
                job_attempts.add_metric([unit.name], float(unit.attempts))
                if unit.duration_s is not None:
                    job_duration.add_metric([unit.name], unit.duration_s)
        ready = GaugeMetricFamily("supervisor_ready", "1 once every program is up.")
        ready.add_metric([], 1.0 if d.ready_sent else 0.0)
        dropped = CounterMetricFamily(
            "supervisor_log_lines_dropped", "Log lines dropped because nobody read the supervisor's output."
        )
        dropped.add_metric([], float(d.log_writer.dropped_total if d.log_writer is not None else 0))
        yield from (
            up,
            state,
            restarts,
            uptime,
            last_exit,
            rss,
            health_fail,
            dep_ready,
            job_state,
            job_attempts,
            job_duration,
            ready,
            dropped,
        )
