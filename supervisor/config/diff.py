"""What a reload changes: a pure comparison of two configurations."""

from __future__ import annotations

from dataclasses import dataclass, replace

from supervisor.config.instances import listen_key
from supervisor.config.settings import Config
from supervisor.machine.record import Record


@dataclass(frozen=True, repr=False, eq=False)
class ConfigDiff(Record):
    """The programs a reload adds, removes, changes or leaves, and what waits for a daemon restart."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    new_listen: tuple[str, ...]  # added or changed programs whose listen address must be bound anew
    next_start: tuple[str, ...]  # tables whose changes take effect only when the daemon starts again
    reordered: tuple[str, ...] = ()  # unchanged programs whose `after` changed: from their next start

    @property
    def note(self) -> str:
        """What a reload's answer says about changes that apply later, or ""."""
        notes = []
        if self.next_start:
            notes.append(f"changes to {', '.join(self.next_start)} take effect at the next start")
        if self.reordered:
            notes.append(f"the start order (after) of {', '.join(self.reordered)} applies from its next start")
        return "; ".join(notes)

    @property
    def empty(self) -> bool:
        """Whether the reload changes nothing at all."""
        return not (self.added or self.removed or self.changed or self.next_start)


def diff(old: Config, new: Config) -> ConfigDiff:
    """Compare ``old`` with ``new``, program by program (in the new file's order)."""
    added = tuple(n for n in new.programs if n not in old.programs)
    removed = tuple(n for n in old.programs if n not in new.programs)
    # `after` orders starts only: changing it restarts nothing, the next start follows it
    changed = tuple(
        n
        for n in new.programs
        if n in old.programs and replace(old.programs[n], after=new.programs[n].after) != new.programs[n]
    )
    unchanged = tuple(n for n in new.programs if n not in added and n not in changed)
    # by listen key: an instance added with its siblings' address accepts on their socket
    bound = {listen_key(n, p): p.listen for n, p in old.programs.items() if p.listen}
    new_listen = tuple(
        n
        for n, p in new.programs.items()
        if (n in added or n in changed) and p.listen and bound.get(listen_key(n, p)) != p.listen
    )
    next_start = tuple(
        table
        for table, a, b in (
            ("dependencies", old.dependencies, new.dependencies),
            ("jobs", old.jobs, new.jobs),
            ("supervisor", old.supervisor, new.supervisor),
        )
        if a != b
    )
    reordered = tuple(n for n in unchanged if n in old.programs and old.programs[n].after != new.programs[n].after)
    return ConfigDiff(added, removed, changed, unchanged, new_listen, next_start, reordered)
