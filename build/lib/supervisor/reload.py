"""SIGHUP: re-read the configuration; restart only what changed; refuse an invalid file."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from supervisor.config import load
from supervisor.errors import ConfigError
from supervisor.states import Reason, Restart, Shutdown, Start
from supervisor.units.program import ProgramRunner

if TYPE_CHECKING:
    from supervisor.daemon import Daemon


async def reload(daemon: Daemon) -> dict[str, Any]:
    """Apply a new configuration to the running daemon; return what changed."""
    try:
        new = load(daemon.loaded.path)
    except ConfigError as exc:
        daemon.log.error(
            "config.reload_refused",
            problems=[f"{k}: {w}" for k, w in exc.problems],
            next="the running configuration stays as it was",
        )
        return {"ok": False, "error": exc.render()}
    old_cfg = daemon.cfg
    changed, added, removed = [], [], []
    for name, prog in new.config.programs.items():
        old = old_cfg.programs.get(name)
        if old is None:
            added.append(name)
        elif old != prog:
            changed.append(name)
    removed = [n for n in old_cfg.programs if n not in new.config.programs]
    unchanged_other = (
        old_cfg.dependencies == new.config.dependencies
        and old_cfg.jobs == new.config.jobs
        and old_cfg.supervisor == new.config.supervisor
    )
    daemon.loaded, daemon.cfg = new, new.config
    for name in removed:
        unit = daemon.units.pop(name)
        assert isinstance(unit, ProgramRunner)
        unit.dispatch(Shutdown())
        daemon.loop.create_task(_retire(unit, daemon.listeners.pop(name, None)))
    ordered = [n for level in new.plan for n in level]
    for name in changed:
        unit = daemon.units[name]
        assert isinstance(unit, ProgramRunner)
        old_prog = old_cfg.programs[name]
        if old_prog.listen != new.config.programs[name].listen:
            _rebind(daemon, name)
        listener = daemon.listeners.get(name)
        # Keep the runner (its log buffer, its counters); the next incarnation uses the new definition.
        unit.redefine(new.config.programs[name], listener.fileno() if listener else None)
        unit.dispatch(Restart(Reason.RELOAD))
    for name in added:
        if new.config.programs[name].listen:
            _rebind(daemon, name)
        unit = daemon.make_unit(name)
        daemon.units[name] = unit
    # Keep the status document in the new start-up order.
    daemon.units = {n: daemon.units[n] for n in ordered if n in daemon.units}
    for name in added:
        unit = daemon.units[name]
        if isinstance(unit, ProgramRunner) and unit.cfg.autostart:
            unit.dispatch(Start())
    daemon._schedule_recompute()
    result = {"ok": True, "changed": changed, "added": added, "removed": removed}
    if not unchanged_other:
        result["note"] = "dependencies, jobs and [supervisor] changes take effect at the next start"
    daemon.log.info("config.reloaded", **result)
    return result


async def _retire(unit: ProgramRunner, listener: socket.socket | None) -> None:
    await unit.wait_down()
    unit.close()
    if listener is not None:
        listener.close()


def _rebind(daemon: Daemon, name: str) -> None:
    from supervisor.daemon import bind_listener

    old = daemon.listeners.pop(name, None)
    if old is not None:
        old.close()
    address = daemon.cfg.programs[name].listen
    if address:
        daemon.listeners[name] = bind_listener(address)
