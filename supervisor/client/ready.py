"""``supervisor wait --ready``: block until the running daemon reports the whole stack ready.

The client asks the daemon's status a few times a second over one kept connection; the daemon
does nothing for it but answer. Standard library only, as every client command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from supervisor.client.api import Unreachable
from supervisor.machine.errors import EXIT_GAVE_UP, EXIT_OK, EXIT_UNREACHABLE

POLL_S = 0.2
# `supervisor run &` then `supervisor wait --ready`: the socket appears a moment after the start.
START_GRACE_S = 5.0


def settled_failures(doc: dict[str, Any]) -> list[str]:
    """Return why the stack will not become ready without an operator (empty while it still may)."""
    sup = doc.get("supervisor") or {}
    out = []
    if sup.get("state") in ("draining", "stopping"):
        out.append(f"the supervisor is {sup['state']}")
    for unit in doc.get("units", []):
        why = f": {unit['error']}" if unit.get("error") else ""
        if unit["kind"] == "program" and unit["state"] in ("fatal", "exited"):
            out.append(f"{unit['name']} is {unit['state']}{why}")
        elif unit["kind"] == "job" and unit["state"] == "failed":
            out.append(f"job {unit['name']} failed{why}")
    return out


def wait_ready(client: Any, timeout_s: float | None) -> int:
    """Return 0 once the daemon reports ready, 1 on the timeout or a failure for good, 3 with no daemon."""
    try:
        return poll(client, timeout_s)
    except KeyboardInterrupt:
        return 130  # as a shell reports Ctrl-C: never "ready" to a script


def poll(
    client: Any,
    timeout_s: float | None,
    quiet: bool = False,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Ask the status until it is ready, failed for good, or out of time; return the exit code."""
    from supervisor.machine.status import problems

    started = now()
    deadline = None if timeout_s is None else started + timeout_s
    grace_end = started + (START_GRACE_S if timeout_s is None else min(START_GRACE_S, timeout_s))
    answered = False
    last: list[str] = []
    while True:
        try:
            code, doc = client.request("GET", "/v1/status?rss=0")
        except Unreachable as exc:
            if answered or now() >= grace_end:
                if answered:
                    print("supervisor: the supervisor stopped answering before it was ready", file=sys.stderr)
                print(f"supervisor: {exc}", file=sys.stderr)
                return EXIT_UNREACHABLE
            sleep(POLL_S)
            continue
        answered = True
        if code != 200:
            print(f"supervisor: {doc.get('error', code) if isinstance(doc, dict) else code}", file=sys.stderr)
            return EXIT_GAVE_UP
        if doc["supervisor"].get("ready"):
            if not quiet:
                print(f"ready after {now() - started:.1f}s")
            return EXIT_OK
        failed = settled_failures(doc)
        if failed:
            print("supervisor: not ready, and will not be without an operator:", file=sys.stderr)
            for line in failed:
                print(f"  ! {line}", file=sys.stderr)
            return EXIT_GAVE_UP
        last = problems(doc) or [f"the supervisor is {doc['supervisor'].get('state', '?')}"]
        if deadline is not None and now() >= deadline:
            print(f"supervisor: not ready after {timeout_s:g}s:", file=sys.stderr)
            for line in last:
                print(f"  ! {line}", file=sys.stderr)
            return EXIT_GAVE_UP
        sleep(POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - now())))
