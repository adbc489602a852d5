"""A reload carried out: the diff of two configurations applied to the running units.

What changed restarts, what is new starts, what is gone retires; a listen address that cannot
be bound refuses that program's part of the reload, never the daemon's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from supervisor.config.diff import diff
from supervisor.config.globs import all_warnings
from supervisor.config.instances import listen_key
from supervisor.config.settings import Config, Loaded
from supervisor.engine.graph import singleton_url
from supervisor.engine.rolling import roll
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
    state: Any  # the daemon's phase: a roll stops once it is stopping
    rolling: dict[str, asyncio.Task[None]]  # a reload's rolling restart of each program's instances
    reload_hooks: list[Callable[[], None]]  # called once a new configuration is in place (dev mode's watch)

    def make_unit(self, name: str) -> Unit:
        """Build the runner for one unit of the current configuration."""
        ...

    def _schedule_recompute(self) -> None: ...


def refused_while_leaving(d: ReloadHost) -> ReloadResult | None:
    """Refuse a reload once the supervisor drains or stops, in the log too: a SIGHUP's sender reads nothing else."""
    if d.state not in ("draining", "stopping"):
        return None
    why = f"the supervisor is {d.state}"
    d.log.warning("config.reload_refused", why=why, next="the running configuration stays as it was")
    return {"ok": False, "error": why}


def apply_reload(
    d: ReloadHost, new: Loaded, event: str | None = "config.reloaded", config_from: str | None = None
) -> ReloadResult:
    """Apply a validated configuration to ``d``: restart what changed, refuse what cannot be; log ``event``.

    ``config_from`` says where the configuration came from (``cache`` or ``validation``) in the event.
    """
    change = diff(d.cfg, new.config)
    # Bind every new listen address before anything changes: one that cannot be bound
    # refuses that program's part of the reload, never the daemon.
    fresh: dict[str, socket.socket] = {}  # by listen key: a program's own, or its instances' shared one
    failed: dict[str, str] = {}
    unbound: dict[str, str] = {}
    for name in change.new_listen:
        key, address = listen_key(name, new.config.programs[name]), new.config.programs[name].listen or ""
        if key not in fresh and key not in unbound:
            try:
                fresh[key] = bind_listener(address)
            except OSError as exc:
                unbound[key] = f"cannot bind {address}: {exc.strerror or exc}"
        if key in unbound:
            failed[name] = unbound[key]
    old_programs = d.cfg.programs
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
    in_use = {listen_key(n, p) for n, p in d.cfg.programs.items() if p.listen}
    for name in change.removed:
        unit = d.units.pop(name)
        assert isinstance(unit, ProgramRunner)
        unit.dispatch(Shutdown())
        key = listen_key(name, old_programs[name])
        d.loop.create_task(_retire(unit, d.listeners.pop(key, None) if key not in in_use else None))
    for key, sock in fresh.items():  # once per socket, however many instances accept on it
        old_sock = d.listeners.pop(key, None)
        d.listeners[key] = sock
        if old_sock is not None:
            old_sock.close()  # a running incarnation keeps its own copy until it goes
    for name in changed:
        key = listen_key(name, d.cfg.programs[name])
        if key not in in_use and (old_sock := d.listeners.pop(key, None)) is not None:
            old_sock.close()  # it listens no more
    rolls: dict[str, list[ProgramRunner]] = {}
    for name in changed:
        unit = d.units[name]
        assert isinstance(unit, ProgramRunner)
        listener = d.listeners.get(listen_key(name, d.cfg.programs[name]))
        # Keep the runner (its log buffer, its counters); the next incarnation uses the new definition.
        unit.redefine(d.cfg.programs[name], listener.fileno() if listener else None, singleton_url(d.cfg, name))
        if (base := d.cfg.programs[name].instance_of) is not None:
            rolls.setdefault(base, []).append(unit)  # instances: one after another, as `restart` does
        else:
            unit.dispatch(Restart(Reason.RELOAD))  # an operator's stop holds: the machine ignores it then
    for base, units in rolls.items():
        if base in d.rolling:
            d.rolling.pop(base).cancel()  # this reload's roll replaces the one still under way
        d.rolling[base] = d.loop.create_task(_roll(d, base, units))
    for name in added:
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
    if config_from is not None:
        result["config_from"] = config_from
    if event is not None:
        (d.log.warning if failed else d.log.info)(event, **result)
        for warning in all_warnings(new):
            d.log.warning("config.warning", detail=warning)
    for hook in d.reload_hooks:
        hook()
    return result


async def _retire(unit: ProgramRunner, listener: socket.socket | None) -> None:
    """Close a removed program's runner and socket once it is down."""
    await unit.wait_down()
    unit.close()
    if listener is not None:
        listener.close()


async def _roll(d: ReloadHost, base: str, units: list[ProgramRunner]) -> None:
    """Restart a reloaded program's instances one at a time, each once the one before is running."""

    async def restart(unit: ProgramRunner) -> bool:
        if d.state in ("stopping", "draining") or unit not in d.units.values():
            return False  # shutting down, or a scale or reload removed it meanwhile
        unit.dispatch(Restart(Reason.RELOAD))
        return True

    try:
        stuck = await roll(units, restart)
        if stuck is not None:
            why = f"{stuck.name} is {stuck.model.state.value} after its restart"
            d.log.warning("program.rolling_restart_stopped", program=base, why=why)
    finally:
        if d.rolling.get(base) is asyncio.current_task():
            del d.rolling[base]
