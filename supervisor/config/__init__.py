"""The configuration: the file's pydantic models, and ``load()`` that validates a file.

Importing this package imports nothing else: the running daemon reaches its configuration
through ``supervisor.config.compiled`` and ``supervisor.config.settings`` and never imports pydantic.
``load`` and ``find_path`` are read from ``supervisor.config.loader`` on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["find_path", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from supervisor.config import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'supervisor.config' has no attribute {name!r}")
