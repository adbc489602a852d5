"""The data plane under load: a chatty child, and a flood of idle connections.

    python bench/logflood.py --supervisord .venv-supervisord/bin [--rounds 5] [--only flood|idle]

**Log flood.** One child (``tests/programs/chatty.py``) writes 200,000 lines of 100 bytes as
fast as it can, 80 lines a write (and again, fewer rounds, one write a line as print() makes
them), run in turn (alternating, several rounds, so a shared machine's
load falls on each alike): under this supervisor (JSON and console logs, to a file), under
supervisord 4.3 (``stdout_logfile`` to a file), and straight into a file (the limit). For each:
the writer's elapsed time, the daemon's CPU per line (schedstat, from just before the first
line until the last is out), and the time until the last line is out.

**Idle flood.** 16 client processes ask ``/healthz`` on new connections as fast as they are
answered, and one asks ``/v1/status`` on the Unix socket, first with no idle connection, then
while another process holds 2,000 idle TCP connections (re-opening whatever the daemon
closes). Reports p50/p99 of each. The 1-minute load average is recorded per section.
Writes bench/results/logflood.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHATTY = str(ROOT / "tests" / "programs" / "chatty.py")
PY = sys.executable
OURS = str(Path(PY).with_name("supervisor"))
LINES = 200_000
SIZE = 100
MARK = b"chatty done"


def cpu_ns(pid: int) -> int:
    """Nanoseconds every thread of ``pid`` has spent on a CPU."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            continue
    return total


def wait_for(predicate, timeout: float, what: str, interval: float = 0.001):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(interval)


