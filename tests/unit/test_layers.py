"""The layering of ARCHITECTURE.md holds, and the client stays on the standard library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "supervisor"
LAYERS = {
    "errors": 0,
    "states": 0,
    "backoff": 0,
    "durations": 0,
    "systemd": 0,
    "clock": 0,
    "interpolation": 0,
    "plain": 0,
    "config": 1,
    "logs": 1,
    "process": 1,
    "probes": 1,
    "migrations": 1,
    "control.protocol": 1,
    "units": 2,
    "daemon": 3,
    "reload": 3,
    "runtime": 3,
    "control.server": 3,
    "control.metrics": 3,
    "control.actions": 3,
    "control.logstream": 3,
    "control.watch": 4,
    "control.render": 1,
    "timeline": 0,
    "completion": 4,
    "cli": 4,
    "control.client": 4,
    "heartbeat": 1,
    "__main__": 4,
    "control": 0,
    "__version__": 0,
    "": 0,
}


def layer_of(module: str) -> int:
    name = module.removeprefix("supervisor").removeprefix(".")
    while name not in LAYERS:
        name = name.rpartition(".")[0]
    return LAYERS[name]


def test_modules_import_only_from_lower_layers() -> None:
    """Each module imports only from its own layer or below (runtime imports included)."""
    bad = []
    for path in PKG.rglob("*.py"):
        module = "supervisor." + ".".join(path.relative_to(PKG).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        mine = layer_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("supervisor"):
                # "from supervisor.control import actions" imports supervisor.control.actions
                targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("supervisor")]
            else:
                continue
            for target in targets:
                if layer_of(target) > mine:
                    bad.append(f"{module} (layer {mine}) imports {target} (layer {layer_of(target)})")
    assert bad == []


def test_states_and_backoff_never_import_asyncio() -> None:
    """The pure layer stays pure: no asyncio, no clock reads."""
    for name in ("states.py", "backoff.py"):
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
