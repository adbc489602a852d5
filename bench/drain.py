"""A replica taken out with SIGTERM behind a load balancer that honours readiness: drain 5s against drain 0.

    python bench/drain.py [--rounds 3] [--clients 8] [--check-interval 1.0]

Two daemons run the example stack (conf/supervisor.toml: real Postgres, Redis, uvicorn, Celery),
each with its own web port, control socket and /readyz port, on one database. The load balancer is
simulated on the client side: bench/handover.py's clients, each request sent round robin to the
backends in rotation, and a checker that asks each backend's /readyz every --check-interval and
drops a backend at its first failed check (HAProxy's `fall 1`). Once the load runs, one replica
gets SIGTERM; the run ends a second after it has exited. Reported per drain setting: failed
requests from the SIGTERM on, per round and their median. The SIGTERM comes at a random point of the
checker's cycle (--seed). Writes bench/results/drain.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from handover import Load, ours_config, stack_env
from run import BENCH_REDIS, OURS, ROOT, _empty_redis, _get, socket_port, wait_for


class Balancer:
    """Round robin over the backends whose /readyz passed its last check."""

    def __init__(self, backends: dict[int, int], interval_s: float) -> None:
        self.backends = backends  # web port -> /readyz port
        self.interval_s = interval_s
        self.in_rotation = list(backends)
        self.dropped_at: dict[int, float] = {}
        self._next = itertools.count()
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def pick(self) -> int:
        """The port of the next request."""
        with self._lock:
            return self.in_rotation[next(self._next) % len(self.in_rotation)]

    def check(self) -> None:
        """Ask each backend in rotation for /readyz; drop it at its first failure."""
        while not self.stop.wait(self.interval_s):
            for web, ready in list(self.backends.items()):
                if web in self.in_rotation and not _get(f"http://127.0.0.1:{ready}/readyz"):
                    with self._lock:
                        if len(self.in_rotation) > 1:
                            self.in_rotation.remove(web)
                            self.dropped_at[web] = time.monotonic()


def replica(work: Path, url: str, drain: str) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start one daemon of the example stack; return it, its web port and its /readyz port."""
    work.mkdir()
    with socket_port() as port, socket_port() as http:
        pass
    env = {**stack_env(work, url, port), "SUPERVISOR_HTTP": f"127.0.0.1:{http}", "SUPERVISOR_DRAIN": drain}
    env["APP_QUEUE"] = "bench-drain"
    conf = ours_config(work, "start-first")
    log = open(work / "log", "wb")  # noqa: SIM115 - lives with the daemon
    proc = subprocess.Popen([OURS, "run", "--config", str(conf)], env=env, stdout=log, stderr=log)
    return proc, port, http


def one_round(
    base: Path, url: str, drain: str, clients: int, interval_s: float, rng: random.Random
) -> dict[str, float]:
    """Two replicas under load; SIGTERM one; count what fails from then on."""
    procs = []
    try:
        a, a_port, a_http = replica(base / "a", url, drain)
        procs.append(a)
        b, b_port, b_http = replica(base / "b", url, drain)
        procs.append(b)
        for http in (a_http, b_http):
            wait_for(lambda http=http: _get(f"http://127.0.0.1:{http}/readyz"), 120, "a replica ready", 0.05)
        lb = Balancer({a_port: a_http, b_port: b_http}, interval_s)
        checker = threading.Thread(target=lb.check, daemon=True)
        checker.start()
        load = Load(0, clients, pick=lb.pick)
        threads = load.run()
        # Both serve; the SIGTERM then comes at a random point of the checker's cycle, as it would.
        time.sleep(2.0 + rng.uniform(0, interval_s))
        sent_at = time.monotonic()
        b.send_signal(signal.SIGTERM)
        b.wait(60)
        gone_at = time.monotonic()
        time.sleep(1.0)
        end = time.monotonic()
        load.stop.set()
        lb.stop.set()
        for t in threads:
            t.join(40)
        ok = sum(1 for s, _ in load.done if sent_at <= s < end)
        failed = sum(1 for t, _ in load.failed if sent_at <= t < end)
        dropped = lb.dropped_at.get(b_port)
        return {
            "failed": failed,
            "requests": ok + failed,
            "exit_after_s": gone_at - sent_at,
            "dropped_after_s": float("nan") if dropped is None else dropped - sent_at,
            "errors": sorted({e for t, e in load.failed if t >= sent_at}),  # type: ignore[dict-item]
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # no drain: the round is over
                proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--check-interval", type=float, default=1.0, help="seconds between /readyz checks")
    args = parser.parse_args()
    import psycopg

    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    rng = random.Random(args.seed)
    res: dict[str, object] = {"clients": args.clients, "check_interval_s": args.check_interval, "drain": {}}
    try:
        for drain in ("5s", "0s"):
            rounds = []
            for i in range(args.rounds):
                print(f"drain {drain}, round {i + 1}...", flush=True)
                where = Path(tempfile.mkdtemp(prefix="drain-"))
                rounds.append(one_round(where, url, drain, args.clients, args.check_interval, rng))
            res["drain"][drain] = {  # type: ignore[index]
                "rounds": rounds,
                "failed_median": statistics.median(r["failed"] for r in rounds),
                "requests_median": statistics.median(r["requests"] for r in rounds),
                "exit_after_s_median": statistics.median(r["exit_after_s"] for r in rounds),
            }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _empty_redis(BENCH_REDIS)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "drain.json").write_text(json.dumps(res, indent=2))
    print(report(res))


def report(res: dict) -> str:
    lines = ["| drain | failed requests per round (median) | requests after SIGTERM (median) | exit after SIGTERM |"]
    lines.append("|---|---|---|---|")
    for drain, r in res["drain"].items():
        fails = ", ".join(str(x["failed"]) for x in r["rounds"])
        exit_s = r["exit_after_s_median"]
        lines.append(f"| {drain} | {fails} ({r['failed_median']:g}) | {r['requests_median']:g} | {exit_s:.1f} s |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
