"""Restarts of the example web app under load: start-first, stop-first and supervisord, one run.

    python bench/handover.py --supervisord .venv-supervisord/bin [--restarts 20] [--clients 4 16]

For each order and client count: the example stack runs (real Postgres, Redis, uvicorn, Celery),
clients open a new connection per request to /livez, and `supervisor restart web` runs N times
(supervisord: `supervisorctl restart web` of the same uvicorn on a port, its only way). Reported:
failed requests, p50/p99/max latency during the restarts against the steady state, and the longest
time with no response. Then kill -9 of a web that ran 2 s -> its successor's first instruction,
with default restart settings. Writes bench/results/handover.json.
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
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BENCH_REDIS, OURS, PY, ROOT, _empty_redis, _get, build_stamp, socket_port, stamps, wait_for


@dataclass
class Load:
    """Clients opening a new connection per request; every outcome with its instants."""

    port: int
    clients: int
    done: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of successes
    failed: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    pick: Callable[[], int] | None = None  # the port of each request (a load balancer's choice); else ``port``

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for t in threads:
            t.start()
        return threads

    def _client(self) -> None:
        deadline = time.monotonic() + 1800
        while not self.stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            port = self.pick() if self.pick is not None else self.port
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=30) as resp:
                    resp.read()
                self.done.append((t0, time.monotonic()))
            except OSError as exc:
                self.failed.append((t0, type(exc).__name__))
                time.sleep(0.01)  # a refused connection comes back at once: do not spin


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def window(load: Load, since: float, until: float) -> dict[str, float]:
    lat = [(e - s) * 1000 for s, e in load.done if since <= s < until]
    ends = sorted(e for s, e in load.done if since <= e < until)
    gaps = [b - a for a, b in zip([since, *ends], [*ends, until], strict=True)]
    return {
        "requests": len(lat),
        "failed": sum(1 for t, _ in load.failed if since <= t < until),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "max_ms": max(lat) if lat else float("nan"),
        "longest_gap_ms": max(gaps) * 1000 if gaps else float("nan"),
    }


def stack_env(work: Path, url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "STATE_DIR": str(work),
        "SUPERVISOR_SOCKET": str(work / "s.sock"),
        "SUPERVISOR_HTTP": "",
        "LOG_FORMAT": "json",
        "PATH": f"{Path(PY).parent}:{os.environ['PATH']}",
        "REDIS_URL": BENCH_REDIS,
        "APP_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
    }


def ours_config(work: Path, order: str) -> Path:
    """conf/supervisor.toml with the web program's restart order set, paths made absolute."""
    text = (ROOT / "conf" / "supervisor.toml").read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('order = "start-first"', f'order = "{order}"')
    conf = work / "supervisor.toml"
    conf.write_text(text)
    return conf


def supervisord_config(work: Path, port: int, env: dict[str, str]) -> Path:
    """The same uvicorn under supervisord, on its own port (supervisord hands over no socket)."""
    keep = ("DATABASE_URL", "REDIS_URL", "APP_QUEUE", "PATH")
    environment = ",".join(f'{k}="{env[k]}"' for k in keep)
    conf = work / "supervisord.conf"
    conf.write_text(f"""[unix_http_server]
file={work}/sd.sock
[supervisord]
nodaemon=true
logfile={work}/supervisord.log
pidfile={work}/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{work}/sd.sock
[program:web]
command={Path(PY).parent}/uvicorn app.main:app --host 127.0.0.1 --port {port} --no-access-log
directory={ROOT}/examples/webstack
environment={environment}
startsecs=1
stopwaitsecs=20
""")
    return conf


