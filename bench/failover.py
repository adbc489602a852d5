"""Failover of a singleton: the holding daemon SIGKILLed, until beat runs under another daemon.

    python bench/failover.py [--failovers 20] [--daemons 3] [--no-celery] [--seed 1]

Three daemons share one database (created for the run, dropped after) and run `beat` with
`singleton = "db"`. One holds the advisory lock and runs it; the others stand by and try every
second. Each failover SIGKILLs the holding daemon (its copy dies with it), starts a fresh daemon
in its place, and times how long until the new copy's first line. Two kinds of beat:

- recorder: a tiny Python program that appends "PID TIME" to a shared file every 10 ms. Overlaps
  are read from that file: a copy whose first line comes before an earlier copy's last line.
- celery: the example stack's real `celery beat` (examples/webstack, Redis broker in database
  14). Its first line of output is its first instruction, and its first "Sending due task" is
  its first scheduled task. An overlap is a new beat's first line before the old beat's process
  was gone (polled every millisecond).

Reported: the failover time's median and max, and the overlaps counted. Writes
bench/results/failover.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
REDIS = (os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14"
RECORDER = (
    "import os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
    "while True:\n"
    "    os.write(fd, f'{os.getpid()} {time.time():.6f}\\n'.encode())\n"
    "    time.sleep(0.01)\n"
)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(interval)


class Daemon:
    """One `supervisor run` with beat as a singleton."""

    def __init__(self, where: Path, url: str, kind: str, record: Path) -> None:
        from supervisor.client.api import Client

        where.mkdir(parents=True)
        self.socket = str(where / "s.sock")
        self.log = where / "log"
        if kind == "recorder":
            beat = f"command = {json.dumps([PY, '-c', RECORDER, str(record)])}\n"
        else:
            argv = ["celery", "-A", "app.worker", "beat", "--loglevel=INFO", "--schedule", str(where / "schedule")]
            beat = f'command = {json.dumps(argv)}\ncwd = "{ROOT / "examples" / "webstack"}"\n'
        (where / "supervisor.toml").write_text(
            f'[supervisor]\nsocket = "{self.socket}"\nhttp = ""\nlog_format = "json"\n'
            f'[dependencies.db]\ntype = "postgres"\nurl = "{url}"\ninterval = "0.2s"\n'
            f'[programs.beat]\n{beat}singleton = "db"\ndepends_on = ["db"]\nmin_uptime = "0s"\n'
        )
        env = {**os.environ, "REDIS_URL": REDIS, "DATABASE_URL": url, "APP_QUEUE": "bench-failover"}
        env["BEAT_INTERVAL"] = "1"
        env["PATH"] = f"{Path(PY).parent}:{env.get('PATH', '')}"
        self.proc = subprocess.Popen(
            [PY, "-m", "supervisor", "run", "--config", str(where / "supervisor.toml")],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=where,
        )
        self.client = Client(self.socket, timeout=5)

    def beat(self) -> dict[str, Any] | None:
        """Beat's status entry, or None while the daemon does not answer."""
        try:
            code, doc = self.client.request("GET", "/v1/status")
        except Exception:
            return None
        return next((u for u in doc["units"] if u["name"] == "beat"), None) if code == 200 else None

    def output_after(self, since: float, needle: str = "", name: str = "program.output") -> float | None:
        """The wall time of beat's first output line (or event ``name``) after ``since`` (containing ``needle``)."""
        for raw in self.log.read_bytes().splitlines():
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("event") != name or needle not in event.get("line", ""):
                continue
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            if at >= since:
                return at
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def earliest(live: list[Daemon], since: float, needle: str = "", name: str = "program.output") -> float | None:
    """The first such line (or event) after ``since`` in any live daemon's log."""
    return min((t for d in live if (t := d.output_after(since, needle, name)) is not None), default=None)


def runs(record: Path) -> dict[int, tuple[float, float]]:
    out: dict[int, tuple[float, float]] = {}
    for line in record.read_text().splitlines():
        pid_text, _, at_text = line.partition(" ")
        if at_text:
            pid, at = int(pid_text), float(at_text)
            first, last = out.get(pid, (at, at))
            out[pid] = (min(first, at), max(last, at))
    return out


def overlaps(record: Path) -> int:
    ordered = sorted(runs(record).values())
    return sum(1 for (_, end), (start, _) in pairwise(ordered) if start <= end)


def gone_at(pid: int, stop: threading.Event, out: dict[int, float]) -> None:
    """Note when process ``pid`` is gone (or a zombie), polling every millisecond."""
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.001)
    out[pid] = time.time()


