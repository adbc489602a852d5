"""What `watch` costs: the daemon idle without --dev and with it, and how soon a change restarts.

    python bench/dev_idle.py [--seconds 10] [--programs 10] [--rounds 7]

Ten programs (`sleep`), each with `watch = ["src/**/*.py"]` over a project of 200 files in 20
directories (in the first run, without the key). The daemon runs three times: without the keys,
with them but without `--dev` (they are ignored: no watcher may exist), and with `--dev`. Over an
idle window the daemon's CPU (schedstat, every thread), its context switches (voluntary and not,
every thread) and its thread count are read from /proc. With `--dev`, a file is then written once
per round and the time until the program's new incarnation is spawned is
taken from the daemon's own log (`program.watch_changed` and `program.started` timestamps, and
the write's wall time): the debounce (300 ms, the default) is most of it. Reported: medians.
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
from datetime import datetime
from pathlib import Path

from watch_cost import cpu_ns

OURS = str(Path(sys.executable).with_name("supervisor"))


def switches(pid: int) -> int:
    """Return the context switches of every thread of ``pid`` so far."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{task}/status").read_text()
        except FileNotFoundError:
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines() if "ctxt_switches:" in line)
    return total


def events(log: Path, name: str) -> list[dict[str, object]]:
    """Return the daemon's JSON log events of that name."""
    out = []
    for raw in log.read_bytes().splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == name:
            out.append(event)
    return out


def stamp(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def run(work: Path, dev: bool, seconds: float, programs: int, rounds: int, watch: bool = True) -> dict[str, object]:
    """One daemon: its idle figures, and with ``dev`` the change-to-spawn latencies."""
    sock = str(work / f"s{int(dev)}{int(watch)}.sock")
    conf = work / f"dev{int(dev)}{int(watch)}.toml"
    lines = [f'[supervisor]\nsocket = "{sock}"\nhttp = ""\nlog_format = "json"\n']
    lines += [
        f'[programs.p{i}]\ncommand = ["sleep", "3600"]\ncwd = "{work / "proj"}"\nmin_uptime = 0\n'
        + ('watch = ["src/**/*.py"]\n' if watch else "")
        for i in range(programs)
    ]
    conf.write_text("\n".join(lines))
    log_path = work / f"daemon{int(dev)}{int(watch)}.log"
    with open(log_path, "wb") as log:
        argv = [OURS, "run", "--config", str(conf), *(["--dev"] if dev else [])]
        daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([OURS, "status", "-q", "--socket", sock], stderr=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not get ready; see {log_path}")
            time.sleep(0.2)
        time.sleep(1.0)
        ns0, sw0, t0 = cpu_ns(daemon.pid), switches(daemon.pid), time.monotonic()
        time.sleep(seconds)
        ns1, sw1, t1 = cpu_ns(daemon.pid), switches(daemon.pid), time.monotonic()
        threads = len(os.listdir(f"/proc/{daemon.pid}/task"))
        latencies = []
        for i in range(rounds if dev else 0):
            before = len(events(log_path, "program.started"))
            written = time.time()
            (work / "proj" / "src" / "d3" / "m7.py").write_text(f"x = {i}\n")
            while len(events(log_path, "program.started")) < before + programs:
                time.sleep(0.02)
            first = min(stamp(e) for e in events(log_path, "program.started")[before:])
            latencies.append(first - written)
            time.sleep(1.0)
        restarts = len(events(log_path, "program.watch_changed"))
    finally:
        daemon.terminate()
        daemon.wait(30)
    wall = t1 - t0
    out: dict[str, object] = {
        "dev": dev,
        "watch_keys": watch,
        "cpu_ms_per_s": round((ns1 - ns0) / 1e6 / wall, 4),
        "context_switches_per_s": round((sw1 - sw0) / wall, 2),
        "threads": threads,
    }
    if dev:
        out["change_to_spawn_s_median"] = round(statistics.median(latencies), 3)
        out["change_to_spawn_s"] = [round(x, 3) for x in latencies]
        out["restarts_per_change"] = restarts / rounds / programs
    return out


def main() -> None:
    """Measure both modes and print the figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the idle window")
    parser.add_argument("--programs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="devidle-"))
    for d in range(20):
        (work / "proj" / "src" / f"d{d}").mkdir(parents=True)
        for f in range(10):
            (work / "proj" / "src" / f"d{d}" / f"m{f}.py").write_text("x = 0\n")
    result = {
        "programs": args.programs,
        "watched_files": 200,
        "no_watch_keys": run(work, False, args.seconds, args.programs, args.rounds, watch=False),
        "off": run(work, False, args.seconds, args.programs, args.rounds),
        "on": run(work, True, args.seconds, args.programs, args.rounds),
    }
    text = json.dumps(result, indent=2)
    print(text)
    (Path(__file__).parent / "results" / "dev_idle.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
