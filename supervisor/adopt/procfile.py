"""A Procfile (Heroku, honcho, foreman) as a draft of ours.

Each ``name: command`` line is a program; ``release:`` is a job that every program waits for
(Heroku runs it before a release starts). A command that needs the shell keeps it
(``sh -c``), as the Procfile runners do; otherwise it becomes an argv with its ``$VAR``s in our
``${VAR}`` form and its leading ``VAR=value`` words in ``environment``.
"""

from __future__ import annotations

import re

from supervisor.adopt.draft import Draft, NotThisKind, one_line
from supervisor.adopt.words import Untranslatable, argv

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.*\S)\s*$")
RELEASE = "release"


def read(text: str, source: str) -> Draft:
    """Return the draft of a Procfile; raise ``NotThisKind`` naming the first line that is not ``name: command``."""
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise NotThisKind(number, f"not a Procfile: {one_line(line)[:60]!r} is not `name: command`")
        entries.append((match.group(1), match.group(2)))
    if not entries:
        raise NotThisKind(None, "not a Procfile: no `name: command` line")
    draft = Draft(source, "procfile")
    for name, line in entries:
        unit = draft.unit("job" if name == RELEASE else "program", name)
        notes: list[str] = []
        try:
            command, env = argv(line, notes)
        except (Untranslatable, ValueError) as exc:
            unit.lose(f"{one_line(line)} ({exc}): run through the shell")
            command, env = ["sh", "-c", line], {}
        unit.keys["command"] = command
        if env:
            unit.keys["environment"] = env
        unit.remarks += notes
        if name == RELEASE:
            unit.remarks.append("Heroku's release phase: every program waits for it (depends_on)")
    if any(u.kind == "job" for u in draft.units):
        for unit in draft.units:
            if unit.kind == "program":
                unit.keys["depends_on"] = [RELEASE]
    return draft
