"""Drain before stop: between SIGTERM and the shutdown, not ready, while the programs keep serving.

A load balancer (Kubernetes' endpoints, an HAProxy health check) needs a few seconds to stop
sending a replica requests once its ``/readyz`` fails or its pod is terminating. For
``[supervisor] drain`` after SIGTERM the daemon says it is leaving (``/readyz`` 503,
``STATUS=draining``) and stops nothing; then the shutdown begins. A second SIGTERM, or a program
giving up, ends the wait early.
"""

from __future__ import annotations

import asyncio
from typing import Any

from supervisor.host.systemd import Notifier
from supervisor.machine.clock import Handle, Scheduler


class Drain:
    """The wait between SIGTERM and the shutdown, cut short by ``skip``."""

    def __init__(self, clock: Scheduler, log: Any, notifier: Notifier) -> None:
        self.clock = clock
        self.log = log
        self.notifier = notifier
        self._over: asyncio.Event | None = None  # set once the drain is over (or never began)
        self._timer: Handle | None = None
        self._began_at = 0.0
        self._skipped: str | None = None

    @property
    def active(self) -> bool:
        """Return whether a drain has begun and is not over."""
        return self._over is not None and not self._over.is_set()

    def begin(self, seconds: float) -> None:
        """Start draining for ``seconds``: say so to the log and the service manager."""
        self._over = asyncio.Event()
        self._began_at = self.clock.now()
        self._timer = self.clock.call_later(seconds, self._over.set)
        self.notifier.send(status="draining")
        self.log.info(
            "supervisor.draining",
            drain_s=seconds,
            next="not ready; programs serve until the drain is over, then stop (a second SIGTERM stops now)",
        )

    def skip(self, why: str) -> None:
        """End the drain now (a second signal, a program that gave up)."""
        if self._over is None or self._over.is_set():
            return
        self._skipped = why
        if self._timer is not None:
            self._timer.cancel()
        self._over.set()

    async def wait(self) -> None:
        """Return once the drain is over; at once when none began."""
        if self._over is None:
            return
        await self._over.wait()
        after = round(self.clock.now() - self._began_at, 3)
        if self._skipped is not None:
            self.log.info("supervisor.drain_skipped", after_s=after, why=self._skipped, next="stopping")
        else:
            self.log.info("supervisor.drained", after_s=after, next="stopping")