def tail_has(path: Path, mark: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            return mark in f.read()
    except FileNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the three ways ------------------------------------------------------------------------


def chatty(work: Path, mode: str) -> list[str]:
    return [PY, CHATTY, str(LINES), str(SIZE), str(work / "go"), str(work / "elapsed"), mode]


def run_ours(work: Path, fmt: str, mode: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    sock = str(work / "s.sock")
    conf = work / "ours.toml"
    argv = chatty(work, mode)
    conf.write_text(
        f'[supervisor]\nsocket = "{sock}"\nhttp = ""\nlog_format = "{fmt}"\n'
        f"[programs.chatty]\ncommand = {json.dumps(argv)}\n"
    )
    log = work / "ours.log"
    proc = subprocess.Popen([OURS, "run", "--config", str(conf)], stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    wait_for(lambda: tail_has(log, b"program.started") or tail_has(log, b"Started chatty"), 30, "ours to start chatty")
    return proc, log, sock


def run_supervisord(work: Path, bindir: Path, mode: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = work / "chatty.log"
    argv = chatty(work, mode)
    conf = work / "supervisord.conf"
    conf.write_text(f"""[unix_http_server]
file={work}/sd.sock
[supervisord]
nodaemon=true
logfile={work}/supervisord.log
pidfile={work}/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:chatty]
command={" ".join(argv)}
startsecs=0
stdout_logfile={log}
stdout_logfile_maxbytes=0
stderr_logfile=NONE
""")
    proc = subprocess.Popen(
        [str(bindir / "supervisord"), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: tail_has(work / "supervisord.log", b"chatty entered RUNNING"), 30, "supervisord to start chatty")
    return proc, log


def flood_once(kind: str, bindir: Path, mode: str) -> dict[str, float]:
    """One run of the chatty child under ``kind``; the writer's and the daemon's figures."""
    work = Path(tempfile.mkdtemp(prefix=f"logflood-{kind}-"))
    daemon: subprocess.Popen[bytes] | None = None
    child: subprocess.Popen[bytes] | None = None
    if kind.startswith("ours"):
        daemon, log, _ = run_ours(work, kind.partition("-")[2], mode)
    elif kind == "supervisord":
        daemon, log = run_supervisord(work, bindir, mode)
    else:
        log = work / "direct.log"
        child = subprocess.Popen(chatty(work, mode), stdout=open(log, "wb"))  # noqa: SIM115
        time.sleep(0.2)  # the interpreter is up and waiting for the go file
    try:
        cpu0 = cpu_ns(daemon.pid) if daemon else 0
        (work / "go").touch()
        wait_for(lambda: tail_has(log, MARK), 120, f"the last line under {kind}")
        out_ns = time.monotonic_ns()
        cpu1 = cpu_ns(daemon.pid) if daemon else 0
        began, ended = map(int, wait_for(lambda: _read(work / "elapsed"), 30, "the writer's figures").split())
        return {
            "writer_s": (ended - began) / 1e9,
            "last_line_s": (out_ns - began) / 1e9,
            "cpu_us_per_line": (cpu1 - cpu0) / 1e3 / LINES,
        }
    finally:
        for p in (daemon, child):
            if p is not None:
                p.send_signal(signal.SIGTERM)
                p.wait(60)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def flood(bindir: Path, rounds: int, mode: str) -> dict[str, object]:
    kinds = ["file", "ours-json", "supervisord", "ours-console"]
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for kind in kinds:
            runs[kind].append(flood_once(kind, bindir, mode))
    out: dict[str, object] = {"load_1m": [load, os.getloadavg()[0]], "lines": LINES, "bytes_per_line": SIZE}
    for kind, rows in runs.items():
        out[kind] = {key: statistics.median(r[key] for r in rows) for key in rows[0]} | {"runs": rows}
    return out


# ---- the idle flood ------------------------------------------------------------------------


def _http_get(family: int, address: object, path: str) -> float:
    began = time.perf_counter()
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(address)  # type: ignore[arg-type]
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path}: {data[:80]!r}")
    return time.perf_counter() - began


def _hammer(kind: str, address: object, seconds: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    family = socket.AF_UNIX if kind == "status" else socket.AF_INET
    path = "/v1/status" if kind == "status" else "/healthz"
    times: list[float] = []
    errors = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            times.append(_http_get(family, address, path))
        except (OSError, RuntimeError):
            errors += 1
        if kind == "status":
            time.sleep(0.01)  # an operator, not a flood
    queue.put((kind, times, errors))


def _hold_idle(port: int, count: int, stop: multiprocessing.Event, ready: multiprocessing.Event, opened) -> None:  # type: ignore[no-untyped-def]
    """Hold ``count`` idle connections; re-open each one the daemon closes."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()

    def connect() -> None:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened.value += 1

    for _ in range(count):
        connect()
    ready.set()
    while not stop.is_set():
        for key, _ in sel.select(0.05):
            s = key.fileobj
            sel.unregister(s)
            s.close()  # type: ignore[union-attr]
            try:
                connect()
            except OSError:
                pass
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def idle(rounds: int, seconds: float, idle_count: int, header_timeout: str = "2s", nice: int = 0) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="logflood-idle-"))
    port = free_port()
    sock = str(work / "s.sock")
    conf = work / "idle.toml"
    conf.write_text(
        f'[supervisor]\nsocket = "{sock}"\nhttp = "127.0.0.1:{port}"\nlog_format = "json"\n'
        f'header_timeout = "{header_timeout}"\n'
        '[programs.sleeper]\ncommand = ["sleep", "3600"]\n'
    )
    log = work / "ours.log"
    daemon = subprocess.Popen([OURS, "run", "--config", str(conf)], stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    out: dict[str, object] = {"idle_connections": idle_count, "clients": 16, "seconds": seconds, "nice": nice}
    if nice:  # an experiment: does the daemon's priority over the clients and the flood change the tail?
        os.setpriority(os.PRIO_PROCESS, daemon.pid, nice)
    try:
        wait_for(lambda: tail_has(log, b"supervisor.ready"), 30, "the daemon to be ready")
        for phase in [p for _ in range(rounds) for p in ("baseline", "idle")]:
            stop, ready = multiprocessing.Event(), multiprocessing.Event()
            opened = multiprocessing.Value("i", 0)
            holder = None
            if phase == "idle":
                holder = multiprocessing.Process(target=_hold_idle, args=(port, idle_count, stop, ready, opened))
                holder.start()
                ready.wait(60)
            fds0 = len(os.listdir(f"/proc/{daemon.pid}/fd"))
            cpu0, wall0, opened0 = cpu_ns(daemon.pid), time.monotonic(), opened.value
            queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
            load = os.getloadavg()[0]
            workers = [
                multiprocessing.Process(target=_hammer, args=("healthz", ("127.0.0.1", port), seconds, queue))
                for _ in range(16)
            ]
            workers.append(multiprocessing.Process(target=_hammer, args=("status", sock, seconds, queue)))
            for w in workers:
                w.start()
            results = [queue.get(timeout=seconds + 60) for _ in workers]
            for w in workers:
                w.join()
            fds1 = len(os.listdir(f"/proc/{daemon.pid}/fd"))
            busy = (cpu_ns(daemon.pid) - cpu0) / 1e9 / (time.monotonic() - wall0)
            reopened_per_s = (opened.value - opened0) / (time.monotonic() - wall0)
            stop.set()
            if holder is not None:
                holder.join(30)
            row = out.setdefault(phase, {"runs": []})
            summary: dict[str, float] = {
                "load_1m": load,
                "daemon_fds": max(fds0, fds1),
                "daemon_cpu_share": busy,  # seconds of CPU per second: 1.0 is one core, all the time
                "reopened_per_s": reopened_per_s,
            }
            for kind in ("healthz", "status"):
                times = sorted(t for k, ts, _ in results if k == kind for t in ts)
                summary[f"{kind}_n"] = len(times)
                summary[f"{kind}_errors"] = sum(e for k, _, e in results if k == kind)
                if times:
                    summary[f"{kind}_p50_ms"] = times[len(times) // 2] * 1000
                    summary[f"{kind}_p99_ms"] = times[int(len(times) * 0.99)] * 1000
            row["runs"].append(summary)  # type: ignore[index]
        for phase in ("baseline", "idle"):
            row = out[phase]
            for key in row["runs"][0]:  # type: ignore[index]
                row[key] = statistics.median(r[key] for r in row["runs"])  # type: ignore[index]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    return out


def table(res: dict[str, object]) -> str:
    rows = ["| measure | median | goal |", "| --- | --- | --- |"]
    for section, writer in (("flood", "80 lines a write"), ("flood_each", "a write a line")):
        fl = res.get(section)
        if not isinstance(fl, dict):
            continue
        limit = fl["file"]["writer_s"]
        for kind in ("file", "ours-json", "ours-console", "supervisord"):
            r = fl[kind]
            ratio = r["writer_s"] / limit
            rows.append(f"| writer ({writer}), {kind} | {r['writer_s']:.3f} s ({ratio:.1f}x the file) | ≤ 5x |")
            if kind != "file":
                rows.append(f"| daemon CPU per line ({writer}), {kind} | {r['cpu_us_per_line']:.2f} µs | ≤ 2 µs |")
                rows.append(f"| last line out ({writer}), {kind} | {r['last_line_s']:.3f} s | |")
        rows.append(f"| load average (1 min), {writer} | {fl['load_1m'][0]:.1f} → {fl['load_1m'][1]:.1f} | |")
    for section, how in (("idle", "closed after header_timeout, re-opened"), ("idle_held", "held, never closed")):
        idl = res.get(section)
        if not isinstance(idl, dict):
            continue
        for phase in ("baseline", "idle"):
            r = idl[phase]
            what = "no idle connection" if phase == "baseline" else f"{idl['idle_connections']} idle connections, {how}"
            p50, p99 = r["healthz_p50_ms"], r["healthz_p99_ms"]
            rows.append(f"| /healthz p50 / p99, {what} | {p50:.1f} / {p99:.1f} ms | p99 ≤ 50 ms |")
            rows.append(f"| status p50 / p99, {what} | {r['status_p50_ms']:.1f} / {r['status_p99_ms']:.1f} ms | |")
            figures = f"{r['healthz_errors']:.0f}, {r['status_errors']:.0f}, {r['daemon_fds']:.0f}, {r['load_1m']:.1f}"
            rows.append(f"| errors (healthz, status), daemon fds, load, {what} | {figures} | |")
            busy = f"{r['daemon_cpu_share'] * 100:.0f} % of a core, {r['reopened_per_s']:.0f} re-opened/s"
            rows.append(f"| daemon CPU, idle connections re-opened, {what} | {busy} | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supervisord", type=Path, required=True, help="bin/ of the supervisord virtualenv")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="each idle-flood phase")
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--only", choices=("flood", "idle"))
    parser.add_argument("--nice", type=int, default=0, help="the daemon's nice value in the idle sections (root)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "logflood.json")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    res: dict[str, object] = {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.only in (None, "flood"):
        res["flood"] = flood(args.supervisord, args.rounds, "blocks")
        res["flood_each"] = flood(args.supervisord, max(1, args.rounds // 2), "each")
    if args.only in (None, "idle"):
        res["idle"] = idle(max(1, args.rounds // 2), args.seconds, args.idle, nice=args.nice)
        # The same flood held without churn: header_timeout longer than the phase, nothing re-opened.
        res["idle_held"] = idle(
            max(1, args.rounds // 2), args.seconds, args.idle, header_timeout="120s", nice=args.nice
        )
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))


if __name__ == "__main__":
    main()
