"""`instances = N` with real processes: names and environment, one shared socket, rolling restarts, scale, reload."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from typing import Any

from tests.conftest import PY, Daemon, alive, free_port, program, wait_until


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``supervisor ARGS`` against daemon ``d``."""
    argv = [PY, "-m", "supervisor", args[0], "--socket", d.socket, *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def pids(d: Daemon, base: str) -> dict[str, int]:
    """The running pid of each instance of ``base``."""
    return {u["name"]: u["pid"] for u in d.status()["units"] if u["name"].startswith(f"{base}:")}


def sequence(d: Daemon, after: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (event, program) of starts and readiness of ``names`` logged after the event ``after``."""
    events = d.events()
    first = next(i for i, e in enumerate(events) if e.get("event") == after)
    wanted = ("program.started", "program.ready")
    return [(e["event"], e["program"]) for e in events[first:] if e.get("event") in wanted and e["program"] in names]


SLEEPERS = """
[programs.web]
command = ["sh", "-c", "echo index=${SUPERVISOR_INSTANCE} env=$SUPERVISOR_INSTANCE; exec sleep 100"]
instances = 3
min_uptime = "300ms"
stop_timeout = "2s"
[programs.other]
command = ["sleep", "100"]
depends_on = ["web"]
min_uptime = "0s"
"""


def test_instances_are_named_get_their_index_and_logs_merge_them(run_daemon) -> None:
    """web:0..2 run with SUPERVISOR_INSTANCE and ${SUPERVISOR_INSTANCE} = their index; `logs web` shows all three."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    names = [u["name"] for u in d.status()["units"]]
    assert names == ["web:0", "web:1", "web:2", "other"]
    lines = wait_until(
        lambda: (out := cli(d, "logs", "web")).stdout.count("index=") == 3 and out.stdout, 10, "three lines"
    )
    for i in range(3):
        assert f"web:{i} |" in lines and f"index={i} env={i}" in lines
    assert "index=1" in cli(d, "logs", "web:1").stdout and "index=0" not in cli(d, "logs", "web:1").stdout
    table = cli(d, "status", "web")
    assert table.returncode == 0 and "web:2" in table.stdout and "other" not in table.stdout
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=10).read().decode()
    assert 'supervisor_program_up{program="web:1"} 1.0' in metrics
    # other depends on web: the timeline's critical chain runs through the last instance to be ready
    chain = d.client.request("GET", "/v1/timeline")[1]["critical_chain"]
    assert chain[-1] == "other" and chain[-2].startswith("web:"), chain


def test_stop_and_start_act_on_all_instances_or_one(run_daemon) -> None:
    """`stop web` stops every instance; `start web:1` starts that one; `restart web:2` restarts only it."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    assert cli(d, "stop", "web").returncode == 0
    assert {u["name"]: u["state"] for u in d.status()["units"] if u["name"] != "other"} == dict.fromkeys(
        ("web:0", "web:1", "web:2"), "stopped"
    )
    assert cli(d, "start", "web:1").returncode == 0
    assert d.unit("web:1")["state"] == "running" and d.unit("web:0")["state"] == "stopped"
    assert cli(d, "start", "web").returncode == 0
    before = pids(d, "web")
    out = cli(d, "restart", "web:2")
    assert out.returncode == 0, out.stderr
    after = pids(d, "web")
    assert after["web:2"] != before["web:2"] and {k: after[k] for k in ("web:0", "web:1")} == {
        k: before[k] for k in ("web:0", "web:1")
    }


def test_restart_replaces_instances_one_at_a_time_each_after_the_one_before_is_running(run_daemon) -> None:
    """A rolling `restart web`: web:1 starts only once web:0 is ready again, web:2 once web:1 is."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    before = pids(d, "web")
    out = cli(d, "restart", "web")
    assert out.returncode == 0, out.stderr
    after = pids(d, "web")
    assert all(after[n] != before[n] and not alive(before[n]) for n in before)
    order = sequence(d, "program.rolling_restart", ("web:0", "web:1", "web:2"))
    assert order == [
        ("program.started", "web:0"),
        ("program.ready", "web:0"),
        ("program.started", "web:1"),
        ("program.ready", "web:1"),
        ("program.started", "web:2"),
        ("program.ready", "web:2"),
    ]
    assert d.unit("other")["restarts"] == 0


def test_instances_accept_on_one_shared_listen_socket(run_daemon) -> None:
    """Two instances of an HTTP server on one `listen` address both serve requests to that one port."""
    port = free_port()
    d = run_daemon(f"""
[programs.web]
command = {program("http_ok")}
listen = "127.0.0.1:{port}"
instances = 2
stop_timeout = "5s"
""")
    d.wait_ready()
    want = {str(pid) for pid in pids(d, "web").values()}
    served: set[str] = set()

    def both_served() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            served.add(resp.read().decode().split()[1])
        return served == want

    wait_until(both_served, 20, f"both pids {want} to answer on port {port}", seen=lambda: served, interval=0)


def test_scale_up_and_down_leaves_the_other_instances_alone(run_daemon) -> None:
    """`scale web 5` starts web:3 and web:4; `scale web 2` stops web:2..4; web:0 and web:1 keep their pids."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    before = pids(d, "web")
    out = cli(d, "scale", "web", "5")
    assert out.returncode == 0, out.stderr
    assert "3 -> 5" in out.stdout and "started web:3, web:4" in out.stdout
    up = pids(d, "web")
    assert list(up) == [f"web:{i}" for i in range(5)]
    assert {n: up[n] for n in before} == before
    wait_until(lambda: d.unit("web:4")["state"] == "running", 10, "web:4 running")
    # completion without a file at hand asks the daemon: the program's name, then its live instances
    names = cli(d, "_names", "--programs").stdout.split()
    assert names == ["web", *(f"web:{i}" for i in range(5)), "other"], names
    code, doc = d.client.request("POST", "/v1/programs/web/scale", {"instances": 2})
    assert code == 200 and doc["removed"] == ["web:2", "web:3", "web:4"], doc
    assert [p["name"] for p in doc["programs"]] == ["web:0", "web:1"]
    assert pids(d, "web") == {n: before[n] for n in ("web:0", "web:1")}
    assert not any(alive(up[n]) for n in ("web:2", "web:3", "web:4"))
    assert d.unit("other")["restarts"] == 0
    scaled = d.events("program.scaled", program="web")
    assert [(e["was"], e["instances"]) for e in scaled] == [(3, 5), (5, 2)]


def test_a_scale_to_hundreds_answers_once_every_new_one_runs_and_healthz_answers_meanwhile(run_daemon) -> None:
    """`scale s 400`: started over several gating passes, yet the answer comes with all 400 running.

    A pass that spawned them all at once held the loop (a second for 1,000); a sliced one yields,
    and the scale waits for a pass over every unit before it waits for each to settle.
    """
    d = run_daemon(
        """
[programs.s]
command = ["sleep", "100"]
instances = 1
min_uptime = "200ms"
"""
    )
    d.wait_ready()
    code, doc = d.client.request("POST", "/v1/programs/s/scale", {"instances": 400})
    assert code == 200, doc
    states = {p["state"] for p in doc["programs"]}
    assert len(doc["programs"]) == 400 and states == {"running"}, states
    with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/healthz", timeout=10) as resp:
        assert resp.status == 200
    code, doc = d.client.request("POST", "/v1/programs/s/scale", {"instances": 1})
    assert code == 200 and len(doc["removed"]) == 399, doc


def test_a_scale_of_instances_that_do_not_start_yet_answers_at_once(run_daemon) -> None:
    """`autostart = false`, or waiting on a dependency that never answers: the scale answers, not after 75 s.

    The scale waits for a gating pass that begins after it; when nothing else changed, no pass
    came, and the answer waited for the scale's whole bound (stop_total + start_timeout + 5 s).
    """
    d = run_daemon(
        """
[dependencies.db]
type = "tcp"
url = "tcp://127.0.0.1:1"
timeout = "10m"
[programs.manual]
command = ["sleep", "100"]
instances = 1
autostart = false
[programs.api]
command = ["sleep", "100"]
instances = 1
depends_on = ["db"]
"""
    )
    wait_until(lambda: d.unit("api:0")["state"] == "pending", 15, "api:0 to wait for db")
    for name, state in (("manual", "stopped"), ("api", "pending")):
        began = time.monotonic()
        code, doc = d.client.request("POST", f"/v1/programs/{name}/scale", {"instances": 3})
        assert code == 200 and {p["state"] for p in doc["programs"]} == {state}, doc
        assert time.monotonic() - began < 10, f"scale {name} 3 took {time.monotonic() - began:.1f} s"


def test_bad_scales_are_refused_with_a_4xx_and_exit_1_and_change_nothing(run_daemon) -> None:
    """scale to -1, 0 or 99999, of an instance, an unknown program or one without instances: 4xx, exit 1."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    before = pids(d, "web")
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("web", "-1"), 400, "from 1 to 1000"),
        (("web", "0"), 400, "from 1 to 1000"),
        (("web", "99999"), 400, "from 1 to 1000"),
        (("web:1", "2"), 400, "web:1 is an instance of web: scale web itself"),
        (("ghost", "2"), 404, "no program named 'ghost' (programs: web, other)"),
        (("other", "2"), 400, "other has no instances"),
    ]
    for (name, count), status, words in cases:
        code, doc = d.client.request("POST", f"/v1/programs/{name}/scale", {"instances": int(count)})
        assert code == status and words in doc["error"], doc
        out = cli(d, "scale", name, count)
        assert out.returncode == 1 and words in out.stderr, out
        assert out.stderr == f"supervisor: {doc['error']}\n", out  # the reason names the program once
    assert pids(d, "web") == before


