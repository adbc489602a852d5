"""SIGHUP: re-read the configuration; restart only what changed; refuse an invalid file."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from supervisor.config import load
from supervisor.daemon import bind_listener
from supervisor.errors import ConfigError
from supervisor.events import Reason, Restart, Shutdown, Start
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
    changed, added, failed = [], [], {}
    for name, prog in new.config.programs.items():
        old = old_cfg.programs.get(name)
        if old is None:
            added.append(name)
        elif old != prog:
            changed.append(name)
    removed = [n for n in old_cfg.programs if n not in new.config.programs]
    # Bind every new or moved listen address before anything changes: one that cannot be
    # bound refuses that program's part of the reload, never the daemon.
    fresh: dict[str, socket.socket] = {}
    for name in [*changed, *added]:
        address = new.config.programs[name].listen
        moved = name in added or old_cfg.programs[name].listen != address
        if address and moved:
            try:
                fresh[name] = bind_listener(address)
            except OSError as exc:
                failed[name] = f"cannot bind {address}: {exc.strerror or exc}"
    changed = [n for n in changed if n not in failed]
    added = [n for n in added if n not in failed]
    programs = dict(new.config.programs)
    for name in failed:  # keep what runs for a refused program, so the next reload sees it as it is
        if name in old_cfg.programs:
            programs[name] = old_cfg.programs[name]
        else:
            del programs[name]
    unchanged_other = (
        old_cfg.dependencies == new.config.dependencies
        and old_cfg.jobs == new.config.jobs
        and old_cfg.supervisor == new.config.supervisor
    )
    daemon.loaded = replace(new, config=new.config.model_copy(update={"programs": programs}))
    daemon.cfg = daemon.loaded.config
    for name in removed:
        unit = daemon.units.pop(name)
        assert isinstance(unit, ProgramRunner)
        unit.dispatch(Shutdown())
        daemon.loop.create_task(_retire(unit, daemon.listeners.pop(name, None)))
    ordered = [n for level in new.plan for n in level]
    for name in changed:
        unit = daemon.units[name]
        assert isinstance(unit, ProgramRunner)
        if name in fresh or not daemon.cfg.programs[name].listen:
            old_sock = daemon.listeners.pop(name, None)
            if name in fresh:
                daemon.listeners[name] = fresh[name]
            if old_sock is not None:
                old_sock.close()  # a running incarnation keeps its own copy until it goes
        listener = daemon.listeners.get(name)
        # Keep the runner (its log buffer, its counters); the next incarnation uses the new definition.
        unit.redefine(daemon.cfg.programs[name], listener.fileno() if listener else None)
        unit.dispatch(Restart(Reason.RELOAD))  # an operator's stop holds: the machine ignores it then
    for name in added:
        if name in fresh:
            daemon.listeners[name] = fresh[name]
        daemon.units[name] = daemon.make_unit(name)
    # Keep the status document in the new start-up order.
    daemon.units = {n: daemon.units[n] for n in ordered if n in daemon.units}
    for name in added:
        unit = daemon.units[name]
        if isinstance(unit, ProgramRunner) and unit.cfg.autostart:
            unit.dispatch(Start())
    daemon._schedule_recompute()
    unchanged = [n for n in new.config.programs if n not in changed and n not in added and n not in failed]
    result: dict[str, Any] = {
        "ok": not failed,
        "changed": changed,
        "added": added,
        "removed": removed,
        "unchanged": unchanged,
    }
    if failed:
        result["failed"] = failed
        result["error"] = "; ".join(f"{n}: {why}" for n, why in failed.items())
    if not unchanged_other:
        result["note"] = "dependencies, jobs and [supervisor] changes take effect at the next start"
    (daemon.log.warning if failed else daemon.log.info)("config.reloaded", **result)
    return result


async def _retire(unit: ProgramRunner, listener: socket.socket | None) -> None:
    await unit.wait_down()
    unit.close()
    if listener is not None:
        listener.close()
