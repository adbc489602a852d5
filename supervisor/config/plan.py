"""What ``supervisor check`` says of a valid configuration: its start-up plan and the orders in it."""

from __future__ import annotations

from supervisor.config.settings import Loaded


def plan_lines(loaded: Loaded) -> list[str]:
    """Return the plan's levels, then per program its `after`, its instances and a start-first restart."""
    lines = [f"{loaded.path}: valid", "start-up plan (each step needs only the ones before it):"]
    for i, level in enumerate(loaded.plan, 1):
        lines.append(f"  {i}. " + ", ".join(f"{n} ({loaded.kind_of(n)})" for n in level))
    for name, prog in loaded.config.programs.items():
        if prog.instance:  # web:1 and on are as web:0, which speaks for them all
            continue
        if prog.instance_of is not None:
            name = prog.instance_of
            count = len(loaded.config.members(name))
            rolls = f"restart {name} replaces them one at a time"
            lines.append(f"  {name}: {count} instances, {name}:0 ... {name}:{count - 1}; {rolls}")
        if prog.after:
            first, verb = ", ".join(prog.after), "is" if len(prog.after) == 1 else "are"
            lines.append(f"  {name}: starts after {first} (ordering only: waits while {first} {verb} starting)")
        if prog.restart.order == "start-first":
            ready = "READY=1 (notify)" if prog.notify else "its heartbeat file"
            ready = "its ready_log line" if prog.ready_log and not prog.notify else ready
            serves = "the old process serves until the new one is ready by"
            lines.append(f"  {name}: restarts start-first: {serves} {ready}")
    return lines
