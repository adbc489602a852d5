"""Side-by-side benchmarks: this supervisor, s6 and supervisord 4.3, the same workloads, one run.

    make bench            # or: python bench/run.py --supervisord .venv-supervisord/bin

s6 comes from the distribution (`apt-get install s6`); without it, its columns are skipped with
a note. The sections alternate the daemons (ours, s6, supervisord, then again), so the load of a
shared machine falls on each alike, and the 1-minute load average is recorded per section.
Prints a Markdown table (median, min-max, ratio, goal) and writes bench/results/latest.json.
Every figure is measured here, on this machine, in this run; nothing is copied from elsewhere.
`--only SECTION` re-measures one section into the last results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import peers  # bench/ is on the path when run as a script
import psutil
import stack_cost
import watch_cost
from report import report

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "bench" / "build"
PY = sys.executable
OURS = str(Path(PY).with_name("supervisor"))


def now_ns() -> int:
    return time.monotonic_ns()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.0005) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(interval)


def build_stamp() -> str:
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "stamp"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(ROOT / "bench" / "stamp.c")], check=True)
    return str(binary)


def stamps(path: Path) -> list[tuple[int, int]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in text.splitlines() if line.strip())]


# ---- the two daemons ----------------------------------------------------------------------


class Ours:
    name = "supervisor"

    def __init__(self, work: Path, programs: dict[str, list[str]], extra: str = "", program_extra: str = "") -> None:
        self.work = work
        self.socket = str(work / "s.sock")
        lines = [
            f'[supervisor]\nsocket = "{self.socket}"\nhttp = ""\nlog_format = "json"\nshutdown_timeout = "30s"\n'
            + extra
        ]
        for name, argv in programs.items():
            lines.append(
                f"[programs.{name}]\ncommand = {json.dumps(argv)}\n"
                'restart = { backoff = { initial = 0, jitter = 0 }, reset_after = "1s", max_restarts = 100000 }\n'
                + program_extra
            )
        self.conf = work / "ours.toml"
        self.conf.write_text("\n".join(lines))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [OURS, "run", "--config", str(self.conf)],
            stdout=open(self.work / "ours.log", "wb"),  # noqa: SIM115 - lives with the daemon
            stderr=subprocess.STDOUT,
        )

    def status_cmd(self) -> list[str]:
        return [OURS, "status", "--socket", self.socket]


class Supervisord:
    name = "supervisord"

    def __init__(self, work: Path, programs: dict[str, list[str]], bindir: Path) -> None:
        self.work = work
        self.bindir = bindir
        sock = work / "sd.sock"
        parts = [
            f"""[unix_http_server]
file={sock}
[supervisord]
nodaemon=true
logfile={work}/supervisord.log
pidfile={work}/supervisord.pid
childlogdir={work}
minfds=1024
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{sock}
"""
        ]
        for name, argv in programs.items():
            parts.append(f"""[program:{name}]
