"""The ``PATH`` a program gets by default: the inherited one, then the supervisor's own scripts directory.

The supervisor is installed in a virtualenv beside the programs it runs (alembic, uvicorn,
celery), and is often started as ``.venv/bin/supervisor`` without that virtualenv on ``PATH``.
Its scripts directory comes last, so that anything the operator put on ``PATH`` wins. A unit
whose ``environment`` or ``env_file`` sets ``PATH`` gets that instead, unchanged.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig


@functools.cache  # sysconfig works it out afresh each time: tens of microseconds a spawn
def scripts_dir() -> str:
    """Return where this interpreter's installed commands live (a virtualenv's ``bin/``)."""
    return sysconfig.get_path("scripts") or os.path.dirname(sys.executable)


def default_path(inherited: str | None) -> str:
    """Return ``inherited`` (else the system default) followed by the scripts directory, once."""
    base = inherited if inherited else os.defpath
    ours = scripts_dir()
    if not ours or ours in base.split(os.pathsep):
        return base
    return f"{base}{os.pathsep}{ours}"
