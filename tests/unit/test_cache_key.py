"""The configuration cache's key covers every module that validation runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from supervisor.config import cache

ROOT = Path(__file__).resolve().parents[2]
IMPORTED = """
import json, sys
from pathlib import Path
from supervisor.config.loader import load
load(Path(sys.argv[1]), {"PATH": "/usr/bin:/bin"})
package = Path(sys.modules["supervisor"].__file__).parent
print(json.dumps(sorted(
    str(Path(m.__file__).relative_to(package))
    for m in list(sys.modules.values())
    if getattr(m, "__name__", "").startswith("supervisor") and getattr(m, "__file__", None)
)))
"""


def test_the_key_covers_every_module_a_validation_imports() -> None:
    """Validating the shipped configuration (lazy imports included) runs no module the key leaves out."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORTED, str(ROOT / "conf" / "supervisor.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    imported = set(json.loads(out.stdout))
    covered = set(cache.code_files()) | {"__init__.py"}  # the package's own: __version__, keyed by value
    assert imported - covered == set()