command={" ".join(argv)}
autorestart=true
startsecs=0
startretries=100000
stopwaitsecs=10
stdout_logfile=NONE
stderr_logfile=NONE
""")
        self.conf = work / "supervisord.conf"
        self.conf.write_text("\n".join(parts))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(self.bindir / "supervisord"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def status_cmd(self) -> list[str]:
        return [str(self.bindir / "supervisorctl"), "-c", str(self.conf), "status"]


def stop(daemon: Ours | Supervisord | peers.S6) -> float:
    """SIGTERM the daemon; return seconds until it is gone."""
    assert daemon.proc is not None
    began = time.monotonic()
    if isinstance(daemon, peers.S6):
        daemon.stop()
    else:
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(60)
    return time.monotonic() - began


def make(
    kind: str, work: Path, names: list[str], stamp: str, bindir: Path
) -> tuple[Ours | Supervisord | peers.S6, dict[str, Path]]:
    """A daemon of ``kind`` running the stamp binary as each named program; where each writes its stamps."""
    if kind == "s6":
        s6 = peers.S6(work, names, stamp)
        return s6, {name: s6.stamp_file(name) for name in names}
    files = {name: work / f"stamps-{name}" for name in names}
    programs = {name: [stamp, str(files[name])] for name in names}
    return (Ours(work, programs) if kind == "ours" else Supervisord(work, programs, bindir)), files


# ---- the workloads ------------------------------------------------------------------------


def restart_latency(kind: str, stamp: str, base: Path, kills: int, bindir: Path) -> list[float]:
    """kill -9 of a child that ran > 1 s -> the new child's first instruction, in ms."""
    work = Path(tempfile.mkdtemp(dir=base))
    daemon, files = make(kind, work, ["victim"], stamp, bindir)
    out = files["victim"]
    daemon.start()
    samples = []
    try:
        wait_for(lambda: stamps(out), 15, "the first start")
        for _ in range(kills):
            time.sleep(1.2)  # a stable program: it ran more than a second
            _, pid = stamps(out)[-1]
            t0 = now_ns()
            os.kill(pid, signal.SIGKILL)
            new = wait_for(lambda p=pid: (s := stamps(out)) and s[-1][1] != p and s[-1], 15, "the restart")
            samples.append((new[0] - t0) / 1e6)  # type: ignore[index]
    finally:
        stop(daemon)
    return samples


def start_many(kind: str, stamp: str, base: Path, n: int, bindir: Path, warm: bool = True) -> dict[str, float]:
    """Start n children -> all have run their first instruction; RSS; graceful stop.

    ``warm``: our configuration was validated before in the same environment (``supervisor
    check``, as a restart of the daemon or systemd's ExecStartPre finds it), so ``run`` reads
    the cached result; cold, ``run`` validates in a child first.
    """
    work = Path(tempfile.mkdtemp(dir=base))
    daemon, named = make(kind, work, [f"p{i}" for i in range(n)], stamp, bindir)
    files = list(named.values())
    if kind == "ours" and warm:
        assert isinstance(daemon, Ours)
        subprocess.run([OURS, "check", "--config", str(daemon.conf)], check=True, stdout=subprocess.DEVNULL)
    t0 = now_ns()
    daemon.start()
    wait_for(lambda: all(f.exists() and f.stat().st_size for f in files), 60, f"{n} children", interval=0.002)
    last = max(stamps(f)[0][0] for f in files)
    result = {"start_s": (last - t0) / 1e9}
    assert daemon.proc is not None
    time.sleep(1.0)  # settle: the first health of the loop, imports done
    result["rss_mb"] = psutil.Process(daemon.proc.pid).memory_info().rss / 1e6
    result["stop_s"] = stop(daemon)
    return result


def idle_side_by_side(stamp: str, base: Path, n: int, bindir: Path, idle_s: float) -> dict[str, dict[str, float]]:
    """Both daemons with n sleeping children, measured over the same window."""
    daemons = {}
    for kind in ("ours", "supervisord"):
        work = Path(tempfile.mkdtemp(dir=base))
        programs = {f"p{i}": [stamp, str(work / f"s{i}")] for i in range(n)}
        daemons[kind] = (Ours(work, programs) if kind == "ours" else Supervisord(work, programs, bindir), work)
    for daemon, _ in daemons.values():
        daemon.start()
    for _, work in daemons.values():
        wait_for(lambda w=work: all((w / f"s{i}").exists() for i in range(n)), 60, "children")
    time.sleep(2.0)
    procs = {k: psutil.Process(d.proc.pid) for k, (d, _) in daemons.items()}  # type: ignore[union-attr]
    before = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
    # CPU time ticks at 10 ms; context switches count every wake-up, however short.
    switches = {k: sum(p.num_ctx_switches()) for k, p in procs.items()}
    time.sleep(idle_s)
    out = {
        k: {
            "idle_cpu_ms_per_s": (sum(p.cpu_times()[:2]) - before[k]) * 1000 / idle_s,
            "wakeups_per_s": (sum(p.num_ctx_switches()) - switches[k]) / idle_s,
            "rss_mb": p.memory_info().rss / 1e6,
        }
        for k, p in procs.items()
    }
    for daemon, _ in daemons.values():
        stop(daemon)
    return out


