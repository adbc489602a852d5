"""Children's output lines into the daemon's log, a whole read at a time.

Rendering each line as its own structlog event costs about 15 µs; a child at debug level
would then be throttled by its supervisor. The line event's shape never changes but for the
line and the time, so it is rendered once per program and stream by structlog's own
renderer, with placeholders, and each batch of lines is spliced into that template with
C-level string operations: one timestamp per read, one write per read.
"""

from __future__ import annotations

import datetime
import json.encoder
import re
from collections.abc import Callable
from typing import Any, Protocol

_LINE = "@@@LINE@@@"  # plain characters: neither renderer quotes or escapes them
_TIME = "@@@TIME@@@"
_ESCAPED = bytes([0x22, 0x5C, *range(0x00, 0x0A), *range(0x0B, 0x20)])  # what JSON escapes in ASCII, but \n
_QUOTE = re.compile("[ \t=\r\n\"'\x00-\x1f\x7f-\x9f]")  # console: the line is shown as repr()
# json.dumps' own C escaper (ensure_ascii), so the line reads as JSONRenderer writes it.
_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _now() -> str:
    # As structlog's TimeStamper(fmt="iso", utc=True) writes it.
    return datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z")


class BlockWriter(Protocol):
    """Where the rendered lines go (``LogWriter``)."""

    def write_block(self, data: bytes, lines: int) -> None:
        """Take ``lines`` whole lines at once."""
        ...


class OutputSink:
    """Writes ``program.output`` events for many lines at once, exactly as structlog would render each."""

    def __init__(self, writer: BlockWriter, renderer: Callable[..., Any], json_format: bool, enabled: bool) -> None:
        self._writer = writer
        self._renderer = renderer
        self._json = json_format
        self._enabled = enabled  # the log level lets info through
        self._templates: dict[tuple[str, str], str] = {}

    def _template(self, unit: str, stream: str) -> str:
        event = {"program": unit, "stream": stream, "line": _LINE, "event": "program.output"}
        event.update(level="info", timestamp=_TIME)
        rendered = str(self._renderer(None, "info", event))
        # JSON quotes the placeholder, the console does not: either way it becomes the encoded line.
        template = rendered.replace(f'"{_LINE}"', _LINE) if f'"{_LINE}"' in rendered else rendered
        self._templates[(unit, stream)] = template
        return template

    def write(self, unit: str, stream: str, lines: list[str]) -> None:
        """Log ``lines`` of ``unit``'s ``stream``, as one write."""
        if not self._enabled or not lines:
            return
        template = self._templates.get((unit, stream)) or self._template(unit, stream)
        pre, _, post = template.replace(_TIME, _now()).partition(_LINE)
        post += "\n"
        joined = "\n".join(lines) if self._json else ""
        data = joined.encode() if self._json and joined.isascii() else b""
        if data and len(data.translate(None, _ESCAPED)) == len(data):
            # Nothing to escape (the usual read): the JSON string of each line is the line in
            # quotes, so the read's bytes are spliced as they are.
            head, tail = (pre + '"').encode(), ('"' + post).encode()
            self._writer.write_block(head + data.replace(b"\n", tail + head) + tail, len(lines))
            return
        if self._json and "\\" not in joined:
            # One C call escapes the whole read: each escaped newline between two lines becomes
            # the end of one event and the start of the next (without a backslash in the text,
            # an escaped newline cannot be mistaken for an escaped backslash followed by "n").
            body = _json_str(joined).replace("\\n", '"' + post + pre + '"')
        elif self._json:
            body = (post + pre).join(map(_json_str, lines))
        else:
            # The console shows a line as repr() when it needs quoting: one C-level search a line
            # rather than a Python call a line.
            quoted = [
                repr(line) if found else line for line, found in zip(lines, map(_QUOTE.search, lines), strict=True)
            ]
            body = (post + pre).join(quoted)
        text = pre + body + post
        self._writer.write_block(text.encode(errors="replace"), len(lines))
