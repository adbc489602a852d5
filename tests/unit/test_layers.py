"""The folders are the layers and their imports go downwards only, and the client stays on the standard library."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "supervisor"
# Every module, by its folder (a folder's entry covers its modules; a module's own entry wins).
# The folders are the layers: each imports only from folders of a lower number, or its own.
LAYERS = {
    "": 0,
    "machine": 0,  # pure: events, states, transitions, backoff, the status document
    "config": 1,  # the file: models, loading, interpolation, the cache
    "adopt": 1,  # the way in: `import` of supervisord, Procfile and Compose files into the file
    "host": 2,  # the operating system: spawn, trees, the guard, output, notify, systemd
    "stack": 3,  # Postgres, Redis, migrations, heartbeats
    "engine": 4,  # the running daemon: units, graph, readiness, the front door
    "control": 5,  # the server side of the socket and the TCP port
    "client": 5,  # the operator's side, standard library only
    "cli": 6,
    "__main__": 6,
    "runtime": 6,  # owns the event loop: wires the engine and the control server together
    "oneoff": 6,  # `supervisor exec`: the file, the probes, then exec
    "notify": 6,  # the app-facing import paths
    "heartbeat": 6,
}


def module_name(path: Path, root: Path) -> str:
    """Return the dotted name of a module file under the package ``root``."""
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix("__init__").rstrip(".")


def layer_of(module: str) -> int | None:
    """Return a module's layer, or None when no entry covers it."""
    name = module.removeprefix("supervisor").removeprefix(".")
    if not name:
        return LAYERS[""]  # the package's own __init__
    while name:
        if name in LAYERS:
            return LAYERS[name]
        name = name.rpartition(".")[0]
    return None


def imports(root: Path, package: str) -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, anywhere in its body."""
    found: dict[str, set[str]] = {}
    known = {module_name(p, root) for p in root.rglob("*.py")}
    for path in root.rglob("*.py"):
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                # "from pkg.config import settings" imports the module pkg.config.settings; the
                # package itself counts only where a name is not a module of its own.
                names = [s for s in subs if s.removeprefix(package).removeprefix(".") in known]
                if len(names) < len(subs):
                    names.append(node.module)
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.split(".")[0] == package]
            for name in names:
                local = name.removeprefix(package).removeprefix(".")
                # "from pkg.control import actions" is the module pkg.control.actions, when there is one
                while local and local not in known:
                    local = local.rpartition(".")[0]
                targets.add(local)
        found[module_name(path, root)] = targets - {module_name(path, root)}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle per strongly connected group of modules that import each other."""
    from graphlib import CycleError, TopologicalSorter

    out = []
    remaining = {k: set(v) for k, v in graph.items()}
    for _ in range(1000):
        try:
            TopologicalSorter(remaining).prepare()
            return out
        except CycleError as exc:
            cycle = list(exc.args[1])
            out.append(cycle)
            for a, b in itertools.pairwise(cycle):  # break the circle: drop one of its edges
                if a in remaining.get(b, set()):
                    remaining[b].discard(a)
                    break
                if b in remaining.get(a, set()):
                    remaining[a].discard(b)
                    break
    return out


def test_every_module_has_a_layer() -> None:
    """A module that no layer names is an error, not layer 0."""
    unlisted = [m for m in imports(PKG, "supervisor") if layer_of(m) is None]
    assert unlisted == []


def test_modules_import_only_from_their_layer_or_below() -> None:
    """Each module imports only from its own layer or below (lazy and type-only imports included)."""
    bad = []
    for module, targets in imports(PKG, "supervisor").items():
        mine = layer_of(module)
        for target in targets:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    assert bad == []


def test_the_package_has_no_import_cycle() -> None:
    """No two modules import each other, directly or around a circle, counting lazy imports."""
    assert cycles(imports(PKG, "supervisor")) == []


def test_the_cycle_check_finds_a_deliberate_cycle(tmp_path: Path) -> None:
    """The check fails on a package where a lazy import closes a circle (so it can fail at all)."""
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo import b\n")
    (pkg / "b.py").write_text("def f():\n    from demo.c import g\n")
    (pkg / "c.py").write_text("import demo.a\n")
    found = cycles(imports(pkg, "demo"))
    assert found and set(found[0]) >= {"a", "b", "c"}


def test_the_control_server_sees_only_the_front_door() -> None:
    """The server and /metrics import the ControlTarget protocol and the status document, nothing of the daemon."""
    # socketlock: the socket's directory, made as the lock beside the socket needs it first.
    # The vocabulary (states, reasons) is read from machine, where it is defined once.
    allowed = {"engine.target", "control.protocol", "control.metrics", "machine.status", "host.socketlock"}
    allowed |= {"control.readyz"}  # /readyz from the status document alone
    allowed |= {"control.connections"}  # one connection's HTTP, within its listener's budget
    allowed |= {"host.looperrors"}  # descriptors open now, and the open-files limit's hint, as it says them
    allowed |= {"machine.events", "machine.model", "machine.jobstates"}
    found = imports(PKG, "supervisor")
    watched = ("control.server", "control.metrics", "control.readyz", "control.connections")
    assert {m: found[m] - allowed for m in watched} == {
        "control.server": set(),
        "control.connections": set(),
        "control.metrics": set(),
        "control.readyz": set(),
    }


def test_states_and_backoff_never_import_asyncio() -> None:
    """The pure layer stays pure: no asyncio, no clock reads."""
    for name in ("machine/states.py", "machine/backoff.py"):
        tree = ast.parse((PKG / name).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"asyncio", "time", "datetime"}, f"{name} imports {imported}"


def test_status_imports_only_the_standard_library() -> None:
    """`supervisor status` loads neither asyncio, psycopg, alembic, pydantic nor structlog."""
    probe = (
        "import sys\n"
        "from supervisor import cli\n"
        "try:\n    cli.main(['status', '--socket', '/nonexistent.sock'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('asyncio', 'psycopg', 'alembic', 'pydantic', 'structlog', 'h11', 'psutil') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "", f"status imported: {out.stdout.strip()}"


def test_the_run_path_imports_neither_pydantic_nor_ssl() -> None:
    """What `supervisor run` imports before and while it runs leaves pydantic to a child and OpenSSL out."""
    probe = (
        "import sys\n"
        "from supervisor.host import tls\n"
        "with tls.hidden():\n    import asyncio\n"
        "import supervisor.config.compiled, supervisor.config.runnable, supervisor.config.settings\n"
        "import supervisor.runtime, supervisor.engine.daemon, supervisor.control.server\n"
        "import supervisor.stack.probes\n"
        "heavy = [m for m in ('pydantic', 'pydantic_core', 'pydantic_settings', 'ssl', '_hashlib', 'psutil', "
        "'alembic') "
        "if sys.modules.get(m) is not None]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the run path imported: {out.stdout.strip()}"


def test_no_module_is_over_400_lines() -> None:
    """About 400 lines is where a module should split: none is above it."""
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}
