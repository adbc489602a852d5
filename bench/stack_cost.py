"""The example stack at rest: the daemon's RSS and idle CPU, beside supervisord running the same programs.

    python bench/stack_cost.py --supervisord .venv-supervisord/bin [--seconds 30] [--runs 2]

Each run creates a database of its own, migrates it (our daemon's job does it; for supervisord,
which has no jobs, `alembic upgrade head` runs first), starts web, worker and beat, waits until
they are up, lets them settle, then reads the daemon's CPU from /proc/PID/task/*/schedstat over
a window, and its memory from /proc/PID/status (VmRSS) and /proc/PID/smaps_rollup (Pss,
Private). Our daemon runs conf/supervisor.toml as shipped: dependency probes every 10 s once
ready (their kept connections watched in between), the web health check every 10 s, two
heartbeat-file checks every 10 s, /metrics on. The two daemons alternate, so that the machine's
other load falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from watch_cost import cpu_ns  # bench/ is on the path when run as a script

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
OURS = str(Path(PY).with_name("supervisor"))
APP = ROOT / "examples" / "webstack"
ADMIN = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_REDIS = (os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14"


def memory(pid: int) -> dict[str, float]:
    """Return the process's VmRSS, and Pss and private memory from smaps_rollup, in MB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1000
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = {ln.split(":")[0]: int(ln.split()[1]) for ln in f if ln.split()[-1] == "kB"}
    out["pss_mb"] = fields.get("Pss", 0) / 1000
    out["private_mb"] = (fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1000
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database() -> Iterator[str]:
    """A database of our own, dropped afterwards."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stack_env(work: Path, url: str, port: int) -> dict[str, str]:
    """The environment both daemons and their programs get."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "STATE_DIR": str(work),
        "SUPERVISOR_SOCKET": str(work / "s.sock"),
        "SUPERVISOR_HTTP": f"127.0.0.1:{free_port()}",
        "LOG_FORMAT": "json",
        "PATH": f"{Path(PY).parent}:{os.environ['PATH']}",
        "REDIS_URL": BENCH_REDIS,
        "APP_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
    }


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.1)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as resp:
            return resp.status == 200
    except OSError:
        return False


def window(pid: int, seconds: float) -> float:
    """The daemon's CPU over ``seconds`` of wall time, in ms per second (schedstat)."""
    ns0, t0 = cpu_ns(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_ns(pid) - ns0) / 1e6 / (time.monotonic() - t0)


def ours(seconds: float, settle_s: float) -> dict[str, float]:
    """Our daemon running conf/supervisor.toml: RSS and idle CPU once every unit is ready."""
    work = Path(tempfile.mkdtemp(prefix="stackcost-"))
    port = free_port()
    with database() as url:
        env = stack_env(work, url, port)
        with open(work / "log", "wb") as log:
            proc = subprocess.Popen(
                [OURS, "run", "--config", str(ROOT / "conf" / "supervisor.toml")], env=env, stdout=log, stderr=log
            )
        try:
            status = [OURS, "status", "--quiet", "--socket", str(work / "s.sock")]
            wait_for(
                lambda: subprocess.run(status, env=env, stderr=subprocess.DEVNULL).returncode == 0, 90, "all ready"
            )
            time.sleep(settle_s)
            result = {"idle_cpu_ms_per_s": window(proc.pid, seconds), **memory(proc.pid)}
        finally:
            proc.terminate()
            proc.wait(60)
    return result


def supervisord(bindir: Path, seconds: float, settle_s: float) -> dict[str, float]:
    """supervisord 4.3 running web (uvicorn), worker and beat with the same environment."""
    work = Path(tempfile.mkdtemp(prefix="stackcost-sd-"))
    port = free_port()
    worker = "celery -A app.worker worker --loglevel=INFO --concurrency=2 --without-mingle --without-gossip"
    programs = {
        "web": f"{Path(PY).parent}/uvicorn app.main:app --host 127.0.0.1 --port {port}",
        "worker": f"{Path(PY).parent}/{worker}",
        "beat": f"{Path(PY).parent}/celery -A app.worker beat --loglevel=INFO --schedule {work}/beat-schedule",
    }
    conf = [
        f"[unix_http_server]\nfile={work}/sd.sock\n[supervisord]\nnodaemon=true\nlogfile={work}/supervisord.log\n"
        f"pidfile={work}/supervisord.pid\nchildlogdir={work}\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
    ]
    for name, command in programs.items():
        conf.append(
            f"[program:{name}]\ncommand={command}\ndirectory={APP}\nautorestart=true\nstopasgroup=true\n"
            f"stdout_logfile={work}/{name}.out\nstderr_logfile={work}/{name}.err\n"
        )
    (work / "supervisord.conf").write_text("\n".join(conf))
    with database() as url:
        env = stack_env(work, url, port)
        subprocess.run(
            [f"{Path(PY).parent}/alembic", "upgrade", "head"], cwd=APP, env=env, check=True, capture_output=True
        )
        proc = subprocess.Popen(
            [str(bindir / "supervisord"), "-c", str(work / "supervisord.conf")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: healthy(port), 90, "web /health")
            time.sleep(settle_s)
            result = {"idle_cpu_ms_per_s": window(proc.pid, seconds), **memory(proc.pid)}
        finally:
            proc.terminate()
            proc.wait(60)
    return result


def measure(
    bindir: Path, seconds: float = 30.0, runs: int = 2, settle_s: float = 5.0
) -> dict[str, list[dict[str, float]]]:
    """Alternate the two daemons ``runs`` times each."""
    out: dict[str, list[dict[str, float]]] = {"ours": [], "supervisord": []}
    for _ in range(runs):
        out["ours"].append(ours(seconds, settle_s))
        out["supervisord"].append(supervisord(bindir, seconds, settle_s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supervisord", type=Path, required=True, help="bin/ of the supervisord virtualenv")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.supervisord, args.seconds, args.runs), indent=2))


if __name__ == "__main__":
    main()
