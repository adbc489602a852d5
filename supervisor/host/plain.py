"""Start-up events in plain words for console logs, and addresses without their credentials.

The JSON log keeps stable dotted event names and fields only. On a console, the events that
tell the start-up story also get a sentence, as the old ``entrypoint.sh`` printed
(``[entrypoint] Waiting for Postgres at db:5432...``). Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

SENTENCES = {
    "supervisor.starting": "Starting the supervisor (pid {pid}) with {config}",
    "dependency.waiting": "Waiting for {dependency} at {address}...",
    "dependency.not_ready": "{dependency} at {address} is not ready yet: {error}",
    "dependency.ready": "{dependency} is up at {address}",
    "dependency.timed_out": "Gave up waiting for {dependency} at {address}: {error}",
    "job.revisions": "Database revision {current}, scripts at {heads}",
    "job.lock_acquired": "Took the migration lock",
    "job.started": "Running {job}: {command}",
    "job.skipped": "Skipping {job}: {why}",
    "job.succeeded": "{job} succeeded",
    "job.failed": "{job} failed",
    "program.started": "Started {program} (pid {pid})",
    "supervisor.ready": "All programs are up",
}


def address(kind: str, url: str) -> str:
    """Return ``host:port`` (and the database or path) of a dependency, never its password."""
    if kind == "postgres" and not url:
        # libpq's own variables, as the probe will use them
        return f"{os.environ.get('PGHOST') or 'localhost'}:{os.environ.get('PGPORT') or 5432}"
    if "://" not in url:
        return url  # tcp's host:port
    try:
        parts = urlsplit(url)
        host = parts.hostname or parts.path or "localhost"
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    where = f"{host}:{port}" if port else host
    path = parts.path if parts.hostname and parts.path not in ("", "/") else ""
    return where + path


def add_sentence(logger: object, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: put the plain sentence of a start-up event after its name."""
    template = SENTENCES.get(str(event_dict.get("event")))
    if template is not None:
        values = {k: (" ".join(map(str, v)) if isinstance(v, list | tuple) else v) for k, v in event_dict.items()}
        try:
            event_dict["event"] = f"{event_dict['event']}: {template.format_map(values)}"
        except (KeyError, ValueError, IndexError):
            pass  # a field is missing: the name and the fields still say it all
    return event_dict
