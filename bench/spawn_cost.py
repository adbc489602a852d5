"""Where a restart's spawn time goes: the daemon's spawn (posix_spawn of setpriv, which sets
PDEATHSIG and execs the program) against a bare posix_spawn of the program.

    python bench/spawn_cost.py [--runs 40]

Each sample is the time from just before the spawn call to the child's first instruction (the
stamp binary's CLOCK_MONOTONIC), the two kinds alternating. Prints medians and spreads in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from supervisor.process import SpawnSpec, spawn

ROOT = Path(__file__).resolve().parents[1]


def sample(stamp: str, out: Path, daemon_path: bool) -> float:
    """Spawn the stamp once; return ms from the call to its first instruction."""
    out.unlink(missing_ok=True)
    t0 = time.monotonic_ns()
    if daemon_path:
        pid = spawn(SpawnSpec(argv=[stamp, str(out)], env=dict(os.environ), capture=False)).pid
    else:
        pid = os.posix_spawn(stamp, [stamp, str(out)], dict(os.environ), setsid=True)
    while not (out.exists() and out.stat().st_size):
        time.sleep(0.0002)
    first = int(out.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return (first - t0) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    build = ROOT / "bench" / "build"
    build.mkdir(exist_ok=True)
    stamp = str(build / "stamp")
    subprocess.run(["gcc", "-O2", "-o", stamp, str(ROOT / "bench" / "stamp.c")], check=True)
    out = Path(tempfile.mkdtemp(prefix="spawncost-")) / "stamps"
    samples: dict[str, list[float]] = {"setpriv (the daemon's path)": [], "bare posix_spawn": []}
    for _ in range(args.runs):
        samples["setpriv (the daemon's path)"].append(sample(stamp, out, True))
        samples["bare posix_spawn"].append(sample(stamp, out, False))
    print(
        json.dumps(
            {k: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v)} for k, v in samples.items()},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
