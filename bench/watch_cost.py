"""What `supervisor status --watch` costs the daemon: CPU per second, read from /proc.

    python bench/watch_cost.py [--seconds 30] [--interval 1]

Ten programs (`sleep`) under the daemon. The daemon's CPU time is read from
/proc/PID/task/*/schedstat (nanoseconds on the CPU, summed over its threads) and from
/proc/PID/stat (utime + stime, in clock ticks), over a window without a watcher and then an
equal window with one `status --watch` running (through a pipe; a terminal changes only the
client's side). The cost is the difference, per second of wall time. Goal: ≤ 1 ms/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = str(Path(sys.executable).with_name("supervisor"))
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_ns(pid: int) -> int:
    """Return the nanoseconds that every thread of ``pid`` has spent on a CPU."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    return total


def cpu_ticks_s(pid: int) -> float:
    """Return utime + stime of ``pid`` in seconds (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def window(pid: int, seconds: float) -> dict[str, float]:
    """Measure the daemon's CPU over ``seconds``: ms per second, by schedstat and by ticks."""
    ns0, ticks0, t0 = cpu_ns(pid), cpu_ticks_s(pid), time.monotonic()
    time.sleep(seconds)
    ns1, ticks1, t1 = cpu_ns(pid), cpu_ticks_s(pid), time.monotonic()
    wall = t1 - t0
    return {"ms_per_s": (ns1 - ns0) / 1e6 / wall, "ticks_ms_per_s": (ticks1 - ticks0) * 1000 / wall, "wall_s": wall}


def measure(seconds: float = 30.0, interval: float = 1.0, programs: int = 10) -> dict[str, object]:
    """Run a daemon with ``programs`` sleepers; return its CPU without and with a watcher."""
    work = Path(tempfile.mkdtemp(prefix="watchcost-"))
    sock = str(work / "s.sock")
    conf = work / "watch.toml"
    lines = [f'[supervisor]\nsocket = "{sock}"\nhttp = ""\nlog_format = "json"\n']
    lines += [f'[programs.p{i}]\ncommand = ["sleep", "3600"]\n' for i in range(programs)]
    conf.write_text("\n".join(lines))
    with open(work / "daemon.log", "wb") as log:
        daemon = subprocess.Popen([OURS, "run", "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    watcher: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([OURS, "status", "-q", "--socket", sock], stderr=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not get ready; see {work / 'daemon.log'}")
            time.sleep(0.2)
        time.sleep(1.0)  # let start-up's last callbacks settle
        idle = window(daemon.pid, seconds)
        watcher = subprocess.Popen(
            [OURS, "status", "--watch", "--interval", str(interval), "--socket", sock],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(interval * 2)  # past the watcher's own start-up
        watched = window(daemon.pid, seconds)
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(10)
        daemon.terminate()
        daemon.wait(30)
    return {
        "programs": programs,
        "interval_s": interval,
        "window_s": seconds,
        "idle": idle,
        "watched": watched,
        "watch_cost_ms_per_s": watched["ms_per_s"] - idle["ms_per_s"],
        "watch_cost_ticks_ms_per_s": watched["ticks_ms_per_s"] - idle["ticks_ms_per_s"],
    }


def main() -> None:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each window")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--programs", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds, args.interval, args.programs), indent=2))


if __name__ == "__main__":
    main()
