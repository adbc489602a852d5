"""Development mode: a program restarts when a file its ``watch`` globs name changes.

Only ``run --dev`` (or ``SUPERVISOR_DEV=1``) builds a ``DevWatch``. Otherwise this module, and
``watchfiles``, are never imported: no watcher thread exists and an idle daemon stays idle.

Each program with ``watch`` gets one ``watchfiles.awatch`` (inotify, in a thread of its own)
over the directories its globs start from. A burst of changes is one batch once the files have
stayed quiet for ``watch_debounce``; a batch is one restart (a rolling one for instances,
start-first where configured). Batches that come while that restart is under way coalesce into
one more restart after it, so the program always ends up running the latest files.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from supervisor.config.globs import Globs
from supervisor.config.settings import Loaded
from supervisor.engine.target import Refused, Verb
from supervisor.machine.events import Reason
from supervisor.machine.status import ProgramEntry

SHOWN_PATHS = 10  # a log line names at most this many changed files


class DevHost(Protocol):
    """What the watch needs of the daemon: its configuration, its log, and a restart verb."""

    loaded: Loaded
    log: Any
    loop: asyncio.AbstractEventLoop
    reload_hooks: list[Callable[[], None]]

    async def act(self, name: str, verb: Verb, reason: Reason = Reason.OPERATOR) -> list[ProgramEntry]:
        """Restart a program (all of its instances, one at a time) and wait until it settles."""
        ...


Spec = tuple[str, tuple[str, ...], float]  # base directory, globs, debounce


@dataclass
class _Watched:
    """One program's watcher, and the restart it may have under way."""

    spec: Spec
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None
    restarting: asyncio.Task[None] | None = None
    again: list[str] = field(default_factory=list)  # changes that came during the restart
    more: bool = False


class DevWatch:
    """Watches every program's ``watch`` globs and restarts the program on a change."""

    def __init__(self, host: DevHost) -> None:
        self.host = host
        self.watched: dict[str, _Watched] = {}

    def start(self) -> None:
        """Begin watching, and follow every reload (a program's globs may change, or it may go)."""
        self.refresh()
        self.host.reload_hooks.append(self.refresh)

    def wanted(self) -> dict[str, Spec]:
        """Return what each program (instances as one) should be watching under the current file."""
        out: dict[str, Spec] = {}
        for name, cfg in self.host.loaded.config.programs.items():
            if cfg.watch:
                base = os.path.abspath(cfg.cwd or os.getcwd())
                out.setdefault(cfg.instance_of or name, (base, tuple(cfg.watch), cfg.watch_debounce))
        return out

    def refresh(self) -> None:
        """Start, stop or replace watchers so that they match the configuration now."""
        wanted = self.wanted()
        for group in [g for g, w in self.watched.items() if wanted.get(g) != w.spec]:
            self._drop(group)
        for group, spec in wanted.items():
            if group not in self.watched:
                self._add(group, spec)

    def _add(self, group: str, spec: Spec) -> None:
        base, patterns, debounce_s = spec
        globs = Globs(base, patterns)
        for pattern in globs.unmatched():
            self.host.log.warning(
                "program.watch_unmatched", program=group, glob=pattern, cwd=base, hint="no file matches it yet"
            )
        roots = globs.roots()
        watched = _Watched(spec, asyncio.Event())
        self.watched[group] = watched
        if not roots:
            self.host.log.warning("program.watch_nothing", program=group, globs=list(patterns), cwd=base)
            return
        watched.task = self.host.loop.create_task(self._watch(group, globs, roots, debounce_s, watched.stop))
        self.host.log.info("program.watching", program=group, globs=list(patterns), roots=roots, debounce_s=debounce_s)

    def _drop(self, group: str) -> None:
        watched = self.watched.pop(group)
        watched.stop.set()  # the watch thread sees it within one debounce step
        if watched.task is not None:
            watched.task.cancel()

    async def _watch(self, group: str, globs: Globs, roots: list[str], debounce_s: float, stop: asyncio.Event) -> None:
        import watchfiles  # here only: a daemon without --dev never loads it

        usual = watchfiles.DefaultFilter()  # .git, __pycache__, .pyc, editors' swap files

        def named(change: watchfiles.Change, path: str) -> bool:
            return usual(change, path) and globs.matches(path)

        quiet_ms = max(1, round(debounce_s * 1000))
        try:
            # step: the quiet time that ends a batch; debounce: the longest a batch may gather.
            async for changes in watchfiles.awatch(
                *roots, watch_filter=named, step=quiet_ms, debounce=max(10 * quiet_ms, 1600), stop_event=stop
            ):
                self.changed(group, sorted({os.path.relpath(path, globs.base) for _, path in changes}))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an inotify limit, a root deleted: development stops, the daemon does not
            self.host.log.warning("program.watch_failed", program=group, error=str(exc), next="no longer watching")

    def changed(self, group: str, paths: list[str]) -> None:
        """Restart ``group`` for a batch of changes, or fold the batch into the restart under way."""
        watched = self.watched.get(group)
        if watched is None:
            return
        if watched.restarting is not None and not watched.restarting.done():
            watched.more = True
            watched.again = sorted({*watched.again, *paths})
            self.host.log.info("program.watch_coalesced", program=group, paths=paths[:SHOWN_PATHS])
            return
        watched.restarting = self.host.loop.create_task(self._restart(group, watched, paths))

    async def _restart(self, group: str, watched: _Watched, paths: list[str]) -> None:
        while True:
            self.host.log.info(
                "program.watch_changed",
                program=group,
                paths=paths[:SHOWN_PATHS],
                files=len(paths),
                next="restarting it",
            )
            try:
                await self.host.act(group, "restart", Reason.WATCH)
            except Refused as exc:  # stopping, or the program went in a reload meanwhile
                self.host.log.warning("program.watch_restart_refused", program=group, error=str(exc))
                return
            if not watched.more:
                return
            # Files changed while it restarted: it may have read some of them before. Once more.
            paths, watched.again, watched.more = watched.again, [], False

    def close(self) -> None:
        """Stop every watcher and any restart it asked for."""
        for group in list(self.watched):
            watched = self.watched[group]
            self._drop(group)
            if watched.restarting is not None:
                watched.restarting.cancel()
