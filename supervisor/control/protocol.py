"""The status document: what counts as OK, and how a table of it reads. Standard library only."""

from __future__ import annotations

from typing import Any

from supervisor.durations import format_duration

API_PREFIX = "/v1"


def problems(doc: dict[str, Any]) -> list[str]:
    """Return one short reason per unit that is not as ``status`` exit 0 requires."""
    out = []
    for unit in doc.get("units", []):
        name, kind, state = unit.get("name"), unit.get("kind"), unit.get("state")
        if kind == "program":
            if state == "stopped" and unit.get("autostart") is False and unit.get("held"):
                continue  # autostart = false and never started: not a problem
            if state != "running":
                out.append(f"{name} is {state}" + (f": {unit['error']}" if unit.get("error") else ""))
            elif unit.get("health") == "unhealthy":
                out.append(f"{name} is unhealthy")
        elif kind == "job":
            if state not in ("succeeded", "skipped"):
                out.append(f"job {name} {state}" + (f": {unit['error']}" if unit.get("error") else ""))
        elif kind == "dependency" and state != "ready":
            out.append(f"{name} {state}" + (f": {unit['error']}" if unit.get("error") else ""))
    return out


def _exit(last: dict[str, Any] | None) -> str:
    if not last:
        return "-"
    what = f"code {last['code']}" if "code" in last else str(last.get("signal"))
    return f"{what} ({last.get('reason', 'exit')})"


def _reason(unit: dict[str, Any]) -> str:
    if unit.get("error"):
        return str(unit["error"])[:80]
    revision = unit.get("revision")
    if revision:
        return f"db {','.join(revision['current']) or 'empty'} / head {','.join(revision['heads'])}"
    return ""


HEADER = ("NAME", "KIND", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "LAST EXIT", "NOTE")


def table_rows(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    """Return the header and one row of cells per unit, as ``status`` shows them."""
    rows: list[tuple[str, ...]] = [HEADER]
    for u in doc.get("units", []):
        if u.get("kind") == "program":
            rows.append(
                (
                    u["name"],
                    "program",
                    u["state"],
                    str(u.get("pid") or "-"),
                    format_duration(u.get("uptime_s")),
                    str(u.get("restarts", 0)),
                    u.get("health") or "-",
                    _exit(u.get("last_exit")),
                    _reason(u),
                )
            )
        elif u.get("kind") == "job":
            rows.append(
                (
                    u["name"],
                    "job",
                    u["state"],
                    "-",
                    "-",
                    f"{u.get('attempts', 0)} att.",
                    "-",
                    "-" if u.get("exit_code") is None else f"code {u['exit_code']}",
                    _reason(u),
                )
            )
        else:
            latency = u.get("latency_ms")
            rows.append(
                (
                    u["name"],
                    "dependency",
                    u["state"],
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    _reason(u) or ("" if latency is None else f"{latency:.1f} ms"),
                )
            )
    return rows


def supervisor_line(doc: dict[str, Any]) -> str:
    """Return the line about the supervisor itself: version, pid, state, uptime, readiness."""
    sup = doc.get("supervisor", {})
    return (
        f"supervisor {sup.get('version', '?')} pid {sup.get('pid', '?')} {sup.get('state', '?')}, "
        f"up {format_duration(sup.get('uptime_s'))}, ready={'yes' if sup.get('ready') else 'no'}"
    )


def render_table(doc: dict[str, Any]) -> str:
    """Render the status document as an aligned table, one line per unit."""
    rows = table_rows(doc)
    header = HEADER
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    lines.append(supervisor_line(doc))
    return "\n".join(line.rstrip() for line in lines)


def parse_signal(value: object) -> int | None:
    """Return the signal number for ``HUP``, ``SIGHUP``, ``sighup`` or ``1``; None if there is none."""
    import signal as _signal

    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        return number if number in _signal.valid_signals() else None
    if not isinstance(value, str):
        return None
    name = value.strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    member = getattr(_signal.Signals, name, None) if name.isidentifier() else None
    return int(member) if isinstance(member, _signal.Signals) else None
