"""One structlog setup for our events and for library logs: JSON lines off a TTY."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from supervisor.host.logwriter import LogWriter
from supervisor.host.outputlog import OutputSink
from supervisor.host.plain import add_sentence

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> LogWriter:
    """Send every event, ours and the standard library's, to ``stream`` as JSON or console lines.

    Returns the writer, which never blocks on a slow reader and counts what it had to drop.
    """
    out = LogWriter(stream or sys.stdout)
    out.on_resumed = lambda lost: get().warning(
        "log.dropped", lines=lost, total=out.dropped_total, why=out.last_error or "the reader fell behind"
    )
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False)
        shared.append(add_sentence)  # console only: the start-up story in plain words
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # Library logs (psycopg, asyncio) go through the same renderer.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    out.sink = OutputSink(out, renderer, use_json, _LEVELS[level] <= logging.INFO)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(_LEVELS[level], logging.WARNING))
    return out


def get(name: str = "supervisor") -> Any:
    """Return a bound logger."""
    return structlog.get_logger(name)
