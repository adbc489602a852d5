"""A singleton across daemons that share one real Postgres: one runs it, the others stand by.

Each copy of the program appends "PID TIME" lines to one file every 20 ms (tests/programs/
records_runs.py), so a copy's run is [its first line, its last line], and overlaps can be read.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon, program, wait_until
from tests.integration import silent_proxy
from tests.integration.conftest import ADMIN_URL, server_port, with_port

pytestmark = pytest.mark.integration


def config(url: str, record: Path, fence: str = "10s") -> str:
    """Beat as a singleton on the database, and a program that depends on it."""
    return f"""
[dependencies.db]
type = "postgres"
url = "{url}"
interval = "0.2s"

[programs.beat]
command = {program("records_runs", record)}
depends_on = ["db"]
singleton = "db"
singleton_fence = "{fence}"
min_uptime = "0s"

[programs.after_beat]
command = {program("sleeper")}
depends_on = ["beat"]
"""


def runs(record: Path) -> dict[int, tuple[float, float]]:
    """Each copy's run, by pid: its first and last line."""
    out: dict[int, tuple[float, float]] = {}
    for line in record.read_text().splitlines():
        pid_text, _, at_text = line.partition(" ")
        if not at_text:
            continue  # a line being written as we read
        pid, at = int(pid_text), float(at_text)
        first, last = out.get(pid, (at, at))
        out[pid] = (min(first, at), max(last, at))
    return out


def overlaps(record: Path) -> list[tuple[int, int]]:
    """Pairs of copies whose runs overlap (the later one started before the earlier one's last line)."""
    ordered = sorted(runs(record).items(), key=lambda item: item[1][0])
    return [(a, b) for (a, (_, end_a)), (b, (start_b, _)) in pairwise(ordered) if start_b <= end_a]


def wait_copies(record: Path, n: int) -> dict[int, tuple[float, float]]:
    """Wait until ``n`` copies have written their first line."""
    return wait_until(lambda: len(r := runs(record)) >= n and r, 10, f"{n} copies recorded", seen=lambda: runs(record))


def readyz(d: Daemon) -> int:
    """The daemon's /readyz status code."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/readyz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def beat_state(d: Daemon) -> str | None:
    """Beat's state in a live daemon, or None when it does not answer."""
    try:
        return str(d.unit("beat")["state"])
    except Exception:
        return None


def holders(daemons: list[Daemon]) -> list[Daemon]:
    """The daemons that run beat now."""
    return [d for d in daemons if beat_state(d) == "running"]


def states(daemons: list[Daemon]) -> str:
    return json.dumps([beat_state(d) for d in daemons])


def story(daemons: list[Daemon]) -> str:
    """Each daemon's beat state and its last lines about beat or the lock: what a slow handover did."""
    lines = [states(daemons)]
    for d in daemons:
        said = [e for e in d.events() if e.get("program") == "beat" or str(e.get("event", "")).startswith("singleton")]
        lines += [f"--- daemon {d.proc.pid}", *(json.dumps(e) for e in said[-6:])]
    return "\n".join(lines)


def test_three_daemons_run_one_beat_and_are_all_ready(
    run_daemon: Callable[..., Daemon], database: str, tmp_path: Path
) -> None:
    """One daemon runs the singleton, two stand by; all three are ready, and its dependants run in all."""
    record = tmp_path / "runs.txt"
    daemons = [run_daemon(config(database, record)) for _ in range(3)]
    for d in daemons:
        d.wait_ready()
    wait_until(lambda: len(holders(daemons)) == 1, 10, "one holder", seen=lambda: states(daemons))
    assert sorted(beat_state(d) or "" for d in daemons) == ["running", "standby", "standby"]
    assert [readyz(d) for d in daemons] == [200, 200, 200]
    assert all(d.unit("after_beat")["state"] == "running" for d in daemons)
    assert all(d.status()["supervisor"]["ready"] for d in daemons)
    assert len(wait_copies(record, 1)) == 1
    # The copy holds the lock connection's socket as fd 4: the server cannot see it close first.
    (holder,) = holders(daemons)
    lock_socket = os.readlink(f"/proc/{holder.unit('beat')['pid']}/fd/4")
    assert lock_socket.startswith("socket:")
    daemon_fds = Path(f"/proc/{holder.proc.pid}/fd")
    assert lock_socket in {os.readlink(fd) for fd in daemon_fds.iterdir()}


