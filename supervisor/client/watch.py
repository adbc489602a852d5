"""``supervisor status --watch``: the status table, redrawn in place, with what changed marked.

Standard library only, plain ANSI rather than curses: curses needs a terminfo entry that
minimal containers lack, and it takes over input and the whole screen. Here every frame moves
the cursor home and overwrites each line, clearing only what is left of it (``ESC[K``) and
below the table (``ESC[J``), so nothing is blanked between frames and nothing flickers. The
alternate screen keeps the operator's scrollback, and it is left on every way out.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TextIO, cast

from supervisor.client.api import Client, Unreachable
from supervisor.client.safe import escape_doc
from supervisor.machine.instances import select as select_units
from supervisor.machine.status import StatusDocument, table_rows

# The columns a change is marked in, by index in the table: STATE, PID, RESTARTS, HEALTH.
MARKED = {"state": 2, "pid": 3, "restarts": 5, "health": 6}
ENTER, LEAVE = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"
HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
MARK_ON, MARK_OFF = "\x1b[1;7m", "\x1b[0m"


def changes(before: Mapping[str, Mapping[str, Any]] | None, units: Sequence[Mapping[str, Any]]) -> dict[str, set[int]]:
    """Return, per unit, the table columns whose value changed since the last frame.

    A unit that is new since the last frame has its state marked; restarts are marked only
    when they went up. Nothing is marked on the first frame.
    """
    if before is None:
        return {}
    out: dict[str, set[int]] = {}
    for unit in units:
        old = before.get(unit["name"])
        if old is None:
            out[unit["name"]] = {MARKED["state"]}
            continue
        cols = set()
        for key, col in MARKED.items():
            new_value, old_value = unit.get(key), old.get(key)
            if key == "restarts":
                if (new_value or 0) > (old_value or 0):
                    cols.add(col)
            elif new_value != old_value:
                cols.add(col)
        if cols:
            out[unit["name"]] = cols
    return out


def header(doc: StatusDocument, interval_s: float) -> str:
    """Return the frame's first line: uptime, readiness and the units counted by state."""
    from supervisor.machine.durations import format_duration

    sup = doc.get("supervisor") or {}
    counts = Counter(str(u.get("state")) for u in doc.get("units", []))
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return (
        f"supervisor pid {sup.get('pid', '?')} {sup.get('state', '?')}, up {format_duration(sup.get('uptime_s'))}, "
        f"ready={'yes' if sup.get('ready') else 'no'} | {by_state or 'no units'} | every {interval_s:g}s, "
        f"{time.strftime('%H:%M:%S')}"
    )


