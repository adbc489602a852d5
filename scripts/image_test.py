"""Run the built image for real with podman, against this machine's Postgres and Redis (host network).

`make image-test` runs it after `make image`. Each check prints one line; the first that fails
stops the run with exit 1. What it checks is in docs/image.md.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

IMAGE = os.environ.get("IMAGE", "localhost/stack-supervisor:dev")
ADMIN_URL = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = urlunsplit(urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")._replace(path="/6"))
# At or below this sandbox's limits (crun cannot raise them), and no HEALTHCHECK timers: podman
# runs those through systemd, which is not PID 1 here ("unable to get systemd connection").
ULIMITS = ["--ulimit", "nofile=10000:10000", "--ulimit", "nproc=10000:10000", "--no-healthcheck"]
# What the image's user may write, on a read-only root: the socket's directory and /tmp (STATE_DIR).
TMPFS = ["--tmpfs", "/tmp:rw,mode=1777", "--tmpfs", "/run/supervisor:rw,mode=0750,U"]  # U: owned by the image user


def ok(what: str) -> None:
    print(f"image-test: ok   {what}", flush=True)


def fail(what: str, detail: str = "") -> None:
    print(f"image-test: FAIL {what}\n{detail}", file=sys.stderr, flush=True)
    sys.exit(1)


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        fail(f"podman {' '.join(args[:3])}", out.stderr[-2000:])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], object], timeout: float, what: str, seen: Callable[[], str]) -> float:
    """Poll until truthy; return the seconds it took; fail saying what was seen."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if predicate():
                return time.monotonic() - began
        except Exception:  # not answering yet
            pass
        time.sleep(0.1)
    fail(f"{what} within {timeout:g} s", seen())
    return timeout


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def logs(name: str) -> str:
    out = podman("logs", name, check=False)
    return out.stdout + out.stderr


def status(name: str) -> dict:  # type: ignore[type-arg]
    """`supervisor status --json` in the container (its exit code says how healthy the stack is)."""
    out = podman("exec", name, "supervisor", "status", "--json", check=False)
    try:
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    except ValueError:
        fail("supervisor status --json in the container", out.stdout[-1000:] + out.stderr[-1000:])
        raise


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def good_run(database: str) -> None:
    """The stack up, PID 1, non-root on a read-only root, a killed child restarted, a clean stop."""
    name = f"sup-image-test-{uuid.uuid4().hex[:6]}"
    port, http = free_port(), free_port()
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "APP_QUEUE": f"q-{uuid.uuid4().hex[:8]}",
        "PORT": str(port),
        "SUPERVISOR_HTTP": f"127.0.0.1:{http}",
    }
    flags = [f"--env={k}={v}" for k, v in env.items()]
    started = time.monotonic()
    podman("run", "-d", "--name", name, "--network", "host", "--read-only", *TMPFS, *ULIMITS, *flags, IMAGE)
    try:
        took = wait(
            lambda: http_status(f"http://127.0.0.1:{http}/readyz") == 200,
            120,
            "/readyz 200",
            lambda: logs(name)[-3000:],
        )
        ok(f"/readyz 200 after {time.monotonic() - started:.1f} s from podman run ({took:.1f} s polling)")
        pid1 = podman("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
        if "supervisor" not in Path(pid1[0]).name and "supervisor" not in pid1[:2][-1]:
            fail("the supervisor is PID 1", repr(pid1))
        ok(f"PID 1 is {' '.join(a for a in pid1 if a)}")
        uid = podman("exec", name, "id", "-u").stdout.strip()
        if uid != "10001":
            fail("runs as the image's user 10001", uid)
        wrote = podman("exec", name, "touch", "/app/written", check=False)
        if wrote.returncode == 0:
            fail("the root filesystem is read-only")
        ok("runs as uid 10001 on a read-only root filesystem (tmpfs /tmp and /run/supervisor)")
        worker = next(u for u in status(name)["units"] if u["name"] == "worker")
        podman("exec", name, "sh", "-c", f"kill -KILL {worker['pid']}")
        wait(
            lambda: (
                (u := next(u for u in status(name)["units"] if u["name"] == "worker"))["pid"]
                not in (None, worker["pid"])
                and u["state"] == "running"
            ),
            60,
            "the SIGKILLed worker to be restarted",
            lambda: logs(name)[-3000:],
        )
        ok(f"kill -KILL of the worker (pid {worker['pid']} in the container): restarted")
        began = time.monotonic()
        podman("stop", "-t", "60", name, timeout=90)
        stop_s = time.monotonic() - began
        code = podman("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
        text = logs(name)
        if code != "0":
            fail(f"podman stop: exit 0 (was {code})", text[-3000:])
        if "warm shutdown" not in text.lower():
            fail("Celery's warm shutdown in the logs", text[-3000:])
        ok(f"podman stop: exit 0 in {stop_s:.1f} s, with Celery's warm shutdown in the logs")
    finally:
        podman("rm", "-f", name, check=False)


def run_offline(*options: str) -> subprocess.CompletedProcess[str]:
    """Run the image once, read-only with no network, with these podman options; its output, once it exits."""
    argv = ["podman", "run", "--rm", "--network", "none", "--read-only", *ULIMITS, "--env=DB_WAIT_TIMEOUT=3s"]
    return subprocess.run([*argv, *options, IMAGE], capture_output=True, text=True, timeout=120)


def bad_input() -> None:
    """No DATABASE_URL, or no Postgres: the configured exit code, the last line names it; no writable /tmp."""
    for what, extra in (
        ("without DATABASE_URL", []),
        ("with Postgres unreachable", ["--env=DATABASE_URL=postgresql://app@127.0.0.1:1/app"]),
    ):
        out = run_offline(*TMPFS, *extra)
        last = last_line(out.stdout + out.stderr)
        if out.returncode != 69 or "postgres" not in last:
            fail(f"{what}: exit 69 and a last line naming postgres", f"exit {out.returncode}; last line: {last}")
        ok(f"{what}: exit 69, last line: {last[:160]}")
    # --read-only with no tmpfs at all (podman adds /tmp and /run unless told not to).
    out = run_offline("--read-only-tmpfs=false")
    text = out.stdout + out.stderr
    if out.returncode != 78 or "Traceback" in text or "/tmp is not writable" not in text:
        fail("read-only without a writable /tmp: exit 78 naming the path", f"exit {out.returncode}: {text[-2000:]}")
    said = next(line for line in text.splitlines() if "/tmp is not writable" in line).strip()
    ok(f"read-only without a writable /tmp: exit 78: {said[:160]}")


def main() -> int:
    size = podman("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout.strip()
    ok(f"image {IMAGE}: {int(size) / 1e6:.0f} MB")
    name = f"sup_img_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        good_run(urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}")))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    bad_input()
    print("image-test: passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
