"""The client commands ``signal``, ``timeline`` and ``reload``: one request each, its answer in words."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from supervisor.machine.errors import EXIT_GAVE_UP, EXIT_OK


def signal(client: Any, args: argparse.Namespace) -> int:
    """``supervisor signal NAME SIGNAL [--group]``: send it, and say to which process."""
    body = {"signal": args.signal, "group": args.group}
    code, doc = client.request("POST", f"/v1/programs/{args.name}/signal", body)
    if code != 200:
        print(f"supervisor: {doc.get('error', code)}", file=sys.stderr)
        return EXIT_GAVE_UP
    from supervisor.machine.events import signal_name

    name = signal_name(doc["signal"]) if isinstance(doc["signal"], int) else doc["signal"]
    whom = f"process group {doc['pid']}" if doc["group"] else f"pid {doc['pid']}"
    print(f"{args.name}: sent {name} to {whom}")
    return EXIT_OK


def timeline(client: Any, args: argparse.Namespace) -> int:
    """``supervisor timeline [--json]``: the start-up as a chart, or its document."""
    from supervisor.machine.timeline import render

    code, doc = client.request("GET", "/v1/timeline")
    if code != 200:
        print(f"supervisor: {doc.get('error', code)}", file=sys.stderr)
        return EXIT_GAVE_UP
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    tty = sys.stdout.isatty()
    import shutil

    from supervisor.client.safe import escape_doc

    print(render(escape_doc(doc), width=shutil.get_terminal_size((100, 24)).columns if tty else 100, fancy=tty))
    return EXIT_OK


def reload(client: Any, args: argparse.Namespace) -> int:
    """``supervisor reload [--json]``: re-read the file, and say what changed."""
    from supervisor.client.render import reload_words

    code, doc = client.request("POST", "/v1/reload")
    if args.json:
        print(json.dumps(doc, indent=2))
    elif code == 200:
        print(reload_words(doc))
    else:
        print(doc.get("error", code))
    return EXIT_OK if code == 200 else EXIT_GAVE_UP


RUN: dict[str, Callable[[Any, argparse.Namespace], int]] = {"signal": signal, "timeline": timeline, "reload": reload}
