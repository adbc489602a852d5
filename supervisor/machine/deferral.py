"""A crash that beats the probe: decide whose exit it was once the dependency's probe answers.

A worker connected to Redis through a proxy notices the proxy closing before the daemon's probe
does, and exits. Counted as its own crash, it would be restarted at once into the same failure
and spend its restart budget on a blip the supervisor exists to ride out. So when a program
exits while a dependency it names is being probed (or its kept connection just stirred), it
waits in ``pending`` (``program.exit_deferred``) until that probe answers, bounded by the
probe's time: a dependency found down makes the exit the dependency's (nothing counted, it
starts again when the dependency is back); a dependency that answered makes it the program's
own (the restart budget as usual).
"""

from __future__ import annotations

import random
from dataclasses import replace

from supervisor.machine.edges import log
from supervisor.machine.events import Action
from supervisor.machine.model import Model, RestartPolicy, State
from supervisor.machine.outcomes import after_failure


def waiting(m: Model) -> bool:
    """Whether the program waits in pending for a probe's answer about its last exit."""
    return m.exit_deferred and m.state is State.PENDING


def settle(m: Model, deps_ok: bool, now: float, p: RestartPolicy, rng: random.Random) -> tuple[Model, list[Action]]:
    """The probe answered (``deps_ok``), or its time ran out (the last known state): whose exit was it."""
    m = replace(m, exit_deferred=False, deps_ok=deps_ok)
    if not deps_ok:
        # pending -> pending: its dependency is down; the exit was the dependency's
        why = "its dependency is down: the exit was the dependency's, no restart counted"
        return m, [log("program.pending", why=why)]
    if m.held:
        return m, []
    # pending -> starting|backoff|fatal: the dependency answered; the exit was the program's own
    return after_failure(m, now, p, rng, log("program.exit_decided", why="its dependency answered: a crash of its own"))
