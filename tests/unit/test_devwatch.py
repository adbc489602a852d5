"""The dev-mode watch without files or threads: batches become restarts, coalesce, and follow reloads."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from supervisor.config import load
from supervisor.engine.devwatch import DevWatch
from supervisor.engine.target import Conflict
from supervisor.machine.events import Reason


class Host:
    """A daemon stand-in whose restarts take as long as the test lets them."""

    def __init__(self, loaded: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.loaded = loaded
        self.log = structlog.get_logger("test")
        self.loop = loop
        self.reload_hooks: list[Any] = []
        self.restarts: list[tuple[str, Reason]] = []
        self.release = asyncio.Event()
        self.refuse = False

    async def act(self, name: str, verb: str, reason: Reason = Reason.OPERATOR) -> list[Any]:
        self.restarts.append((name, reason))
        if self.refuse:
            raise Conflict("the supervisor is shutting down")
        await self.release.wait()
        self.release.clear()
        return []


def loaded(tmp_path: Path, globs: str = '["app/*.py"]') -> Any:
    path = tmp_path / "supervisor.toml"
    path.write_text(
        f'[programs.web]\ncommand = ["true"]\ncwd = "{tmp_path}"\nwatch = {globs}\n'
        '[programs.worker]\ncommand = ["true"]\ninstances = 2\nwatch = ["*.py"]\n'
        '[programs.plain]\ncommand = ["true"]\n'
    )
    return load(path, environ={})


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    async def no_thread(self: DevWatch, *args: object) -> None:
        await asyncio.Event().wait()  # stands in for watchfiles: the test calls changed() itself

    monkeypatch.setattr(DevWatch, "_watch", no_thread)
    (tmp_path / "app").mkdir()
    return tmp_path


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_one_watcher_per_program_instances_as_one_and_none_without_watch(host: Path) -> None:
    """web and worker (two instances) are watched, once each; a program without watch is not."""

    async def go() -> None:
        watch = DevWatch(Host(loaded(host), asyncio.get_running_loop()))  # type: ignore[arg-type]
        watch.start()
        assert sorted(watch.watched) == ["web", "worker"]
        watch.close()

    asyncio.run(go())


def test_batches_during_a_restart_coalesce_into_one_more_restart(host: Path) -> None:
    """Three batches while web restarts: one further restart, reason watch, and no more."""

    async def go() -> None:
        h = Host(loaded(host), asyncio.get_running_loop())
        watch = DevWatch(h)  # type: ignore[arg-type]
        watch.start()
        watch.changed("web", ["app/a.py"])
        await settle()
        for name in ("app/b.py", "app/c.py", "app/b.py"):
            watch.changed("web", [name])
        assert h.restarts == [("web", Reason.WATCH)]
        h.release.set()
        await settle()
        assert h.restarts == [("web", Reason.WATCH)] * 2
        h.release.set()
        await settle()
        assert len(h.restarts) == 2 and watch.watched["web"].restarting is not None
        assert watch.watched["web"].restarting.done()
        watch.close()

    asyncio.run(go())


def test_a_refused_restart_ends_quietly_and_a_reload_rearms_the_watch(host: Path) -> None:
    """A restart refused (shutting down) is logged, not raised; new globs after a reload replace the watcher."""

    async def go() -> None:
        h = Host(loaded(host), asyncio.get_running_loop())
        h.refuse = True
        watch = DevWatch(h)  # type: ignore[arg-type]
        watch.start()
        watch.changed("web", ["app/a.py"])
        await settle()
        assert watch.watched["web"].restarting is not None and watch.watched["web"].restarting.done()
        before = watch.watched["web"]
        programs = dict(h.loaded.config.programs)
        programs["web"] = replace(programs["web"], watch=["app/**/*.py"])
        del programs["plain"]
        h.loaded = SimpleNamespace(config=replace(h.loaded.config, programs=programs))
        for hook in h.reload_hooks:
            hook()
        assert watch.watched["web"] is not before and watch.watched["web"].spec[1] == ("app/**/*.py",)
        assert before.stop.is_set()
        watch.close()

    asyncio.run(go())
