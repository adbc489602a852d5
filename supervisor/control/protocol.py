"""What the control API speaks beyond the status document: signal names and request bodies."""

from __future__ import annotations

import json

from supervisor.engine.target import Refused


def scale_request(body: bytes) -> object:
    """Return N of ``{"instances": N}`` (the target checks it); ``Refused`` (400) for any other body."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = None
    if not isinstance(request, dict) or "instances" not in request:
        raise Refused('the body must be a JSON object such as {"instances": 4}')
    return request["instances"]


def parse_signal(value: object) -> int | None:
    """Return the signal number for ``HUP``, ``SIGHUP``, ``sighup`` or ``1``; None if there is none."""
    import signal as _signal

    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        return number if number in _signal.valid_signals() else None
    if not isinstance(value, str):
        return None
    name = value.strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    member = getattr(_signal.Signals, name, None) if name.isidentifier() else None
    return int(member) if isinstance(member, _signal.Signals) else None
