"""Text from a child, made safe for a terminal: control characters shown escaped, as journalctl does.

A child's output line, its notify ``STATUS=`` or an error that quotes it could otherwise set
the terminal's title, clear the screen or worse. Every C0 character but tab, DEL and the C1
characters become ``\\x1b``-style escapes. Standard library only.
"""

from __future__ import annotations

from typing import Any, TypeVar

_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0))}
T = TypeVar("T")


def escape(text: str) -> str:
    """Return ``text`` with its control characters (but tab) written as ``\\xNN``."""
    return text.translate(_ESCAPES)


def escape_doc(doc: T) -> T:
    """Return a copy of a JSON document with every string escaped (keys too) for a terminal."""
    value: Any = doc
    if isinstance(value, str):
        return escape(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {escape(str(k)): escape_doc(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [escape_doc(v) for v in value]  # type: ignore[return-value]
    return doc
