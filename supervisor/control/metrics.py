"""``/metrics``: Prometheus families made at scrape time from the target's figures (prometheus-client)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from supervisor.engine.target import ControlTarget, Figures
from supervisor.machine.events import RESTART_REASONS
from supervisor.machine.jobstates import JobState
from supervisor.machine.model import State


class Metrics:
    """One registry per server: no module-level state, so tests can run several."""

    def __init__(self, target: ControlTarget) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(target))

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition and its content type."""
        return generate_latest(self.registry), "text/plain; version=0.0.4; charset=utf-8"


class _Collector(Collector):
    def __init__(self, target: ControlTarget) -> None:
        self.target = target

    def describe(self) -> Iterator[Metric]:
        """Describe nothing up front, so that registering does not read the target."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        figures = self.target.figures()
        yield _probes(figures)
        yield from _units(figures)
        ready = GaugeMetricFamily("supervisor_ready", "1 once every program is up.")
        ready.add_metric([], 1.0 if figures["status"]["supervisor"]["started"] else 0.0)
        yield ready
        dropped = CounterMetricFamily(
            "supervisor_log_lines_dropped",
            "Log lines dropped because nobody read the supervisor's output or its stream refused them (a full disk).",
        )
        dropped.add_metric([], float(figures["log_lines_dropped"]))
        yield dropped


def _probes(figures: Figures) -> Metric:
    """The probe latency histogram, with each series' creation time as prometheus-client gives it."""
    family = HistogramMetricFamily(
        "supervisor_probe_duration_seconds",
        "Latency of dependency and health probes.",
        labels=["kind", "name", "result"],
    )
    for series in figures["probes"]:
        labels = [series["kind"], series["name"], series["result"]]
        buckets = [("+Inf" if b == float("inf") else repr(b), float(count)) for b, count in series["buckets"]]
        family.add_metric(labels, buckets, series["sum_s"])
        keys = dict(zip(("kind", "name", "result"), labels, strict=True))
        family.samples.append(Sample(f"{family.name}_created", keys, series["created"]))
    return family


def _units(figures: Figures) -> Iterator[Metric]:
    """The per-program, per-dependency and per-job families."""
    up = GaugeMetricFamily("supervisor_program_up", "1 when the program is running.", labels=["program"])
    state = GaugeMetricFamily(
        "supervisor_program_state", "1 for the program's current state.", labels=["program", "state"]
    )
    restarts = CounterMetricFamily("supervisor_program_restarts", "Restarts by reason.", labels=["program", "reason"])
    uptime = GaugeMetricFamily(
        "supervisor_program_uptime_seconds", "Seconds since the current start.", labels=["program"]
    )
    last_exit = GaugeMetricFamily(
        "supervisor_program_last_exit_code", "Last exit code (negative: the signal number).", labels=["program"]
    )
    rss = GaugeMetricFamily("supervisor_program_rss_bytes", "RSS of the program's process tree.", labels=["program"])
    cpu = GaugeMetricFamily(
        "supervisor_program_cpu_percent", "CPU of the program's process tree over the last sample.", labels=["program"]
    )
    health_fail = CounterMetricFamily(
        "supervisor_program_health_check_failures", "Failed health checks.", labels=["program"]
    )
    dep_ready = GaugeMetricFamily(
        "supervisor_dependency_ready", "1 when the dependency is ready.", labels=["dependency", "type"]
    )
    suppressed = CounterMetricFamily(
        "supervisor_program_output_suppressed", "Output lines dropped by log_limit.", labels=["program"]
    )
    job_state = GaugeMetricFamily("supervisor_job_state", "1 for the job's current state.", labels=["job", "state"])
    job_attempts = GaugeMetricFamily("supervisor_job_attempts", "Attempts made.", labels=["job"])
    job_duration = GaugeMetricFamily("supervisor_job_duration_seconds", "How long the job took.", labels=["job"])
    for unit in figures["status"]["units"]:
        name = unit["name"]
        if unit["kind"] == "program":
            counters = figures["programs"].get(name)
            up.add_metric([name], 1.0 if unit["state"] == "running" else 0.0)
            for ps in State:
                state.add_metric([name, ps], 1.0 if unit["state"] == ps else 0.0)
            by_reason = counters["restarts_by_reason"] if counters else {}
            for reason in RESTART_REASONS:
                restarts.add_metric([name, reason], float(by_reason.get(reason, 0)))
            uptime.add_metric([name], float(unit["uptime_s"] or 0.0))
            if counters and counters["last_exit_code"] is not None:
                last_exit.add_metric([name], float(counters["last_exit_code"]))
            rss.add_metric([name], float(unit["rss_bytes"] or 0))
            if unit.get("cpu_percent") is not None:
                cpu.add_metric([name], float(unit["cpu_percent"] or 0.0))
            health_fail.add_metric([name], float(counters["health_failures"] if counters else 0))
            suppressed.add_metric([name], float(counters["output_suppressed"] if counters else 0))
        elif unit["kind"] == "dependency":
            dep_ready.add_metric([name, unit["type"]], 1.0 if unit["state"] == "ready" else 0.0)
        else:
            for js in JobState:
                job_state.add_metric([name, js], 1.0 if unit["state"] == js else 0.0)
            job_attempts.add_metric([name], float(unit["attempts"]))
            if unit["duration_s"] is not None:
                job_duration.add_metric([name], unit["duration_s"])
    yield from (up, state, restarts, uptime, last_exit, rss, cpu, health_fail, suppressed)
    yield from (dep_ready, job_state, job_attempts, job_duration)
