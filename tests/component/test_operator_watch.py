"""`supervisor status --watch` over a real daemon: under a pseudo-terminal, and through a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import threading
import time

from tests.conftest import PY, program, wait_until

TWO = f"""
[programs.alpha]
command = {program("sleeper")}
min_uptime = 0
[programs.beta]
command = {program("sleeper")}
min_uptime = 0
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A child process whose stdout is a pseudo-terminal that the test reads."""

    def __init__(self, argv: list[str], cols: int = 120, rows: int = 30) -> None:
        self.master, slave = pty.openpty()
        self.resize(cols, rows)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        self.output = ""

    def resize(self, cols: int, rows: int) -> None:
        """Set the terminal's size, as a terminal emulator does on a resize."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read(self, until: str, timeout: float = 15) -> str:
        """Read until ``until`` appears after what was read before; return what came since."""
        start = len(self.output)
        deadline = time.monotonic() + timeout
        while until not in self.output[start:]:
            left = deadline - time.monotonic()
            assert left > 0, f"no {until!r} on the terminal; got {self.output[start:][-400:]!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.output += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
        return self.output[start:]

    def close(self) -> None:
        """Make sure the child is gone and the terminal closed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_watch_on_a_terminal_redraws_in_place_marks_changes_and_restores_the_screen(run_daemon) -> None:
    """On a pty: alternate screen, in-place frames, the new pid marked, resize-aware, Ctrl-C exits 0 restored."""
    d = run_daemon(TWO)
    d.wait_ready()
    term = Terminal([PY, "-m", "supervisor", "status", "--watch", "--interval", "0.3", "--socket", d.socket])
    try:
        first = term.read("beta")
        assert first.startswith("\x1b[?1049h\x1b[?25l")  # the alternate screen, cursor hidden
        assert "\x1b[2J" not in term.output  # frames overwrite in place: no full clear, no flicker
        header = ANSI.sub("", term.read("\x1b[H")).splitlines()
        old = d.unit("alpha")["pid"]
        restarted = subprocess.run(
            [PY, "-m", "supervisor", "restart", "alpha", "--socket", d.socket], capture_output=True, timeout=30
        )
        assert restarted.returncode == 0
        new = d.unit("alpha")["pid"]
        assert new != old
        marked = term.read(f"\x1b[1;7m{new}")  # the new pid, in reverse video
        assert f"\x1b[1;7m{new}" in marked
        calm = term.read("\x1b[H") + term.read("\x1b[H")  # a frame later, nothing is marked any more
        assert "\x1b[1;7m" not in calm.rsplit("\x1b[H", 2)[-2]
        assert any("ready=yes" in line and "2 running" in line for line in header), header
        term.resize(40, 30)
        term.proc.send_signal(signal.SIGWINCH)
        narrow = term.read("\x1b[H") + term.read("\x1b[J")
        frame = narrow.rsplit("\x1b[H", 1)[-1]
        lines = [ANSI.sub("", line).rstrip("\r") for line in frame.split("\n")]
        assert lines and all(len(line) <= 40 for line in lines), lines
        term.proc.send_signal(signal.SIGINT)
        assert term.proc.wait(10) == 0
        assert term.read("\x1b[?1049l").endswith("\x1b[?25h\x1b[?1049l")  # cursor back, screen restored
    finally:
        term.close()


def test_watch_through_a_pipe_prints_one_table_per_interval_and_stars_changes(run_daemon) -> None:
    """Without a terminal: plain tables, no escape codes, a changed pid starred; exit 3 when the daemon goes."""
    d = run_daemon(TWO)
    d.wait_ready()
    ghost = [PY, "-m", "supervisor", "status", "--watch", "ghost", "--socket", d.socket]
    unknown = subprocess.run(ghost, capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 1 and "no unit named ghost" in unknown.stderr
    both = subprocess.run([*ghost[:5], "--json", "--socket", d.socket], capture_output=True, text=True, timeout=30)
    assert both.returncode == 2 and "--json and --quiet go without it" in both.stderr
    proc = subprocess.Popen(
        [PY, "-m", "supervisor", "status", "--watch", "--interval", "0.3", "--socket", d.socket],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        wait_until(lambda: sum(line.startswith("NAME") for line in out) >= 2, 15, "two tables", seen=lambda: out)
        assert not any("\x1b" in line for line in out)
        old = d.unit("beta")["pid"]
        subprocess.run([PY, "-m", "supervisor", "restart", "beta", "--socket", d.socket], timeout=30, check=True)
        new = d.unit("beta")["pid"]
        assert new != old
        starred = wait_until(
            lambda: next((line for line in out if line.startswith("beta") and f"{new}*" in line), None),
            15,
            "the new pid starred",
            seen=lambda: out[-8:],
        )
        assert " 1* " in starred  # the restart count went up, and is starred too
        d.stop()
        assert proc.wait(15) == 3
        assert proc.stderr is not None and "the supervisor went away" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_watch_on_a_terminal_that_reports_no_size_draws_the_table(run_daemon) -> None:
    """A pseudo-terminal nobody sized (0x0, as under `script`) gets the table, not only blank lines."""
    d = run_daemon(TWO)
    d.wait_ready()
    term = Terminal([PY, "-m", "supervisor", "status", "--watch", "--interval", "0.3", "--socket", d.socket], 0, 0)
    try:
        frame = ANSI.sub("", term.read("beta"))
        assert "alpha" in frame and "enlarge the terminal" not in frame
    finally:
        term.close()
