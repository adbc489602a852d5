"""Which kind of file ``import`` reads, and reading it: supervisord, Procfile or Compose."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from supervisor.adopt import compose, procfile, supervisord
from supervisor.adopt.draft import Draft

READERS: dict[str, Callable[[str, str], Draft]] = {
    "supervisord": supervisord.read,
    "procfile": procfile.read,
    "compose": compose.read,
}
_SECTION = re.compile(
    r"^\s*\[(program:|supervisord\]|group:|include\]|eventlistener:|fcgi-program:|unix_http_server\]"
    r"|inet_http_server\]|supervisorctl\]|rpcinterface:)",
    re.M,
)
_SERVICES = re.compile(r"^services\s*:", re.M)
_PROCFILE_LINE = re.compile(r"^[A-Za-z0-9_-]+:\s*\S")


def detect(path: str, text: str) -> str | None:
    """Return the kind of a file from its name, else its content; None when neither tells."""
    name = os.path.basename(path).lower()
    if name.startswith("procfile"):
        return "procfile"
    if name.endswith((".yml", ".yaml")):
        return "compose"
    if name.endswith((".conf", ".ini")) or name.startswith("supervisord"):
        return "supervisord"
    if _SECTION.search(text):
        return "supervisord"
    if _SERVICES.search(text):
        return "compose"
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if lines and all(_PROCFILE_LINE.match(line) for line in lines):
        return "procfile"
    return None