def failovers(kind: str, url: str, n: int, daemons: int, rng: random.Random) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"failover-{kind}-"))
    record = base / "runs.txt"
    live = [Daemon(base / f"d{i}", url, kind, record) for i in range(daemons)]
    made = daemons
    took: list[float] = []
    first_task: list[float] = []
    spawn: list[float] = []  # celery: to the spawn, before Celery's own start-up
    late_deaths = 0
    try:
        for i in range(n):
            holder = wait_for(
                lambda: next((d for d in live if (b := d.beat()) and b["state"] == "running" and b["pid"]), None),
                120,
                "a holder",
                0.01,
            )
            # Every daemon up (one running, the rest standing by), then the kill at a random point
            # of the standbys' one-second cycle, as a lost node would come.
            wait_for(lambda: all((b := d.beat()) and b["state"] in ("running", "standby") for d in live), 60, "all up")
            time.sleep(0.5 + rng.uniform(0.0, 1.0))
            pid = holder.beat()["pid"]  # type: ignore[index]
            if kind == "celery":
                wait_for(lambda h=holder: h.output_after(0, "Sending due task"), 60, "the holder's first task", 0.05)
            dead: dict[int, float] = {}
            stop = threading.Event()
            watcher = threading.Thread(target=gone_at, args=(pid, stop, dead), daemon=True)
            watcher.start()
            killed_at = time.time()
            holder.proc.kill()
            holder.proc.wait()
            live.remove(holder)
            if kind == "recorder":
                before = set(runs(record))

                def new_copy(known: set[int] = before) -> float | None:
                    starts = [s for p, (s, _) in runs(record).items() if p not in known]
                    return min(starts) if starts else None

                started = wait_for(new_copy, 30, "the new copy's first line", 0.005)
            else:
                started = wait_for(lambda k=killed_at: earliest(live, k), 60, "the new beat's first line", 0.01)
                task = wait_for(
                    lambda k=killed_at: earliest(live, k, "Sending due task"), 60, "the new beat's first task", 0.05
                )
                first_task.append(task - killed_at)
                spawned = wait_for(
                    lambda k=killed_at: earliest(live, k, name="program.started"), 10, "the new beat's spawn", 0.05
                )
                spawn.append(spawned - killed_at)
            watcher.join(10)
            stop.set()
            if dead.get(pid, killed_at) > started:
                late_deaths += 1
            took.append(started - killed_at)
            print(f"{kind} failover {i + 1}: {took[-1]:.3f} s", flush=True)
            live.append(Daemon(base / f"d{made}", url, kind, record))
            made += 1
    finally:
        for d in live:
            d.stop()
    res: dict[str, Any] = {
        "failovers": n,
        "daemons": daemons,
        "seconds": [round(t, 3) for t in took],
        "median_s": round(statistics.median(took), 3),
        "max_s": round(max(took), 3),
        "overlaps": overlaps(record) if kind == "recorder" else late_deaths,
    }
    if spawn:
        res["spawn_median_s"] = round(statistics.median(spawn), 3)
        res["spawn_max_s"] = round(max(spawn), 3)
    if first_task:
        res["first_task_median_s"] = round(statistics.median(first_task), 3)
        res["first_task_max_s"] = round(max(first_task), 3)
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failovers", type=int, default=20)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--no-celery", action="store_true", help="the recorder only")
    parser.add_argument("--only", choices=("recorder", "celery"), help="one kind of beat")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import psycopg

    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    res: dict[str, Any] = {}
    try:
        kinds = ("recorder",) if args.no_celery else ("recorder", "celery")
        for kind in (args.only,) if args.only else kinds:
            res[kind] = failovers(kind, url, args.failovers, args.daemons, random.Random(args.seed))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _empty_redis()
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "failover.json").write_text(json.dumps(res, indent=2) + "\n")
    print(report(res))


def _empty_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        keys = [k for k in client.scan_iter() if b"bench-failover" in k or k.startswith(b"_kombu")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def report(res: dict[str, Any]) -> str:
    lines = [
        "| beat | failovers | first line: median | max | overlaps | spawn (median, max) | first task (median, max) |",
        "|---|---|---|---|---|---|---|",
    ]

    def pair(r: dict[str, Any], what: str) -> str:
        return f"{r[what + '_median_s']:.2f} s, {r[what + '_max_s']:.2f} s" if what + "_median_s" in r else "-"

    for kind, r in res.items():
        lines.append(
            f"| {kind} | {r['failovers']} | {r['median_s']:.2f} s | {r['max_s']:.2f} s | {r['overlaps']} "
            f"| {pair(r, 'spawn')} | {pair(r, 'first_task')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
