"""A reload carried out: the diff of two configurations applied to the running units.

What changed restarts, what is new starts, what is gone retires; a listen address that cannot
be bound refuses that program's part of the reload, never the daemon's.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from typing import Any, Protocol

from supervisor.config.diff import diff
from supervisor.config.settings import Config, Loaded
from supervisor.engine.target import ReloadResult
from supervisor.engine.units.base import Unit
from supervisor.engine.units.program import ProgramRunner
from supervisor.host.listen import bind_listener
from supervisor.machine.events import Reason, Restart, Shutdown


class ReloadHost(Protocol):
    """What a reload changes in the daemon."""

    loaded: Loaded
    cfg: Config
    units: dict[str, Unit]
    listeners: dict[str, socket.socket]
    log: Any
    loop: asyncio.AbstractEventLoop

    def make_unit(self, name: str) -> Unit:
        """Build the runner for one unit of the current configuration."""
        ...

    def _schedule_recompute(self) -> None: ...


def apply_reload(d: ReloadHost, new: Loaded) -> ReloadResult:
    """Apply a validated configuration to ``d``: restart what changed, refuse what cannot be."""
    change = diff(d.cfg, new.config)
    # Bind every new listen address before anything changes: one that cannot be bound
    # refuses that program's part of the reload, never the daemon.
    fresh: dict[str, socket.socket] = {}
    failed: dict[str, str] = {}
    for name in change.new_listen:
        address = new.config.programs[name].listen or ""
        try:
            fresh[name] = bind_listener(address)
        except OSError as exc:
            failed[name] = f"cannot bind {address}: {exc.strerror or exc}"
    programs = dict(new.config.programs)
    for name in failed:  # what runs stays as it is, so the next reload compares against it
        if name in d.cfg.programs:
            # ...but with the new `after`: the new file's order has no loop, a mix of both might
            programs[name] = replace(d.cfg.programs[name], after=programs[name].after)
        else:
            del programs[name]
    d.loaded = replace(new, config=replace(new.config, programs=programs))
    d.cfg = d.loaded.config
    changed = [n for n in change.changed if n not in failed]
    added = [n for n in change.added if n not in failed]
    for name in change.removed:
        unit = d.units.pop(name)
        assert isinstance(unit, ProgramRunner)
        unit.dispatch(Shutdown())
        d.loop.create_task(_retire(unit, d.listeners.pop(name, None)))
    for name in changed:
        unit = d.units[name]
        assert isinstance(unit, ProgramRunner)
        if name in fresh or not d.cfg.programs[name].listen:
            old_sock = d.listeners.pop(name, None)
            if name in fresh:
                d.listeners[name] = fresh[name]
            if old_sock is not None:
                old_sock.close()  # a running incarnation keeps its own copy until it goes
        listener = d.listeners.get(name)
        # Keep the runner (its log buffer, its counters); the next incarnation uses the new definition.
        unit.redefine(d.cfg.programs[name], listener.fileno() if listener else None)
        unit.dispatch(Restart(Reason.RELOAD))  # an operator's stop holds: the machine ignores it then
    for name in added:
        if name in fresh:
            d.listeners[name] = fresh[name]
        d.units[name] = d.make_unit(name)
    # Keep the status document in the new start-up order.
    d.units = {n: d.units[n] for level in new.plan for n in level if n in d.units}
    for name in added:
        d.units[name].begin()
    d._schedule_recompute()
    result: ReloadResult = {
        "ok": not failed,
        "changed": changed,
        "added": added,
        "removed": list(change.removed),
        "unchanged": list(change.unchanged),
    }
    if failed:
        result["failed"] = failed
        result["error"] = "; ".join(f"{n}: {why}" for n, why in failed.items())
    if change.note:
        result["note"] = change.note
    (d.log.warning if failed else d.log.info)("config.reloaded", **result)
    return result


async def _retire(unit: ProgramRunner, listener: socket.socket | None) -> None:
    """Close a removed program's runner and socket once it is down."""
    await unit.wait_down()
    unit.close()
    if listener is not None:
        listener.close()
