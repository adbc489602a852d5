"""Where a restart's spawn time goes: the daemon's spawn (posix_spawn of the program, registered
with the guard), the old path (posix_spawn of setpriv, which sets PDEATHSIG and execs the program)
and a bare posix_spawn of the program.

    python bench/spawn_cost.py [--runs 40]

Each sample is the time from just before the spawn call to the child's first instruction (the
stamp binary's CLOCK_MONOTONIC), the kinds alternating; ``call_ms`` is how long the call itself
took (what the daemon's loop pays, the guard's registration included). Prints medians and
spreads in ms, and the guard's resident set.
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

from supervisor.host import guard
from supervisor.host.process import SpawnSpec, spawn

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("guard (the daemon's path)", "setpriv (the old path)", "bare posix_spawn")


def sample(stamp: str, out: Path, kind: str) -> tuple[float, float]:
    """Spawn the stamp once; return ms from the call to its first instruction, and to the call's return."""
    out.unlink(missing_ok=True)
    spec = SpawnSpec(argv=[stamp, str(out)], env=dict(os.environ), capture=False)
    if kind.startswith("setpriv"):
        os.environ["SUPERVISOR_SPAWN"] = "setpriv"
    t0 = time.monotonic_ns()
    if kind.startswith("bare"):
        pid = os.posix_spawn(stamp, [stamp, str(out)], dict(os.environ), setsid=True)
    else:
        pid = spawn(spec).pid
    returned = time.monotonic_ns()
    os.environ.pop("SUPERVISOR_SPAWN", None)
    while not (out.exists() and out.stat().st_size):
        time.sleep(0.0002)
    first = int(out.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    guard.shared().reaped(pid)  # as the daemon's reaper does
    return (first - t0) / 1e6, (returned - t0) / 1e6


def rss_kb(pid: int) -> int:
    """Return the resident set of ``pid`` in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    build = ROOT / "bench" / "build"
    build.mkdir(exist_ok=True)
    stamp = str(build / "stamp")
    subprocess.run(["gcc", "-O2", "-o", stamp, str(ROOT / "bench" / "stamp.c")], check=True)
    out = Path(tempfile.mkdtemp(prefix="spawncost-")) / "stamps"
    os.environ.pop("SUPERVISOR_SPAWN", None)
    sample(stamp, out, KINDS[0])  # the first spawn starts the guard: not a sample
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
    for _ in range(args.runs):
        for kind in KINDS:
            samples[kind].append(sample(stamp, out, kind))
    report: dict[str, object] = {}
    for kind, pairs in samples.items():
        first = [p[0] for p in pairs]
        call = [p[1] for p in pairs]
        report[kind] = {
            "median_ms": round(statistics.median(first), 3),
            "min_ms": round(min(first), 3),
            "max_ms": round(max(first), 3),
            "call_median_ms": round(statistics.median(call), 3),
        }
    keeper = guard.shared().pid
    report["guard_rss_kb"] = rss_kb(keeper) if keeper is not None else None
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
