"""`supervisor scale` to hundreds of instances: how long /healthz waits meanwhile, and how long the scale takes.

    python bench/scale.py [--instances 1000] [--runs 3]

A daemon runs one program (``sleep``) with one instance. A thread asks ``/healthz`` on a new
connection, back to back, while ``supervisor scale s N`` starts N-1 more and then while ``scale
s 1`` stops them. Reported per run: the scale's duration (the command returns once every new
instance is running), the daemon's CPU for it, and /healthz's median, p99 and longest wait during
each; then the medians over the runs. Writes bench/results/scale.json.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import OURS, ROOT, socket_port, wait_for


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Poller(threading.Thread):
    """Asks /healthz back to back on new connections; keeps each answer's wait in ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.waits: list[float] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as resp:
                    resp.read()
                self.waits.append((time.perf_counter() - start) * 1000)
            except OSError:
                self.failed += 1


def _during(url: str, pid: int, argv: list[str]) -> dict[str, float]:
    poller = Poller(url)
    poller.start()
    cpu, start = _cpu_s(pid), time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    took, cpu = time.perf_counter() - start, _cpu_s(pid) - cpu
    poller.stop.set()
    poller.join()
    waits = sorted(poller.waits)
    return {
        "took_s": round(took, 3),
        "daemon_cpu_s": round(cpu, 2),
        "healthz_answers": len(waits),
        "healthz_failed": poller.failed,
        "healthz_p50_ms": round(statistics.median(waits), 1),
        "healthz_p99_ms": round(waits[int(len(waits) * 0.99)], 1),
        "healthz_max_ms": round(waits[-1], 1),
    }


def measure(instances: int) -> dict[str, dict[str, float]]:
    """One run: scale up to ``instances``, then back to one."""
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    with socket_port() as port:
        pass
    conf = work / "supervisor.toml"
    conf.write_text(
        f'[supervisor]\nsocket = "{work / "s.sock"}"\nhttp = "127.0.0.1:{port}"\nlog_format = "json"\n'
        '[programs.s]\ncommand = ["sleep", "3600"]\ninstances = 1\nmin_uptime = "1s"\n'
    )
    log = open(work / "log", "wb")  # noqa: SIM115 - lives with the daemon
    proc = subprocess.Popen([OURS, "run", "--config", str(conf)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/healthz"
    sock = ["--socket", str(work / "s.sock")]
    try:
        status = [OURS, "status", *sock]
        wait_for(lambda: subprocess.run(status, capture_output=True).returncode == 0, 30, "the daemon", interval=0.05)
        up = _during(url, proc.pid, [OURS, "scale", "s", str(instances), *sock])
        down = _during(url, proc.pid, [OURS, "scale", "s", "1", *sock])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    return {"up": up, "down": down}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [measure(args.instances) for _ in range(args.runs)]
    median = {
        phase: {key: statistics.median(r[phase][key] for r in runs) for key in runs[0][phase]}
        for phase in ("up", "down")
    }
    report = {
        "instances": args.instances,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": os.getloadavg(),
        "median": median,
        "runs": runs,
    }
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"instances": args.instances, "median": median}, indent=2))


if __name__ == "__main__":
    main()