def measure(kind: str, clients: int, restarts: int, steady_s: float, admin: str, bindir: Path) -> dict[str, object]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    work = Path(tempfile.mkdtemp(prefix="handover-"))
    with socket_port() as port:
        pass
    env = stack_env(work, url, port)
    log = open(work / "log", "wb")  # noqa: SIM115 - lives with the daemon
    if kind == "supervisord":
        subprocess.run([PY, "-m", "alembic", "upgrade", "head"], cwd=ROOT / "examples/webstack", env=env, check=True)
        conf = supervisord_config(work, port, env)
        proc = subprocess.Popen([str(bindir / "supervisord"), "-c", str(conf)], stdout=log, stderr=log)
        restart = [str(bindir / "supervisorctl"), "-c", str(conf), "restart", "web"]
    else:
        conf = ours_config(work, kind)
        proc = subprocess.Popen([OURS, "run", "--config", str(conf)], env=env, stdout=log, stderr=log)
        restart = [OURS, "restart", "web", "--socket", str(work / "s.sock")]
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/livez"), 90, "web", interval=0.05)
        load = Load(port, clients)
        threads = load.run()
        time.sleep(1.0)  # warm-up, not measured
        t_steady = time.monotonic()
        time.sleep(steady_s)
        t_restarts = time.monotonic()
        codes = [subprocess.run(restart, env=env, capture_output=True).returncode for _ in range(restarts)]
        time.sleep(0.5)
        t_end = time.monotonic()
        load.stop.set()
        for t in threads:
            t.join(40)
        return {
            "steady": window(load, t_steady, t_restarts),
            "restarts": window(load, t_restarts, t_end),
            "restart_s": (t_end - 0.5 - t_restarts) / restarts,
            "cli_failures": sum(1 for c in codes if c != 0),
            "errors": sorted({e for _, e in load.failed}),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def kill_latency(kind: str, kills: int, bindir: Path) -> list[float]:
    """kill -9 of a program that ran 2 s -> its successor's first instruction (ms), default settings.

    Each sample is a fresh daemon and the program's first crash: the restart the supervisor makes
    at once. (A second crash inside reset_after waits the backoff's first delay, by design.)
    """
    from run import Supervisord

    stamp = build_stamp()
    samples = []
    for _ in range(kills):
        work = Path(tempfile.mkdtemp(prefix="kill-"))
        out = work / "stamps"
        if kind == "ours":
            conf = work / "s.toml"
            conf.write_text(
                f'[supervisor]\nsocket = "{work}/s.sock"\nhttp = ""\nlog_format = "json"\n'
                f"[programs.web]\ncommand = {json.dumps([stamp, str(out)])}\n"
            )
            proc = subprocess.Popen([OURS, "run", "--config", str(conf)], stdout=subprocess.DEVNULL)
        else:
            sd = Supervisord(work, {"web": [stamp, str(out)]}, bindir)
            sd.start()
            assert sd.proc is not None
            proc = sd.proc
        try:
            wait_for(lambda out=out: stamps(out), 15, "the first start")
            time.sleep(2.0)  # it has served for a while
            _, pid = stamps(out)[-1]
            t0 = time.monotonic_ns()
            os.kill(pid, signal.SIGKILL)
            new = wait_for(lambda p=pid, out=out: (s := stamps(out)) and s[-1][1] != p and s[-1], 15, "the restart")
            samples.append((new[0] - t0) / 1e6)  # type: ignore[index]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return samples


def report(res: dict) -> str:
    lines = [
        "| clients | restart by | failed requests | p50 ms | p99 ms (steady) | max ms | longest no-response ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients, rows in res["restarts"].items():
        for kind, r in rows.items():
            d, s = r["restarts"], r["steady"]
            lines.append(
                f"| {clients} | {kind} | {d['failed']} of {d['requests'] + d['failed']} | {d['p50_ms']:.1f} | "
                f"{d['p99_ms']:.1f} ({s['p99_ms']:.1f}) | {d['max_ms']:.0f} | {d['longest_gap_ms']:.0f} |"
            )
    k = res["kill_ms"]
    lines.append("")
    ours = k["ours"]
    lines.append(
        f"kill -9 of a web that ran 2 s -> successor's first instruction, default settings: "
        f"supervisor median {statistics.median(ours):.2f} ms (min {min(ours):.2f}, max {max(ours):.2f}); "
        f"supervisord median {statistics.median(k['supervisord']):.0f} ms"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supervisord", type=Path, required=True, help="bin/ of the supervisord virtualenv")
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--steady-seconds", type=float, default=5.0)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    res: dict[str, object] = {"restarts": {}, "kill_ms": {}}
    for clients in args.clients:
        rows = {}
        for kind in ("start-first", "stop-first", "supervisord"):
            print(f"{args.restarts} restarts, {kind}, {clients} clients...", flush=True)
            rows[kind] = measure(kind, clients, args.restarts, args.steady_seconds, admin, args.supervisord)
        res["restarts"][str(clients)] = rows  # type: ignore[index]
    for kind in ("ours", "supervisord"):
        print(f"kill -9 latency, {kind}...", flush=True)
        res["kill_ms"][kind] = kill_latency(kind, args.kills, args.supervisord)  # type: ignore[index]
    _empty_redis(BENCH_REDIS)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "handover.json").write_text(json.dumps(res, indent=2))
    print(report(res))


if __name__ == "__main__":
    main()
