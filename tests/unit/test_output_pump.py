"""The output pump and the bulk log sink: whole lines, cut at 16 KiB, rendered as structlog renders them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator

import pytest
import structlog

from supervisor.host import logs
from supervisor.host.output import CUT, OutputPump
from supervisor.host.outputlog import OutputSink


class Sink:
    """A ``LogWriter`` stand-in that keeps what it was given."""

    def __init__(self) -> None:
        self.blocks: list[bytes] = []

    def write_block(self, data: bytes, lines: int) -> None:
        """Keep one block."""
        assert data.count(b"\n") == lines
        self.blocks.append(data)


def pump(chunks: list[bytes], max_line: int = 16384) -> list[str]:
    """Feed ``chunks`` through a real pipe into a pump; return the lines it handed on."""
    loop = asyncio.new_event_loop()
    r, w = os.pipe()
    got: list[str] = []
    try:
        p = OutputPump(loop, r, got.extend, max_line=max_line)
        for chunk in chunks:
            os.write(w, chunk)
            p._readable()
        os.close(w)
        p.close()
    finally:
        loop.close()
    return got


def test_lines_split_across_reads_come_out_whole() -> None:
    """A line that arrives in pieces is handed on once, whole; a carriage return before the newline goes."""
    assert pump([b"one\ntw", b"o\r\nthr", b"ee"]) == ["one", "two", "three"]


def test_a_line_over_16_kib_is_cut_and_the_next_line_is_intact() -> None:
    """A 40 KiB line is cut to 16 KiB with a mark, within one read or across many; the line after it is whole."""
    long = b"x" * 40_000
    for chunks in ([long + b"\nnext\n"], [long[:10_000], long[10_000:30_000], long[30_000:] + b"\nnext\n"]):
        lines = pump(chunks)
        assert lines[0] == "x" * 16384 + CUT.decode()
        assert lines[-1] == "next"
        assert all(len(line) <= 16384 + len(CUT) for line in lines)


def test_a_long_line_of_multibyte_characters_is_cut_by_bytes() -> None:
    """The bound is in bytes: 6,000 three-byte characters (18,000 bytes) are cut too."""
    lines = pump([("€" * 6000 + "\nok\n").encode()])
    assert len(lines[0].encode(errors="replace")) <= 16384 + len(CUT) + 3
    assert lines[0].endswith(CUT.decode()) and lines[-1] == "ok"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """These tests configure structlog and the root logger: put both back afterwards."""
    saved, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers


def render(fmt: str, lines: list[str]) -> tuple[list[str], list[str]]:
    """The lines as the bulk sink writes them, and as structlog writes each event."""
    stream = io.StringIO()
    writer = logs.configure(fmt, "info", stream=stream)
    for line in lines:
        logs.get("output").info("program.output", program="web", stream="stdout", line=line)
    one_by_one = stream.getvalue().splitlines()
    sink = Sink()
    assert writer.sink is not None
    OutputSink(sink, structlog.get_config()["processors"][-1], fmt == "json", True).write("web", "stdout", lines)
    return b"".join(sink.blocks).decode().splitlines(), one_by_one


def _untimed(text: str) -> str:
    return text[text.index(" ") :] if text[:4].isdigit() else json.dumps({**json.loads(text), "timestamp": ""})


def test_the_bulk_sink_writes_what_structlog_writes() -> None:
    """JSON and console: quotes, backslashes, escapes, non-ASCII and empty lines come out as one event each would."""
    lines = ['a "q"', "back\\nslash", "\x1b[2J title", "é ü", "", "plain", "tab\there", "it's"]
    for fmt in ("json", "console"):
        bulk, each = render(fmt, lines)
        assert [_untimed(x) for x in bulk] == [_untimed(x) for x in each], fmt
    bulk, _ = render("json", lines)
    assert [json.loads(x)["line"] for x in bulk] == lines
    plain = ["plain", "", "a b=c it's {} []", "\x7f"]  # nothing JSON escapes: the bytes are spliced as they are
    bulk, each = render("json", plain)
    assert [_untimed(x) for x in bulk] == [_untimed(x) for x in each]


def test_below_info_level_nothing_is_rendered() -> None:
    """log_level = "warning": children's lines stay out of the log (as structlog's filter did)."""
    sink = Sink()
    OutputSink(sink, structlog.processors.JSONRenderer(), True, False).write("web", "stdout", ["x"])
    assert sink.blocks == []
