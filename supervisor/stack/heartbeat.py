"""Celery liveness at near-zero cost: a heartbeat file kept fresh by a worker and by beat.

``celery inspect ping`` costs seconds of CPU per probe and beat answers no
ping at all. Instead, call ``install(app)`` in the module that defines the
Celery app; the worker touches the file from its own event loop's timer (and
on every heartbeat it sends), beat on every scheduler tick. A hung or
SIGSTOPped process stops touching it, and a ``file`` health check with
``max_age`` notices::

    [programs.worker]
    environment = { SUPERVISOR_HEARTBEAT_FILE = "/tmp/worker.heartbeat" }
    health = { file = "/tmp/worker.heartbeat", max_age = "30s" }
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_VAR = "SUPERVISOR_HEARTBEAT_FILE"


def touch(path: str) -> None:
    """Set the file's mtime to now, creating it if needed."""
    try:
        os.utime(path)
    except FileNotFoundError:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).touch()


def install(app: Any, path: str | None = None, interval_s: float = 5.0) -> bool:
    """Keep ``path`` (default ``$SUPERVISOR_HEARTBEAT_FILE``) fresh; return whether it is on."""
    from celery import bootsteps, signals

    found = path or os.environ.get(ENV_VAR)
    if not found:
        return False
    target: str = found

    class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
        """Touches the file from the worker's own timer: it stops when the worker's loop stops."""

        requires = {"celery.worker.components:Timer"}

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.tref: Any = None

        def start(self, worker: Any) -> None:
            touch(target)
            self.tref = worker.timer.call_repeatedly(interval_s, touch, (target,), priority=10)

        def stop(self, worker: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()

    app.steps["worker"].add(Heartbeat)

    def on_heartbeat(**_: Any) -> None:
        touch(target)

    signals.heartbeat_sent.connect(on_heartbeat, weak=False)

    # Beat sleeps until the next due task, up to beat_max_loop_interval: tick at least this often.
    current = app.conf.beat_max_loop_interval or 300
    app.conf.beat_max_loop_interval = min(current, interval_s)

    def on_beat_init(sender: Any, **_: Any) -> None:
        scheduler = sender.scheduler
        original = scheduler.tick

        def tick(*args: Any, **kwargs: Any) -> Any:
            touch(target)
            return original(*args, **kwargs)

        scheduler.tick = tick
        touch(target)

    signals.beat_init.connect(on_beat_init, weak=False)
    return True
