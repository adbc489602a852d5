"""A program's last words: the stack of a hung Python program before its SIGKILL, and OOM kills named.

**Stack dumps.** Every program runs with ``PYTHONFAULTHANDLER=1`` (unless ``stack_dump =
false``): on SIGABRT, Python's faulthandler writes the traceback of every thread to stderr from
a C signal handler, so it works in a busy loop, in ``time.sleep`` and in a C call that holds
the GIL alike. Before the supervisor SIGKILLs a program (a failed health check, a start that
timed out, any stop ladder that ran out), it sends SIGABRT to every process of its tree (a
Celery pool process or a web worker that hangs is a child of the main process), one at a time
``STAGGER_S`` apart, children first and the main process last, so that their stacks do not
interleave on the shared pipe. It waits up to ``DUMP_WAIT_S`` for the main process to exit,
and ``SETTLE_S`` more for the last lines, collecting stderr meanwhile; the lines become one
``program.stack_dump`` event, and ``supervisor logs NAME`` shows them. Then the SIGKILL goes to
the group as before. A program that closed its stderr gives an empty dump, and the event says
so; the kill goes on either way.

**OOM kills.** A main process that dies of a SIGKILL the supervisor did not send, while the
kernel's ``oom_kill`` counters went up (``supervisor.stack.oom``), was taken by the OOM killer:
its exit is marked so, and the state machine records reason ``oom``.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from typing import Any

from supervisor.host import proctree
from supervisor.machine.clock import Handle, Scheduler
from supervisor.machine.events import ExitStatus

DUMP_WAIT_S = 2.0
SETTLE_S = 0.3  # after the main process exits, for the last stacks to reach the pipe
STAGGER_S = 0.1  # between two processes' SIGABRT (less when there are more than ten)
EMPTY_HINT = "nothing on stderr: it closed its stderr, or it is not a Python program"


@dataclasses.dataclass
class _Dump:
    pid: int
    reason: str
    lines: list[str]
    timer: Handle


class LastWords:
    """The stack dumps under way for one program's processes, and its OOM verdicts."""

    def __init__(
        self,
        clock: Scheduler,
        signal_pid: Callable[[int, int, bool], bool],
        kill_tree: Callable[[int], None],
        log: Any,
        note: Callable[[list[str]], None],
        oom_killed: Callable[[], bool | None],
        descendants: Callable[[int], list[int]] = proctree.descendants,
    ) -> None:
        self.clock = clock
        self.signal_pid = signal_pid
        self.kill_tree = kill_tree
        self.log = log
        self.note = note  # adds lines to the program's log buffer (`supervisor logs NAME`)
        self.oom_killed = oom_killed
        self.descendants = descendants
        self.dumping: dict[int, _Dump] = {}
        self.killing: set[int] = set()  # pids the supervisor SIGKILLs: their SIGKILL is not the OOM killer's

    def kill(self, pid: int, reason: str, stack_dump: bool) -> None:
        """SIGKILL ``pid``'s tree; with ``stack_dump``, SIGABRT first and up to ``DUMP_WAIT_S`` for its stack."""
        if pid in self.dumping:
            return  # a dump is under way: its timer kills
        self.killing.add(pid)
        if not stack_dump or not self.signal_pid(pid, signal.SIGCONT, True):  # a stopped one could not write
            self.kill_tree(pid)
            return
        # The whole tree: a hung Celery pool process or web worker is a child of the main process.
        # One at a time, children first: stacks written at once to the one pipe would interleave.
        others = self.descendants(pid)
        gap = min(STAGGER_S, 1.0 / max(1, len(others)))
        for i, child in enumerate(others):
            self.clock.call_later(i * gap, self.signal_pid, child, signal.SIGABRT, False)
        self.clock.call_later(len(others) * gap, self.signal_pid, pid, signal.SIGABRT, False)
        timer = self.clock.call_later(len(others) * gap + DUMP_WAIT_S, self._timed_out, pid)
        self.dumping[pid] = _Dump(pid, reason, [], timer)

    def lines(self, pid: int, stream: str, lines: list[str]) -> None:
        """Take lines a process printed; its stderr during a dump is the dump."""
        dump = self.dumping.get(pid)
        if dump is not None and stream == "stderr":
            dump.lines.extend(lines)

    def exited(self, pid: int, status: ExitStatus, alive: bool) -> ExitStatus:
        """A process was reaped (its output drained): finish its dump; name an OOM kill of a live program."""
        dump = self.dumping.pop(pid, None)
        if dump is not None:
            dump.timer.cancel()
            self._report(dump, exited=True)
        killed_by_us = pid in self.killing
        self.killing.discard(pid)
        oom = self.oom_killed()  # read at every exit, so that the next one compares with now
        if status.signal == signal.SIGKILL and alive and not killed_by_us:
            return dataclasses.replace(status, oom=oom)
        return status

    def _timed_out(self, pid: int) -> None:
        dump = self.dumping.pop(pid, None)
        if dump is not None:
            self._report(dump, exited=False)
            self.kill_tree(pid)

    def _report(self, dump: _Dump, exited: bool) -> None:
        fields: dict[str, object] = {"pid": dump.pid, "reason": dump.reason, "traceback": dump.lines}
        if not dump.lines:
            fields["hint"] = EMPTY_HINT
        if not exited:
            fields["next"] = f"still alive {DUMP_WAIT_S:g}s after SIGABRT: SIGKILL"
        self.log.warning("program.stack_dump", **fields)
        summary = f"{len(dump.lines)} lines of stderr after SIGABRT" if dump.lines else EMPTY_HINT
        self.note([f"program.stack_dump pid={dump.pid} reason={dump.reason}: {summary}"])

    def close(self) -> None:
        """Cancel the dumps' timers (the processes are gone)."""
        for dump in self.dumping.values():
            dump.timer.cancel()
        self.dumping.clear()
