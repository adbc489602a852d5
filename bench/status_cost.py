"""What `supervisor status` costs: the time of one status request, and what the daemon spends idle.

    python bench/status_cost.py [--programs 10 100] [--requests 300] [--source CHECKOUT] [--rounds N]

For each count, the daemon runs that many programs (`sleep`). The client asks for the status
document as `supervisor status` does (`GET /v1/status?rss=0`), and as `status --json` does
(`GET /v1/status`, which reads every tree's RSS fresh), ``--requests`` times each, over one kept
connection; the median and the 90th percentile are reported in milliseconds. The daemon's idle
CPU (ms per second, from /proc/PID/task/*/schedstat over ``--idle`` seconds without requests)
shows what the background usage sample costs: ``idle_watched`` within a minute of a status
request (a pass every 5 s), ``idle`` with ``--unwatched`` a minute after the last one (every 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from supervisor.client.api import Client

OURS = [sys.executable, "-m", "supervisor"]


def cpu_ns(pid: int) -> int:
    """Return the nanoseconds that every thread of ``pid`` has spent on a CPU."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            continue
    return total


def timed(client: Client, path: str, n: int) -> dict[str, float]:
    """Ask ``path`` ``n`` times; return the median and p90 in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        code, _ = client.request("GET", path)
        times.append((time.perf_counter() - t0) * 1000)
        assert code == 200
    times.sort()
    return {"median_ms": round(statistics.median(times), 3), "p90_ms": round(times[int(len(times) * 0.9)], 3)}


def idle_cpu(pid: int, seconds: float) -> float:
    """The daemon's CPU over ``seconds`` with nothing asked of it, in ms per second."""
    ns0, t0 = cpu_ns(pid), time.monotonic()
    time.sleep(seconds)
    return round((cpu_ns(pid) - ns0) / 1e6 / (time.monotonic() - t0), 3)


def measure(
    programs: int, requests: int, idle_s: float, source: str | None = None, unwatched: bool = False
) -> dict[str, object]:
    """Run a daemon with ``programs`` sleepers; return the status times and its idle CPU."""
    work = Path(tempfile.mkdtemp(prefix="statuscost-"))
    sock = str(work / "s.sock")
    conf = work / "status.toml"
    lines = [f'[supervisor]\nsocket = "{sock}"\nhttp = ""\nlog_format = "json"\n']
    lines += [f'[programs.p{i}]\ncommand = ["sleep", "3600"]\nmin_uptime = "0s"\n' for i in range(programs)]
    conf.write_text("\n".join(lines))
    with open(work / "daemon.log", "wb") as log:
        env = {**os.environ, "PYTHONPATH": source} if source else None  # another checkout: the "before"
        daemon = subprocess.Popen(
            [*OURS, "run", "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work
        )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([*OURS, "status", "-q", "--socket", sock], stderr=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not get ready; see {work / 'daemon.log'}")
            time.sleep(0.2)
        time.sleep(6.0)  # past start-up, and past a first usage sample where there is one
        watched = idle_cpu(daemon.pid, idle_s)  # within a minute of the status requests above
        if unwatched:
            time.sleep(max(0.0, 65.0 - idle_s))  # a minute without a request: the sample slows down
        idle = idle_cpu(daemon.pid, idle_s if not unwatched else max(idle_s, 60.0))
        client = Client(sock, keep=True)
        timed(client, "/v1/status?rss=0", 20)  # warm
        table = timed(client, "/v1/status?rss=0", requests)
        full = timed(client, "/v1/status", requests)
        _, doc = client.request("GET", "/v1/status?rss=0")
        sample = next(u for u in doc["units"] if u["kind"] == "program")
    finally:
        daemon.terminate()
        daemon.wait(60)
    return {
        "programs": programs,
        "status": table,
        "status_json": full,
        "idle_watched_ms_per_s": watched,
        "idle_ms_per_s": idle,
        "has_cpu_column": "cpu_percent" in sample,
    }


def main() -> None:
    """Measure each count and print the figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    parser.add_argument("--source", help="run the daemon from this checkout (e.g. a worktree of the commit before)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat, to see the spread on a busy machine")
    parser.add_argument("--unwatched", action="store_true", help="also the idle CPU a minute after the last request")
    args = parser.parse_args()
    out = [
        measure(n, args.requests, args.idle, args.source, args.unwatched)
        for _ in range(args.rounds)
        for n in args.programs
    ]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
