"""Rolling restarts of N uvicorn instances on one socket under load: failed requests and p99, restarts vs steady.

    python bench/instances.py [--instances 4] [--clients 16] [--rolls 5] [--runs 3]

The example stack runs (real Postgres, Redis, uvicorn, Celery) with ``instances = N`` on its web
program (``SUPERVISOR_PROGRAMS__WEB__INSTANCES``): N uvicorn processes accept on the one listen
socket. Clients open a new connection per request to /livez. After a steady window, ``supervisor
restart web`` runs ``--rolls`` times back to back: each replaces the N instances one at a time,
start-first, each after the one before is running. Reported per run: failed requests, p50 and p99
during the restarts against the steady window (and their ratio), the longest time with no
response, and one roll's duration; then the medians over the runs. Writes
bench/results/instances.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handover import Load, ours_config, stack_env, window
from run import BENCH_REDIS, OURS, ROOT, _empty_redis, _get, socket_port, wait_for


def measure(instances: int, clients: int, rolls: int, steady_s: float, admin: str) -> dict[str, object]:
    """One run: the stack with ``instances`` web instances, a steady window, then ``rolls`` rolling restarts."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    work = Path(tempfile.mkdtemp(prefix="instances-"))
    with socket_port() as port:
        pass
    env = {**stack_env(work, url, port), "SUPERVISOR_PROGRAMS__WEB__INSTANCES": str(instances)}
    conf = ours_config(work, "start-first")
    log = open(work / "log", "wb")  # noqa: SIM115 - lives with the daemon
    proc = subprocess.Popen([OURS, "run", "--config", str(conf)], env=env, stdout=log, stderr=log)
    restart = [OURS, "restart", "web", "--socket", str(work / "s.sock")]
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/livez"), 120, "web", interval=0.05)
        status = [OURS, "status", "--quiet", "--socket", str(work / "s.sock")]
        wait_for(lambda: subprocess.run(status, env=env).returncode == 0, 120, "all running", interval=0.2)
        load = Load(port, clients)
        threads = load.run()
        time.sleep(1.0)  # warm-up, not measured
        t_steady = time.monotonic()
        time.sleep(steady_s)
        t_rolls = time.monotonic()
        codes = []
        for _ in range(rolls):
            done = subprocess.run(restart, env=env, capture_output=True, text=True)
            codes.append(done.returncode)
            if done.returncode != 0:
                print(f"  restart web exited {done.returncode}: {done.stderr.strip()}", flush=True)
        t_done = time.monotonic()
        time.sleep(0.5)  # the requests in flight as the last roll ended
        t_end = time.monotonic()
        load.stop.set()
        for t in threads:
            t.join(40)
        steady, during = window(load, t_steady, t_rolls), window(load, t_rolls, t_end)
        return {
            "load_1m": os.getloadavg()[0],  # the machine's load as the run ended: other work skews p99
            "steady": steady,
            "restarts": during,
            "p99_ratio": during["p99_ms"] / steady["p99_ms"],
            "roll_s": (t_done - t_rolls) / rolls,
            "cli_failures": sum(1 for c in codes if c != 0),
            "errors": sorted({e for _, e in load.failed}),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
        log.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(res: dict[str, object]) -> str:
    """The runs as a Markdown table, and the medians."""
    runs: list[dict[str, object]] = res["runs"]  # type: ignore[assignment]
    lines = [
        f"{res['instances']} instances on one socket, {res['clients']} clients, "
        f"{res['rolls']} rolling restarts per run",
        "",
        "| run | failed requests | p50 ms (steady) | p99 ms (steady) | p99 ratio | longest no-response ms "
        "| one roll s | load (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        d, s = r["restarts"], r["steady"]  # type: ignore[index]
        lines.append(
            f"| {i} | {d['failed']} of {d['requests'] + d['failed']} | {d['p50_ms']:.1f} ({s['p50_ms']:.1f}) | "
            f"{d['p99_ms']:.1f} ({s['p99_ms']:.1f}) | {r['p99_ratio']:.2f}x | {d['longest_gap_ms']:.0f} | "
            f"{r['roll_s']:.1f} | {r['load_1m']:.1f} |"
        )
    failed = sum(r["restarts"]["failed"] for r in runs)  # type: ignore[index]
    ratio = statistics.median(r["p99_ratio"] for r in runs)  # type: ignore[misc]
    roll = statistics.median(r["roll_s"] for r in runs)  # type: ignore[misc]
    summary = f"{failed} failed requests in all; medians: p99 during restarts {ratio:.2f}x steady, one roll {roll:.1f}s"
    lines += ["", summary]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rolls", type=int, default=5, help="rolling restarts per run, back to back")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1}: {args.instances} instances, {args.clients} clients, {args.rolls} rolls...", flush=True)
        runs.append(measure(args.instances, args.clients, args.rolls, args.steady_seconds, admin))
    _empty_redis(BENCH_REDIS)
    res = {"instances": args.instances, "clients": args.clients, "rolls": args.rolls, "runs": runs}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "instances.json").write_text(json.dumps(res, indent=2))
    print(report(res))


if __name__ == "__main__":
    main()
