"""Signals the supervisor does not act on, caught so that their default action cannot end it.

SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF and SIGPWR end a process that does not handle
them. An operator used to gunicorn (``kill -USR1`` reopens its logs) or supervisord
(``kill -USR2``) who sent one to the supervisor would take every program down with it. Each is
caught and logged with a hint instead (in a container's PID 1 the kernel would drop them anyway).
Caught, not ignored: an ignored disposition would survive ``exec`` into the programs (whose
dispositions are reset at spawn all the same).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from supervisor.machine.events import signal_name
from supervisor.machine.quiet import Quiet

if TYPE_CHECKING:  # imported by `run` before asyncio may be (supervisor.host.tls): not at run time
    import asyncio

STRAY_SIGNALS = (
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGPWR,
)
HINT = "the supervisor stops on TERM, INT or QUIT and reloads on HUP; to signal a program: supervisor signal NAME USR1"
QUIET_S = 10.0  # one line per signal at most this often: a storm of them is one line, with a count


def _drop(signum: int, frame: FrameType | None) -> None:
    """Before the loop runs, a stray signal is dropped without a word (there is no log yet)."""


def shield() -> None:
    """Catch the stray signals from the very start of ``run``: loading the file takes a moment."""
    for sig in STRAY_SIGNALS:
        signal.signal(sig, _drop)


class StraySignals:
    """Once the loop runs: each stray signal is logged, at most once per ``QUIET_S`` per signal."""

    def __init__(self, log: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.quiet: Quiet[int] = Quiet(QUIET_S, clock)  # by signal
        self.received = self.quiet.seen  # since start, by signal

    def listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take the stray signals over from ``shield`` (asyncio's handlers run in the loop)."""
        for sig in STRAY_SIGNALS:
            loop.add_signal_handler(sig, self.receive, sig)

    def receive(self, sig: int) -> None:
        """Count one; say so unless this signal was already said within ``QUIET_S``."""
        if times := self.quiet.count(sig):
            self.log.warning("supervisor.signal_ignored", signal=signal_name(sig), times=times, hint=HINT)
