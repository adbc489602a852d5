"""What the control API speaks beyond the status document: its prefix and signal names. Standard library only."""

from __future__ import annotations


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