def frame(doc: StatusDocument, marks: dict[str, set[int]], interval_s: float, ansi: bool, cols: int) -> list[str]:
    """Render one frame: the header, then the table with changed cells marked.

    On a terminal a changed cell is shown in reverse video; without one, it gets a ``*``.
    Lines are cut to ``cols`` visible characters.
    """
    rows = table_rows(doc)
    names = [r[0] for r in rows]
    cells = [
        [c + ("*" if not ansi and i in marks.get(names[n], ()) and n else "") for i, c in enumerate(r)]
        for n, r in enumerate(rows)
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = [header(doc, interval_s)[:cols]]
    for n, row in enumerate(cells):
        text, visible = "", 0
        for i, cell in enumerate(row):
            padded = (cell.ljust(widths[i]) + "  ") if i < len(row) - 1 else cell
            room = cols - visible
            if room <= 0:
                break
            shown = padded[:room]
            visible += len(shown)
            if ansi and n and i in marks.get(names[n], ()):
                core = shown.rstrip()
                text += MARK_ON + core + MARK_OFF + shown[len(core) :]
            else:
                text += shown
        lines.append(text.rstrip())
    if not ansi and any(marks.values()):
        lines.append("(* changed since the last table)")
    return lines


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Screen:
    """The terminal in the alternate screen, with a wake-up pipe for resizes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.old_wakeup = signal.set_wakeup_fd(self.write_fd)
        self.old_winch = signal.signal(signal.SIGWINCH, lambda signum, frame: None)
        self.old_term = signal.signal(signal.SIGTERM, _interrupt)  # leave the screen as we found it
        out.write(ENTER)
        out.flush()

    def size(self) -> os.terminal_size:
        """Return the terminal's size now (it may have been resized)."""
        try:
            size = os.get_terminal_size(self.out.fileno())
        except OSError:
            return os.terminal_size((100, 40))
        # A pseudo-terminal nobody sized (script, some CI runners) says 0x0: draw as if 100x40.
        return os.terminal_size((size.columns or 100, size.lines or 40))

    def draw(self, lines: list[str]) -> None:
        """Overwrite the screen from the top, line by line, and clear what is left below."""
        rows = self.size().lines
        if len(lines) > rows:
            lines = [*lines[: rows - 1], f"... {len(lines) - rows + 1} more (enlarge the terminal)"]
        self.out.write(HOME + "".join(f"{line}{CLEAR_LINE}\r\n" for line in lines[:-1]) + lines[-1] + CLEAR_LINE)
        self.out.write(CLEAR_BELOW)
        self.out.flush()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; return True when a resize woke us early."""
        ready, _, _ = select.select([self.read_fd], [], [], max(0.0, timeout_s))
        if ready:
            os.read(self.read_fd, 512)
            return True
        return False

    def close(self) -> None:
        """Leave the alternate screen, show the cursor, and put the signal handling back."""
        self.out.write(LEAVE)
        self.out.flush()
        signal.signal(signal.SIGWINCH, self.old_winch)
        signal.signal(signal.SIGTERM, self.old_term)
        signal.set_wakeup_fd(self.old_wakeup)
        os.close(self.read_fd)
        os.close(self.write_fd)


def _fetch(client: Client, names: list[str]) -> StatusDocument:
    code, doc = client.request("GET", "/v1/status?rss=0")  # CPU and MEM: the background sample's
    if code != 200:
        raise Unreachable(f"the supervisor answered {code}: {doc.get('error') if isinstance(doc, dict) else doc}")
    if names:  # a program with instances stands for them all, those a scale adds too
        chosen, unknown = select_units(names, [u["name"] for u in doc["units"]])
        if unknown:
            raise LookupError(f"no unit named {', '.join(sorted(unknown))}")
        doc["units"] = [u for u in doc["units"] if u["name"] in chosen]
    return cast(StatusDocument, escape_doc(dict(doc)))  # a child's text, drawn on a terminal


def watch(client: Client, interval_s: float, names: list[str], out: TextIO = sys.stdout) -> int:
    """Show the table every ``interval_s`` until Ctrl-C (exit 0) or until the daemon goes (exit 3)."""
    interval_s = max(0.1, interval_s)
    try:
        doc = _fetch(client, names)  # unreachable at once: the usual message, exit 3
    except LookupError as exc:
        print(f"supervisor: {exc}", file=sys.stderr)
        return 1
    ansi = out.isatty()
    screen = _Screen(out) if ansi else None
    before: dict[str, Mapping[str, Any]] | None = None
    went_away: str | None = None
    next_at = time.monotonic()
    try:
        while True:
            marks = changes(before, doc["units"])
            before = {u["name"]: u for u in doc["units"]}
            while True:
                if screen is not None:
                    screen.draw(frame(doc, marks, interval_s, True, screen.size().columns))
                    resized = screen.wait(next_at + interval_s - time.monotonic())
                else:
                    out.write("\n".join(frame(doc, marks, interval_s, False, 10_000)) + "\n\n")
                    out.flush()
                    time.sleep(max(0.0, next_at + interval_s - time.monotonic()))
                    resized = False
                if not resized:
                    break  # a resize redraws the same frame at the new size; the interval goes on
            next_at = max(next_at + interval_s, time.monotonic() - interval_s)
            try:
                doc = _fetch(client, names)
            except LookupError:
                continue  # a reload removed a unit that was asked for: keep the last table
            except Unreachable as exc:
                went_away = str(exc).splitlines()[0]
                break
    except KeyboardInterrupt:
        pass
    finally:
        if screen is not None:
            screen.close()
        client.close()
    if went_away is not None:
        print(f"supervisor: the supervisor went away: {went_away}", file=sys.stderr)
        return 3
    return 0