def test_kill_9_of_the_holder_ten_times_hands_over_within_5s_without_overlap(
    run_daemon: Callable[..., Daemon], database: str, tmp_path: Path
) -> None:
    """SIGKILL of the holding daemon: another daemon runs beat within 5 s, and no two copies overlap."""
    record = tmp_path / "runs.txt"
    live = [run_daemon(config(database, record)) for _ in range(3)]
    for d in live:
        d.wait_ready()
    took: list[float] = []
    for _ in range(10):
        holder = wait_until(lambda: holders(live), 10, "a holder", seen=lambda: states(live))[0]
        before = set(runs(record))
        killed_at = time.time()
        holder.proc.kill()
        holder.proc.wait()
        live.remove(holder)
        wait_until(lambda: holders(live), 5, "another daemon to run beat", seen=lambda: story(live))
        new = wait_until(
            lambda known=before: [start for pid, (start, _) in runs(record).items() if pid not in known],
            5,
            "the new copy's first line",
            seen=lambda: states(live),
        )
        took.append(min(new) - killed_at)
        live.append(run_daemon(config(database, record)))  # back to three
    assert max(took) < 5, took
    assert overlaps(record) == []
    assert len(runs(record)) == 11


def test_a_cut_lock_connection_kills_at_once_and_a_standby_takes_over(
    run_daemon: Callable[..., Daemon], database: str, tmp_path: Path, proxy: Any
) -> None:
    """A connection closed under the holder (a proxy, a restart) means SIGKILL at once: no overlap."""
    record = tmp_path / "runs.txt"
    cut = proxy(server_port(ADMIN_URL, 5432))
    cut.open()
    first = run_daemon(config(with_port(database, cut.port), record))
    first.wait_unit("beat", state="running")
    other = run_daemon(config(database, record))
    other.wait_unit("beat", state="standby")
    cut.close()  # its live connections cut, new ones refused
    first.wait_event("program.fenced")
    other.wait_unit("beat", timeout=10, state="running")
    assert len(wait_copies(record, 2)) == 2
    assert overlaps(record) == []


@pytest.mark.skipif(not silent_proxy.available(), reason="a silent partition needs CAP_NET_ADMIN (TCP_REPAIR)")
def test_a_partitioned_holder_fences_before_the_server_frees_its_lock(
    run_daemon: Callable[..., Daemon], database: str, tmp_path: Path
) -> None:
    """A silent partition: the holder fences within the fence, a standby takes over only after it, no overlap."""
    record = tmp_path / "runs.txt"
    fence_s = 2.0
    lost = silent_proxy.SilentProxy(server_port(ADMIN_URL, 5432))
    try:
        holder = run_daemon(config(with_port(database, lost.port), record, fence=f"{fence_s}s"))
        holder.wait_unit("beat", state="running")
        standby = run_daemon(config(database, record, fence=f"{fence_s}s"))
        standby.wait_unit("beat", state="standby")
        (holder_pid,) = wait_copies(record, 1)
        partitioned_at = time.time()
        lost.partition()
        holder.wait_event("program.fenced", timeout=10)
        standby.wait_unit("beat", timeout=20, state="running")
        copies = wait_copies(record, 2)
        (taker_pid,) = set(copies) - {holder_pid}
        # the holder's copy was gone before the server could let go (fence + the 2 s margin);
        # the server let go of the lock only after the fence
        assert copies[holder_pid][1] - partitioned_at < fence_s + 2.0, copies
        assert copies[taker_pid][0] - partitioned_at > fence_s, copies
        assert overlaps(record) == []
    finally:
        lost.close()


def timeline_row(d: Daemon, name: str) -> dict[str, Any]:
    """One unit's row of the daemon's ``GET /v1/timeline``."""
    code, doc = d.client.request("GET", "/v1/timeline")
    assert code == 200, doc
    return next(row for row in doc["units"] if row["name"] == name)


def test_the_timeline_has_a_singleton_ready_only_once_it_started_here(
    run_daemon: Callable[..., Daemon], database: str, tmp_path: Path
) -> None:
    """The holder's beat is ready no earlier than it started; a standby reads ready null until it gets the lock."""
    record = tmp_path / "runs.txt"
    first = run_daemon(config(database, record))
    first.wait_ready()
    first.wait_unit("beat", state="running")
    held = timeline_row(first, "beat")
    assert held["started_s"] is not None and held["started_s"] <= held["ready_s"], held
    assert first.unit("beat")["timeline"]["started_s"] <= first.unit("beat")["timeline"]["ready_s"]
    second = run_daemon(config(database, record))
    second.wait_ready()
    second.wait_unit("beat", state="standby")
    waiting = timeline_row(second, "beat")
    assert (waiting["started_s"], waiting["ready_s"]) == (None, None) and waiting["standby_s"] is not None, waiting
    first.proc.kill()
    first.proc.wait()
    second.wait_unit("beat", timeout=10, state="running")
    took_over = timeline_row(second, "beat")
    assert waiting["standby_s"] < took_over["started_s"] <= took_over["ready_s"], took_over
