"""``instances = N``: one program of the file becomes the units ``X:0`` ... ``X:N-1`` (stdlib only).

The loader expands every program with ``instances`` here, and the running daemon rescales one
with the same functions (``supervisor scale``): the engine sees plain programs with names such
as ``web:1``, and a change of count is a reload's diff like any other. Each instance's
``${SUPERVISOR_INSTANCE}`` (kept literal by the loader's interpolation) becomes its index in
``command``, ``environment`` and the health check, and ``SUPERVISOR_INSTANCE`` is set in its
environment. ``depends_on`` and ``after`` keep naming the program ``X``: it stands for all of
its instances (``members``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from supervisor.config.settings import Config, Loaded, ProgramConfig
from supervisor.machine.instances import instance_name, order_key

VAR = "${SUPERVISOR_INSTANCE}"  # kept literal by interpolation in a program with `instances`
ENV = "SUPERVISOR_INSTANCE"
V = TypeVar("V")


def _sub(value: V, index: str) -> V:
    """``value`` with ``${SUPERVISOR_INSTANCE}`` replaced by ``index``, in a string or a list of them."""
    if isinstance(value, str):
        return value.replace(VAR, index)  # type: ignore[return-value]
    if isinstance(value, list):
        return [_sub(v, index) for v in value]  # type: ignore[return-value]
    return value


def expand_one(base: str, template: ProgramConfig, index: int) -> ProgramConfig:
    """Return instance ``index`` of ``template``: its variable expanded, its environment marked."""
    i = str(index)
    health = template.health
    if health is not None:
        health = replace(health, http=_sub(health.http, i), tcp=_sub(health.tcp, i), exec=_sub(health.exec, i))
    environment = {k: _sub(v, i) for k, v in template.environment.items()}
    environment[ENV] = i
    return replace(
        template,
        command=_sub(template.command, i),
        environment=environment,
        health=health,
        instances=None,  # the count is its template's: a scale changes no instance that stays
        instance_of=base,
        instance=index,
    )


def _expanded(programs: Mapping[str, ProgramConfig], templates: Mapping[str, ProgramConfig]) -> dict[str, Any]:
    """Expand ``programs`` again from ``templates``, each group at its first instance's place."""
    out: dict[str, ProgramConfig] = {}
    for name, prog in programs.items():
        base = prog.instance_of
        if base is None:
            out[name] = prog
        elif base in templates and instance_name(base, 0) not in out:
            count = templates[base].instances or 0
            out.update({instance_name(base, i): expand_one(base, templates[base], i) for i in range(count)})
    return out


def expand(config: Config, problems: list[tuple[str, str]]) -> Config:
    """Replace each program with ``instances`` by its instances; a name taken twice is a problem."""
    templates = {n: p for n, p in config.programs.items() if p.instances is not None}
    if not templates:
        return config
    taken = set(config.programs) | set(config.jobs) | set(config.dependencies)
    for name, prog in templates.items():
        clash = [n for n in (instance_name(name, i) for i in range(prog.instances or 0)) if n in taken]
        if clash:
            problems.append((f"programs.{name}.instances", f"{clash[0]!r} is already a unit's name"))
    out: dict[str, ProgramConfig] = {}
    for name, prog in config.programs.items():
        if name in templates:
            count = prog.instances or 0
            out.update({instance_name(name, i): expand_one(name, prog, i) for i in range(count)})
        else:
            out[name] = prog
    return replace(config, programs=out, templates=templates)


def rescale(loaded: Loaded, name: str, count: int) -> Loaded:
    """Return ``loaded`` with program ``name`` (one with ``instances``) at ``count`` of them, the rest as it is."""
    templates = {**loaded.config.templates, name: replace(loaded.config.templates[name], instances=count)}
    config = replace(loaded.config, templates=templates, programs=_expanded(loaded.config.programs, templates))
    now = [instance_name(name, i) for i in range(count)]
    plan: list[list[str]] = []
    for level in loaded.plan:
        kept = [n for n in level if (p := loaded.config.programs.get(n)) is None or p.instance_of != name]
        if len(kept) != len(level) and now:  # the group's level: all of its instances now
            kept, now = sorted([*kept, *now], key=order_key), []
        plan.append(kept)
    return replace(loaded, config=config, plan=plan)


def listen_key(name: str, prog: ProgramConfig) -> str:
    """Return whose socket a program accepts on: its own, or its instances' shared one."""
    return prog.instance_of or name
