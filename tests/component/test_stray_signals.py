"""Signals the supervisor does not act on (USR1, USR2, ALRM...) are logged, never the end of it."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

from supervisor.host.stray import STRAY_SIGNALS
from tests.conftest import PY, Daemon, program


def _caught_or_ignored(pid: int) -> tuple[int, int]:
    """The masks of signals ``pid`` catches and ignores, from /proc."""
    text = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return int(fields["SigCgt"], 16), int(fields["SigIgn"], 16)


def test_each_stray_signal_is_logged_and_the_daemon_and_its_program_go_on(run_daemon: Callable[..., Daemon]) -> None:
    """kill -USR1 (gunicorn's log reopen) and its kind: the daemon answers, logs each once, its program runs on."""
    d = run_daemon(
        f"""
[programs.sleeper]
command = {program("sleeper")}
"""
    )
    pid = d.wait_unit("sleeper", state="running")["pid"]
    for sig in STRAY_SIGNALS:
        for _ in range(20):  # a storm is one line
            os.kill(d.proc.pid, sig)
    for sig in STRAY_SIGNALS:
        name = signal.Signals(sig).name
        event = d.wait_event("supervisor.signal_ignored", signal=name)
        assert "supervisor signal NAME USR1" in event["hint"], event
        assert len(d.events("supervisor.signal_ignored", signal=name)) == 1, d.tail()
    assert d.proc.poll() is None and d.unit("sleeper")["pid"] == pid
    # Caught by the daemon, never ignored: its programs get every one at its default.
    caught, ignored = _caught_or_ignored(d.proc.pid)
    mask = sum(1 << (sig - 1) for sig in STRAY_SIGNALS)
    assert caught & mask == mask and not ignored & mask
    assert not _caught_or_ignored(pid)[1] & mask
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0, d.tail()


# `run` as far as its first look at the file: the file's loading is replaced by a report of
# what SIGUSR1 does at that moment, and a USR1 sent to itself then.
BEFORE_THE_FILE = textwrap.dedent(
    """
    import os, signal, sys
    from supervisor import cli
    from supervisor.config import compiled
    from supervisor.host import stray

    def cached(path, environ=os.environ):
        os.kill(os.getpid(), signal.SIGUSR1)
        print("caught" if signal.getsignal(signal.SIGUSR1) is stray._drop else "default", flush=True)
        sys.exit(0)

    compiled.cached = cached
    cli.main(["run", "--config", sys.argv[1]])
    """
)


def test_a_stray_signal_before_run_reads_its_file_is_dropped(tmp_path: Path) -> None:
    """From the moment `run` parses its arguments, before its loop exists, USR1 no longer ends it."""
    config = tmp_path / "supervisor.toml"
    config.write_text(f"[programs.sleeper]\ncommand = {program('sleeper')}\n")
    proc = subprocess.run([PY, "-c", BEFORE_THE_FILE, str(config)], capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout) == (0, "caught\n"), proc.stderr[-2000:]
