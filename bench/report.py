"""The benchmark's Markdown table: for each figure, our median (min-max), the peer's, the ratio, the goal."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any


def med(values: list[float]) -> float:
    return statistics.median(values)


def span(values: list[float], unit: str) -> str:
    """``median (min-max) unit``, or the one value."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3g} {unit}".strip()
    return f"{med(values):.3g} ({min(values):.3g}-{max(values):.3g}) {unit}".strip()


class Table:
    """Rows of ``figure | supervisor | peer | ours / peer | goal | met``."""

    def __init__(self) -> None:
        self.lines = [
            "| figure | supervisor: median (min-max) | peer: median (min-max) | ours / peer | goal | met |",
            "|---|---|---|---|---|---|",
        ]

    def row(
        self,
        label: str,
        ours: list[float],
        peers: list[tuple[str, list[float] | None]],
        unit: str,
        goal: str = "",
        met: Callable[[float, float], bool] | None = None,
    ) -> None:
        """One figure; the first peer is the one the ratio and the goal are against."""
        shown = []
        for name, samples in peers:
            shown.append(f"{name}: {span(samples, unit)}" if samples else f"{name}: not measured")
        first = peers[0][1] if peers else None
        ratio = "—"
        verdict = ""
        if ours and first:
            theirs = med(first)
            ratio = f"{med(ours) / theirs:.3g}×" if theirs else "—"
            if met is not None:
                verdict = "yes" if met(med(ours), theirs) else "no"
        elif ours and met is not None:
            verdict = "yes" if met(med(ours), float("nan")) else "no"
        self.lines.append(
            f"| {label} | {span(ours, unit)} | {'; '.join(shown) or '—'} | {ratio} | {goal} | {verdict} |"
        )

    def text(self) -> str:
        return "\n".join(self.lines)


