"""Nothing lost under chaos: the example stack under load while its processes, Postgres and Redis are hit at random.

`make test-all` runs a short soak (SOAK_SECONDS, default 40); `make soak SOAK_SECONDS=600` runs a long one and
writes its figures to bench/results/soak.json (SOAK_REPORT).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from tests.conftest import Daemon, wait_until
from tests.integration.conftest import REDIS_URL, ROOT, Proxy, server_port, stack_env, with_port

pytestmark = pytest.mark.integration

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "40"))
RATE_PER_S = float(os.environ.get("SOAK_RATE", "5"))
SEED = int(os.environ.get("SOAK_SEED", str(random.randrange(1 << 30))))
# Redelivery of a task held by a killed worker takes the broker's visibility timeout; keep it short here.
VISIBILITY_TIMEOUT_S = 15
FAULTS = (
    "kill9-web",
    "kill9-worker",
    "kill9-beat",
    "kill9-pool",
    "sigstop-worker",
    "restart-one",
    "restart-all",
    "reload",
    "cut-postgres",
    "cut-redis",
)
# Flat: what the slope adds up to over the judged part of the run stays below these. A leak of one
# fd or a few kB per fault (there are 15-20 faults a minute) goes well past them.
RSS_GROWTH_MAX_BYTES = 2 * 1024 * 1024
FD_GROWTH_MAX = 3.0
SLOPE_JUDGED_MIN = 2.0  # minutes of judged run below which a slope says nothing
SHORT_RSS_MAX_BYTES = 150 * 1024 * 1024
SHORT_FDS_MAX = 64


def soak_config(tmp_path: Path) -> Path:
    """conf/supervisor.toml with absolute paths, and a restart budget sized for a run that kills on purpose.

    The shipped budget (10 restarts in 5 minutes) is meant to stop a crash loop; a soak kills each
    program every few seconds, so it would make them fatal by design. The backoff is capped at 5 s so
    that a program killed often is back soon, as the shipped one is after its first crashes.
    """
    text = (ROOT / "conf" / "supervisor.toml").read_text().replace('"../', f'"{ROOT}/')
    budget = (
        'restart = { policy = "always", backoff = { initial = "1s", max = "5s" }, '
        'max_restarts = 100000, window = "5m" }'
    )
    lines = []
    for line in text.splitlines():
        if line.startswith("restart = "):
            continue  # replaced below, for every program alike
        lines.append(line)
        if line.startswith("[programs."):
            lines.append(budget)
    path = tmp_path / "supervisor.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Load:
    """A client that posts /events at a steady rate and remembers what was accepted."""

    port: int
    rate_per_s: float
    accepted: dict[str, float] = field(default_factory=dict)  # event id -> when (monotonic)
    outcomes: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Post until told to stop; one request at a time, paced by the clock (no catch-up burst)."""
        interval = 1.0 / self.rate_per_s
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.post()
            next_at = max(next_at + interval, time.monotonic())
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def post(self) -> None:
        """One POST /events; a 2xx with an event id counts as accepted."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/events?source=soak")
            resp = conn.getresponse()
            body = resp.read()
            if 200 <= resp.status < 300:
                self.accepted[json.loads(body)["event_id"]] = time.monotonic()
                self.outcomes["2xx"] += 1
            else:
                self.outcomes[str(resp.status)] += 1
        except (OSError, http.client.HTTPException) as exc:
            self.outcomes[type(exc).__name__] += 1
        finally:
            conn.close()


@dataclass
class Sampler:
    """Every second: the daemon's RSS and open fds, and every process of its tree (for the orphan check)."""

    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    seen: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Sample until told to stop."""
        began = time.monotonic()
        proc = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic() - began, proc.memory_info().rss, proc.num_fds()))
                for child in proc.children(recursive=True):
                    try:
                        self.seen.setdefault(child.pid, child.create_time())
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            self.stop.wait(1.0)


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return 60.0 * sxy / sxx if sxx else 0.0


def floor_per_window(samples: list[tuple[float, int]], window_s: float) -> list[tuple[float, float]]:
    """The lowest value in each window: fds open for a moment (a restart's pipes) are not a leak."""
    out: dict[int, tuple[float, float]] = {}
    for t, v in samples:
        k = int(t // window_s)
        if k not in out or v < out[k][1]:
            out[k] = (t, v)
    return [out[k] for k in sorted(out)]


def written(url: str) -> Counter[str]:
    """Rows of the soak's events, by event id."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT event_id::text, count(*) FROM events WHERE source = 'soak' GROUP BY 1").fetchall()
    return Counter({str(k): int(n) for k, n in rows})


class Chaos:
    """The faults, drawn at random from one seed, and how many of each were carried out."""

    def __init__(self, d: Daemon, pg: Proxy, rd: Proxy, rng: random.Random) -> None:
        self.d, self.pg, self.rd, self.rng = d, pg, rd, rng
        self.done: Counter[str] = Counter()
        self.threads: list[threading.Thread] = []
        self.cutting: set[str] = set()

    def pid(self, name: str) -> int | None:
        """The program's current pid, if it has one."""
        try:
            return self.d.unit(name).get("pid")
        except Exception:  # the status is checked elsewhere; a fault just skips a beat
            return None

    def kill(self, name: str, sig: int) -> bool:
        """Send ``sig`` to the program's main process."""
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def background(self, fn: Any, *args: Any) -> None:
        """Run a fault that takes a while beside the others."""
        thread = threading.Thread(target=fn, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def cut(self, which: str, relay: Proxy, seconds: float) -> None:
        """Refuse and cut every connection through ``relay`` for ``seconds``."""
        relay.close()
        time.sleep(seconds)  # the outage being staged
        relay.open()
        self.cutting.discard(which)

    def restart(self, name: str) -> None:
        """`supervisor restart NAME`, as an operator would."""
        try:
            self.d.client.request("POST", f"/v1/programs/{name}/restart")
        except Exception:
            self.done["restart-unanswered"] += 1

    def one(self, kind: str) -> bool:
        """Carry out one fault; return whether it found something to act on."""
        if kind.startswith("kill9-") and kind != "kill9-pool":
            return self.kill(kind.removeprefix("kill9-"), signal.SIGKILL)
        if kind == "kill9-pool":
            pid = self.pid("worker")
            try:
                pool = psutil.Process(pid).children() if pid else []
                if not pool:
                    return False
                self.rng.choice(pool).kill()
            except psutil.NoSuchProcess:
                return False
            return True
        if kind == "sigstop-worker":
            return self.kill("worker", signal.SIGSTOP)
        if kind == "restart-one":
            self.background(self.restart, self.rng.choice(["web", "worker", "beat"]))
            return True
        if kind == "restart-all":
            self.background(self.restart, "all")
            return True
        if kind == "reload":
            self.d.signal(signal.SIGHUP)
            return True
        which = kind.removeprefix("cut-")
        if which in self.cutting:
            return False
        self.cutting.add(which)
        self.background(self.cut, which, self.pg if which == "postgres" else self.rd, self.rng.uniform(1.0, 5.0))
        return True

    def run(self, seconds: float) -> None:
        """Faults at random, one every 1-4 s, for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            kind = self.rng.choice(FAULTS)
            if self.one(kind):
                self.done[kind] += 1
            time.sleep(min(self.rng.uniform(1.0, 4.0), max(0.0, deadline - time.monotonic())))
        for thread in self.threads:
            thread.join(60)


def trace(d: Daemon, load: Load, began: float, ids: set[str], limit: int = 5) -> str:
    """When some of these events were accepted, and the log lines that name them (task id = event id)."""
    some = sorted(ids)[:limit]
    head = f"{len(ids)} of {len(load.accepted)} missing; "
    when = {i: round(load.accepted[i] - began, 2) for i in some}
    lines = [raw for raw in d.log_path.read_text(errors="replace").splitlines() if any(i in raw for i in some)]
    return head + f"first {len(some)}, accepted at s into the run: {when}\n" + "\n".join(lines[-40:])


def redelivered(d: Daemon) -> int:
    """How many events the app's sweep sent again (it logs how many each time it ran)."""
    total = 0
    for event in d.events("program.output", program="worker"):
        match = re.search(r"redeliver_overdue\[[^]]+\] succeeded in [0-9.e-]+s: (\d+)", event.get("line", ""))
        total += int(match.group(1)) if match else 0
    return total


def supervisor_errors(d: Daemon) -> list[str]:
    """Error-level events of the supervisor itself, and any line of its output that is not a JSON event."""
    bad = []
    for raw in d.log_path.read_bytes().splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            bad.append(raw.decode(errors="replace"))
            continue
        if event.get("event") != "program.output" and (event.get("level") == "error" or "exception" in event):
            bad.append(json.dumps(event))
    return bad


@pytest.mark.slow
@pytest.mark.timeout(int(SOAK_SECONDS) + 400)
def test_soak_loses_no_accepted_task_and_the_daemon_stays_flat(
    run_daemon, database: str, queue: str, tmp_path: Path, proxy
) -> None:
    """Under load and random kills, stops, restarts, reloads and outages, every accepted task is written once."""
    print(f"\nsoak: {SOAK_SECONDS:g}s, {RATE_PER_S:g} posts/s, seed {SEED}", file=sys.stderr)
    pg, rd = proxy(server_port(database, 5432)), proxy(server_port(REDIS_URL, 6379))
    pg.open()
    rd.open()
    env = stack_env(
        tmp_path,
        with_port(database, pg.port),
        queue,
        REDIS_URL=with_port(REDIS_URL, rd.port),
        BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_S),
        # Celery's unacked-task keys are shared by a Redis database; other tests' clean-up must not reach ours.
        BROKER_KEY_PREFIX=f"{queue}.",
        TASK_RETRY_MAX="5",
        REDELIVER_AFTER="20",
        REDELIVER_INTERVAL="5",
    )
    argv = [str(Path(sys.executable).parent / "supervisor"), "run", "--config", str(soak_config(tmp_path))]
    d = run_daemon(None, env=env, argv=argv)
    d.wait_ready(timeout=90)

    load = Load(int(env["PORT"]), RATE_PER_S)
    sampler = Sampler(d.proc.pid)
    chaos = Chaos(d, pg, rd, random.Random(SEED))
    threads = [threading.Thread(target=t.run, daemon=True) for t in (load, sampler)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    chaos.run(SOAK_SECONDS)
    load.stop.set()
    threads[0].join(30)
    ran_s = time.monotonic() - began

    # The run is over: everything must come back by itself, and every accepted task be written.
    assert d.proc.poll() is None, f"the supervisor exited during the soak\n{d.tail()}"
    d.wait_ready(timeout=120)
    accepted = set(load.accepted)
    rows: Counter[str] = Counter()

    def all_written() -> bool:
        rows.clear()
        rows.update(written(database))
        return accepted <= set(rows)

    drain_began = time.monotonic()
    wait_until(
        all_written,
        VISIBILITY_TIMEOUT_S + 120,
        "every accepted task to have its row",
        seen=lambda: trace(d, load, began, accepted - set(rows)),
        interval=1.0,
    )
    drain_s = time.monotonic() - drain_began
    sampler.stop.set()
    threads[1].join(10)

    d.signal(signal.SIGTERM)
    code = d.wait_exit(90)
    leftovers = []
    for pid, created in sampler.seen.items():
        try:
            if psutil.Process(pid).create_time() == created:
                leftovers.append(pid)
        except psutil.NoSuchProcess:
            pass

    # Judged after start-up's one-time growth (imports, first connections, log buffers filling).
    judge_from = max(0.2 * ran_s, min(0.5 * ran_s, 60.0))
    warm = [s for s in sampler.samples if s[0] >= judge_from]
    judged_min = (warm[-1][0] - warm[0][0]) / 60.0
    rss_slope = slope_per_min([(t, rss) for t, rss, _ in warm])
    fd_slope = slope_per_min(floor_per_window([(t, fds) for t, _, fds in warm], 10.0))
    duplicates = {k: n for k, n in rows.items() if n > 1}
    report = {
        "seconds": round(ran_s, 1),
        "seed": SEED,
        "rate_per_s": RATE_PER_S,
        "faults": dict(sorted(chaos.done.items())),
        "requests": sum(load.outcomes.values()),
        "outcomes": dict(load.outcomes),
        "accepted": len(accepted),
        "written_of_accepted": len(accepted & set(rows)),
        "written_without_2xx": len(set(rows) - accepted),
        "duplicates": len(duplicates),
        "sent_again_by_sweep": redelivered(d),
        "drain_s": round(drain_s, 1),
        "daemon_rss_mb": [round(min(s[1] for s in warm) / 2**20, 1), round(max(s[1] for s in warm) / 2**20, 1)],
        "daemon_fds": [min(s[2] for s in warm), max(s[2] for s in warm)],
        "judged_s": [round(warm[0][0]), round(warm[-1][0])],
        "rss_slope_kb_per_min": round(rss_slope / 1024, 1),
        "fd_slope_per_min": round(fd_slope, 3),
        "restarts": {u: sum(1 for _ in d.events("program.started", program=u)) - 1 for u in ("web", "worker", "beat")},
        "exit_code": code,
        "leftover_processes": leftovers,
    }
    print("soak report: " + json.dumps(report, indent=1), file=sys.stderr)
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(json.dumps(report, indent=1) + "\n")

    assert code == 0, d.tail()
    assert not leftovers, f"processes outlived the supervisor: {leftovers}"
    assert not duplicates, f"rows written more than once: {duplicates}"
    assert len(accepted) > 0.3 * RATE_PER_S * ran_s, f"too little accepted to judge: {load.outcomes}"
    errors = supervisor_errors(d)
    assert not errors, "the supervisor itself logged errors:\n" + "\n".join(errors[:20])
    if judged_min >= SLOPE_JUDGED_MIN:
        assert rss_slope * judged_min < RSS_GROWTH_MAX_BYTES, f"daemon RSS grows {rss_slope / 1024:.0f} kB/min"
        assert fd_slope * judged_min < FD_GROWTH_MAX, f"daemon fds grow {fd_slope:.2f}/min"
    else:
        # A slope over a few 10 s windows is noise (a handover holds the old incarnation's pipes
        # for seconds): the short form only holds the daemon's memory and fds within bounds.
        assert max(s[1] for s in warm) < SHORT_RSS_MAX_BYTES, f"daemon RSS reached {max(s[1] for s in warm)}"
        assert max(s[2] for s in warm) < SHORT_FDS_MAX, f"daemon fds reached {max(s[2] for s in warm)}"
