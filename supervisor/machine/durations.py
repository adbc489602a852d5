"""Parse durations ("500ms", "2s", "5m") and sizes ("512MB") from the configuration."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "ki": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "mi": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "gi": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
    "ti": 2**40,
}


def parse_duration(value: object) -> float:
    """Return seconds from a number of seconds or a string such as ``"1.5s"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '2s'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration: use seconds or '500ms', '2s', '5m', '1h'")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError("a duration is a number of seconds or a string such as '2s'")
    if not math.isfinite(seconds):  # TOML's nan and inf: a sleep of nan returns at once
        raise ValueError("a duration must be a finite number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: object) -> int:
    """Return bytes from a number or a string such as ``"512MB"`` or ``"1GiB"``."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string such as '512MB'")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size: use bytes or '512MB', '1GiB'")
        size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])
    else:
        raise ValueError("a size is a number of bytes or a string such as '512MB'")
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


def format_duration(seconds: float | None) -> str:
    """Render seconds compactly for operators: ``950ms``, ``4.0s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"