def report(r: dict[str, Any]) -> str:
    """The whole table for one results document."""
    t = Table()
    s6 = r.get("s6")  # None when s6 is not installed
    many = r["many"]

    def field(kind: str, name: str) -> list[float] | None:
        runs = many.get(kind)
        return [m[name] for m in runs] if runs else None

    t.row(
        "`kill -9` of a child that ran > 1 s → new child's first instruction (restart without backoff)",
        r["restart_ms"]["ours"],
        [("s6", r["restart_ms"].get("s6")), ("supervisord", r["restart_ms"]["supervisord"])],
        "ms",
        "≤ 4.5 ms",
        lambda o, p: o <= 4.5,
    )
    t.row(
        "daemon RSS, 100 sleeping children (after start, one sample per start)",
        field("ours", "rss_mb") or [],
        [("supervisord", field("supervisord", "rss_mb"))],
        "MB",
        "≤ supervisord",
        lambda o, p: o <= p,
    )
    if "stack_cost" in r:
        sc = r["stack_cost"]
        t.row(
            "daemon RSS, the example stack (conf/supervisor.toml; supervisord runs the same three programs)",
            [x["rss_mb"] for x in sc["ours"]],
            [("supervisord", [x["rss_mb"] for x in sc["supervisord"]])],
            "MB",
            "≤ supervisord",
            lambda o, p: o <= p,
        )
        t.row(
            "… the same, private memory (smaps_rollup Private_Clean + Private_Dirty)",
            [x["private_mb"] for x in sc["ours"]],
            [("supervisord", [x["private_mb"] for x in sc["supervisord"]])],
            "MB",
        )
    t.row(
        "start 100 children → all ran their first instruction",
        field("ours", "start_s") or [],
        [("s6", field("s6", "start_s")), ("supervisord", field("supervisord", "start_s"))],
        "s",
        "≤ s6",
        lambda o, p: o <= p,
    )
    if r.get("many_cold"):
        t.row(
            "… the same, the first start in a new environment (validates in a child, no cache)",
            [x["start_s"] for x in r["many_cold"]],
            [("s6", field("s6", "start_s"))],
            "s",
        )
    t.row(
        "`status` with 10 programs, whole-process wall time (20 runs each)",
        r["status_ms"]["ours"],
        [("supervisorctl", r["status_ms"]["supervisord"])],
        "ms",
        "≤ 0.5× supervisorctl",
        lambda o, p: o <= 0.5 * p,
    )
    if "stack" in r:
        st = r["stack"]
        t.row(
            "example stack start → web /health 200, fresh database",
            st["supervisor_web_s"],
            [("old entrypoint.sh flow", st["entrypoint_web_s"])],
            "s",
            "≤ the old flow",
            lambda o, p: o <= p,
        )
        t.row(
            "the same, database already at head",
            st["supervisor_web_migrated_s"],
            [("old entrypoint.sh flow", st["entrypoint_web_migrated_s"])],
            "s",
            "≤ the old flow",
            lambda o, p: o <= p,
        )
        if st.get("phase_migration_s"):
            t.row(
                "… ours, fresh: all dependencies ready (since `run` began)", st["phase_dependencies_ready_s"], [], "s"
            )
            t.row(
                "… ours, fresh: the migration job",
                st["phase_migration_s"],
                [("`alembic upgrade head` alone, fresh", st["alembic_alone_fresh_s"])],
                "s",
            )
            t.row(
                "… ours, fresh: web spawned → ready (READY=1)",
                st["phase_web_boot_s"],
                [("uvicorn alone → /health 200", st["uvicorn_alone_s"])],
                "s",
            )
            floor = (
                med(st["phase_dependencies_ready_s"]) + med(st["alembic_alone_fresh_s"]) + med(st["uvicorn_alone_s"])
            )
            t.row(
                "… fresh start's lower bound under depends_on: dependencies ready + the old flow's two steps alone",
                [floor],
                [("old entrypoint.sh flow", st["entrypoint_web_s"])],
                "s",
            )
        t.row("example stack start → every unit ready (worker, beat healthy too)", st["supervisor_all_s"], [], "s")
    if "stack_cost" in r:
        sc = r["stack_cost"]
        t.row(
            "idle CPU of the example stack's daemon (probes every 10 s once ready, connections watched;"
            " health checks on), schedstat",
            [x["idle_cpu_ms_per_s"] for x in sc["ours"]],
            [("supervisord (no checks)", [x["idle_cpu_ms_per_s"] for x in sc["supervisord"]])],
            "ms/s",
            "≤ 0.5 ms/s",
            lambda o, p: o <= 0.5,
        )
    idle = r["idle"]
    t.row(
        f"idle CPU, 100 sleeping children, one {r.get('idle_seconds', 60):g} s window, both side by side",
        [idle["ours"]["idle_cpu_ms_per_s"]],
        [("supervisord", [idle["supervisord"]["idle_cpu_ms_per_s"]])],
        "ms/s",
    )
    t.row(
        "idle wake-ups (context switches) in the same window",
        [idle["ours"]["wakeups_per_s"]],
        [("supervisord", [idle["supervisord"]["wakeups_per_s"]])],
        "/s",
    )
    t.row(
        "graceful stop of 100 children → daemon gone",
        field("ours", "stop_s") or [],
        [("supervisord", field("supervisord", "stop_s")), ("s6", field("s6", "stop_s"))],
        "s",
    )
    t.row(
        "`kill -9` of the supervisor → children alive 2 s later (of 3)",
        [r["orphans"]["ours"]],
        [("supervisord", [r["orphans"]["supervisord"]])],
        "",
        "0",
        lambda o, p: o == 0,
    )
    t.row(
        "SIGSTOP of an HTTP child, 1 s interval / 1 s timeout, threshold 1 → new child serving",
        r["hung_http_s"],
        [("supervisord", None)],
        "s",
        "≤ 2 s",
        lambda o, p: o <= 2,
    )
    if "watch" in r:
        w = r["watch"]
        t.row(
            f"`status --watch` at a {w['interval_s']:g} s interval, {w['programs']} programs → daemon CPU",
            [w["watch_cost_ms_per_s"]],
            [],
            "ms/s",
            "≤ 1 ms/s",
            lambda o, p: o <= 1,
        )
    notes = []
    if s6 is None:
        notes.append("s6 is not installed (`apt-get install s6`): its columns were skipped.")
    else:
        notes.append(f"s6: {s6}.")
    if "load" in r:
        loads = ", ".join(f"{name} {one:.2f}" for name, one in r["load"])
        notes.append(f"1-minute load average at the start of each section: {loads}.")
    return t.text() + "\n\n" + "\n".join(notes)