def kill_supervisor(kind: str, stamp: str, base: Path, bindir: Path) -> int:
    """kill -9 of the supervisor -> how many of its 3 children are alive 2 s later."""
    work = Path(tempfile.mkdtemp(dir=base))
    programs = {f"p{i}": [stamp, str(work / f"s{i}")] for i in range(3)}
    daemon = Ours(work, programs) if kind == "ours" else Supervisord(work, programs, bindir)
    daemon.start()
    wait_for(lambda: all(stamps(work / f"s{i}") for i in range(3)), 15, "children")
    pids = [stamps(work / f"s{i}")[-1][1] for i in range(3)]
    assert daemon.proc is not None
    daemon.proc.kill()
    daemon.proc.wait()
    time.sleep(2.0)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    return len(alive)


def status_time(kind: str, stamp: str, base: Path, bindir: Path, runs: int) -> list[float]:
    """Whole-process wall time of `status` with ten programs, in ms."""
    work = Path(tempfile.mkdtemp(dir=base))
    programs = {f"p{i}": [stamp, str(work / f"s{i}")] for i in range(10)}
    daemon = Ours(work, programs) if kind == "ours" else Supervisord(work, programs, bindir)
    daemon.start()
    wait_for(lambda: all(stamps(work / f"s{i}") for i in range(10)), 15, "children")
    time.sleep(0.5)
    samples = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(daemon.status_cmd(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append((time.monotonic() - t0) * 1000)
    stop(daemon)
    return samples


def hung_http(base: Path, runs: int) -> list[float]:
    """SIGSTOP of an HTTP child with a 1 s interval / 1 s timeout check -> a new child serving (s)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = Path(tempfile.mkdtemp(dir=base))
    http_ok = ROOT / "tests" / "programs" / "http_ok.py"
    extra = (
        f'listen = "127.0.0.1:{port}"\nstop_timeout = "1s"\n'
        f'health = {{ http = "http://127.0.0.1:{port}/", interval = "1s", timeout = "1s", failure_threshold = 1 }}\n'
    )
    daemon = Ours(work, {"web": [PY, str(http_ok)]}, program_extra=extra)
    daemon.start()

    def serving() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.2) as resp:
                return resp.read().decode().split()[1]
        except OSError:
            return None

    samples = []
    try:
        for _ in range(runs):
            pid = wait_for(serving, 30, "web serving")
            time.sleep(1.5)
            t0 = time.monotonic()
            os.kill(int(pid), signal.SIGSTOP)  # type: ignore[arg-type]
            wait_for(lambda p=pid: (q := serving()) and q != p, 30, "a new web", interval=0.01)
            samples.append(time.monotonic() - t0)
    finally:
        stop(daemon)
    return samples


def stack_ready(base: Path, runs: int) -> dict[str, list[float]]:
    """`supervisor run` -> the example stack ready, beside the old entrypoint.sh flow."""
    import psycopg

    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    out: dict[str, list[float]] = {
        "supervisor_web_s": [],
        "supervisor_all_s": [],
        "entrypoint_web_s": [],
        "supervisor_web_migrated_s": [],
        "entrypoint_web_migrated_s": [],
        # Where our fresh start goes, from the daemon's own log (seconds since `run` began)...
        "phase_dependencies_ready_s": [],
        "phase_migration_s": [],
        "phase_web_boot_s": [],
        # ...and the old flow's two steps, each timed alone on the same database and code.
        "alembic_alone_fresh_s": [],
        "uvicorn_alone_s": [],
    }
    warmed = False
    for _ in range(runs):
        for flow in ("supervisor", "entrypoint"):
            name = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = admin.rsplit("/", 1)[0] + "/" + name
            work = Path(tempfile.mkdtemp(dir=base))
            with socket_port() as port:
                pass
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "PORT": str(port),
                "STATE_DIR": str(work),
                "SUPERVISOR_SOCKET": str(work / "s.sock"),
                "SUPERVISOR_HTTP": "",
                "LOG_FORMAT": "json",
                "WEB_HEALTH_INTERVAL": "1s",
                "PATH": f"{Path(PY).parent}:{os.environ['PATH']}",
                "REDIS_URL": BENCH_REDIS,
                "APP_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            }
            # First against an empty database, then again against the one it just migrated:
            # the everyday restart, where the supervisor skips alembic and the old flow runs it.
            if not warmed:  # as an image build would: `check` caches the migration scripts' heads
                conf = str(ROOT / "conf" / "supervisor.toml")
                subprocess.run([OURS, "check", "--config", conf], env=env, check=True, stdout=subprocess.DEVNULL)
                warmed = True
            if flow == "entrypoint":
                _steps_alone(out, env, port)
            for suffix in ("", "_migrated"):
                t0 = time.monotonic()
                wall0 = time.time()
                if flow == "supervisor":
                    proc = subprocess.Popen(
                        [OURS, "run", "--config", str(ROOT / "conf" / "supervisor.toml")],
                        env=env,
                        stdout=open(work / "log", "wb"),  # noqa: SIM115 - lives with the process
                        stderr=subprocess.STDOUT,
                    )
                else:
                    script = (
                        "until (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null; do sleep 1; done\n"  # nc -z without nc
                        "for i in 1 2 3 4 5; do alembic upgrade head && break; sleep 5; done\n"
                        f"exec uvicorn app.main:app --host 127.0.0.1 --port {port}\n"
                    )
                    proc = subprocess.Popen(
                        ["bash", "-c", script],
                        env=env,
                        cwd=ROOT / "examples" / "webstack",
                        stdout=open(work / "log", "wb"),  # noqa: SIM115 - lives with the process
                        stderr=subprocess.STDOUT,
                    )
                wait_for(lambda p=port: _get(f"http://127.0.0.1:{p}/health"), 60, "web /health", interval=0.01)
                out[f"{flow}_web{suffix}_s"].append(time.monotonic() - t0)
                if flow == "supervisor" and not suffix:
                    _phases(out, work / "log", wall0)
                    status = [OURS, "status", "--quiet", "--socket", str(work / "s.sock")]
                    wait_for(lambda s=status: subprocess.run(s).returncode == 0, 60, "all ready", interval=0.05)
                    out["supervisor_all_s"].append(time.monotonic() - t0)
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _empty_redis(BENCH_REDIS)
    return out


def _phases(out: dict[str, list[float]], log: Path, wall0: float) -> None:
    """Read the phases of one fresh start from the daemon's JSON log."""
    from datetime import datetime

    at: dict[tuple[str, str], float] = {}
    for raw in log.read_bytes().splitlines():
        try:
            ev = json.loads(raw)
        except ValueError:
            continue
        key = (ev.get("event", ""), ev.get("dependency") or ev.get("job") or ev.get("program") or "")
        if key not in at and "timestamp" in ev:
            at[key] = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00")).timestamp()
    deps = [t for (event, _), t in at.items() if event == "dependency.ready"]
    out["phase_dependencies_ready_s"].append(max(deps) - wall0)
    out["phase_migration_s"].append(at[("job.succeeded", "migrate")] - at[("job.started", "migrate")])
    out["phase_web_boot_s"].append(at[("program.ready", "web")] - at[("program.started", "web")])


def _steps_alone(out: dict[str, list[float]], env: dict[str, str], port: int) -> None:
    """Time the old flow's two steps one at a time: `alembic upgrade head` on the fresh database, then uvicorn."""
    cwd = ROOT / "examples" / "webstack"
    t0 = time.monotonic()
    subprocess.run(["alembic", "upgrade", "head"], env=env, cwd=cwd, check=True, capture_output=True)
    out["alembic_alone_fresh_s"].append(time.monotonic() - t0)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _get(f"http://127.0.0.1:{port}/health"), 60, "uvicorn alone", interval=0.01)
    out["uvicorn_alone_s"].append(time.monotonic() - t0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    # Back to an empty database, so the old flow's own run migrates from scratch as before.
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


# Celery's keys from the stack runs go to a Redis database of their own, emptied afterwards.
BENCH_REDIS = (os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14"


def _empty_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = [k for k in client.scan_iter() if k.startswith((b"bench-", b"_kombu.", b"unacked"))]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class socket_port:
    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return int(self.s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.s.close()


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return resp.status == 200
    except OSError:
        return False


# ---- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supervisord", type=Path, required=True, help="bin/ of the supervisord virtualenv")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--stack-idle-seconds", type=float, default=30.0)
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--skip-stack", action="store_true")
    parser.add_argument(
        "--only",
        choices=["restart", "many", "idle", "status", "stack", "stack_cost", "watch"],
        help="re-measure one section into the last results",
    )
    args = parser.parse_args()
    latest = ROOT / "bench" / "results" / "latest.json"
    if args.only:
        res = json.loads(latest.read_text())
    else:
        res = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
            "load": [],
        }
    svscan = peers.available()
    res["s6"] = (
        None
        if svscan is None
        else subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}", "s6"], capture_output=True, text=True
        ).stdout.strip()
        or svscan
    )
    kinds = ("ours", "s6", "supervisord") if svscan else ("ours", "supervisord")
    if svscan is None:
        print("note: s6 is not installed (apt-get install s6): the s6 columns are skipped", flush=True)
    stamp = build_stamp()
    base = Path(tempfile.mkdtemp(prefix="supbench-"))
    bindir = args.supervisord

    def section(name: str) -> bool:
        if args.only and args.only != name:
            return False
        print(f"{name}...", flush=True)
        res.setdefault("load", []).append((name, os.getloadavg()[0]))
        return True

    if section("restart"):
        # Interleaved: two rounds, each daemon in turn, so the machine's load falls on all alike.
        res["restart_ms"] = {k: [] for k in kinds}
        for _ in range(2):
            for k in kinds:
                res["restart_ms"][k] += restart_latency(k, stamp, base, args.kills // 2, bindir)
    if section("many"):
        res["many"] = {k: [] for k in kinds}
        res["many_cold"] = []
        for _ in range(args.runs):
            for k in kinds:
                res["many"][k].append(start_many(k, stamp, base, args.children, bindir))
            res["many_cold"].append(start_many("ours", stamp, base, args.children, bindir, warm=False))
    if section("idle"):
        res["idle_seconds"] = args.idle_seconds
        res["idle"] = idle_side_by_side(stamp, base, args.children, bindir, args.idle_seconds)
        res["orphans"] = {k: kill_supervisor(k, stamp, base, bindir) for k in ("ours", "supervisord")}
    if section("status"):
        res["status_ms"] = {"ours": [], "supervisord": []}
        for _ in range(2):  # two daemons of each, alternating, 10 runs each
            for k in ("ours", "supervisord"):
                res["status_ms"][k] += status_time(k, stamp, base, bindir, 10)
    if section("watch"):
        res["watch"] = watch_cost.measure(30.0, 1.0, 10)
        res["hung_http_s"] = hung_http(base, 5)
    if not args.skip_stack:
        if section("stack"):
            res["stack"] = stack_ready(base, args.runs)
        if section("stack_cost"):
            res["stack_cost"] = stack_cost.measure(bindir, args.stack_idle_seconds, 2)
    res.setdefault("load", []).append(("end", os.getloadavg()[0]))
    shutil.rmtree(base, ignore_errors=True)
    latest.parent.mkdir(exist_ok=True)
    latest.write_text(json.dumps(res, indent=2))
    print(report(res))


if __name__ == "__main__":
    main()