def test_a_reload_that_changes_the_count_starts_and_stops_only_the_difference(run_daemon) -> None:
    """instances 3 -> 4 in the file: web:3 starts, the others keep their pids; 4 -> 2 stops web:2 and web:3."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    before = pids(d, "web")
    other = d.unit("other")["pid"]
    d.config.write_text(d.config.read_text().replace("instances = 3", "instances = 4"))
    result: dict[str, Any] = d.client.request("POST", "/v1/reload")[1]
    assert result["added"] == ["web:3"] and result["changed"] == [], result
    now = pids(d, "web")
    assert {n: now[n] for n in before} == before and d.unit("web:3")["state"] == "running"
    d.config.write_text(d.config.read_text().replace("instances = 4", "instances = 2"))
    result = d.client.request("POST", "/v1/reload")[1]
    assert result["removed"] == ["web:2", "web:3"] and result["changed"] == [], result
    assert pids(d, "web") == {n: before[n] for n in ("web:0", "web:1")}
    assert d.unit("other")["pid"] == other


def test_a_reload_that_changes_the_program_replaces_its_instances_one_at_a_time(run_daemon) -> None:
    """A new environment for web: web:0, web:1, web:2 restart in turn, each after the one before is ready."""
    d = run_daemon(SLEEPERS)
    d.wait_ready()
    before = pids(d, "web")
    d.config.write_text(d.config.read_text().replace("instances = 3", 'instances = 3\nenvironment = { V = "2" }'))
    result: dict[str, Any] = d.client.request("POST", "/v1/reload")[1]
    assert result["changed"] == ["web:0", "web:1", "web:2"], result
    assert result["states"] == {"web:0": "running", "web:1": "running", "web:2": "running"}, result
    after = pids(d, "web")
    assert all(after[n] != before[n] for n in before)
    order = sequence(d, "config.reloaded", ("web:0", "web:1", "web:2"))
    assert order == [(k, f"web:{i}") for i in range(3) for k in ("program.started", "program.ready")]


def test_exec_like_a_program_with_instances_runs_as_its_first(tmp_path) -> None:
    """`exec --like web` of a program with instances gets web:0's environment; --like web:2 that instance's."""
    path = tmp_path / "supervisor.toml"
    path.write_text(
        SLEEPERS.replace("instances = 3", 'instances = 3\nenvironment = { ME = "web-${SUPERVISOR_INSTANCE}" }')
    )
    show = [PY, "-c", "import os; print(os.environ['ME'], os.environ['SUPERVISOR_INSTANCE'])"]
    for like, want in (("web", "web-0 0"), ("web:2", "web-2 2")):
        argv = [PY, "-m", "supervisor", "exec", "-c", str(path), "--no-wait", "--like", like, "--", *show]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, want), done.stderr
