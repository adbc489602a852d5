"""The operator's everyday commands over a real daemon: logs, signal, timeline, reload, discovery."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from supervisor.client.api import find_socket
from supervisor.client.render import log_line, unit_colour
from supervisor.config.interpolation import default_socket
from tests.conftest import PY, program, wait_until

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the supervisor CLI and capture what it prints."""
    full = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_SOCKET", "SUPERVISOR_CONFIG")}
    return subprocess.run(
        [PY, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**full, **(env or {})},
        cwd=cwd,
    )


def counter(word: str, pause: float) -> str:
    """Return a command that prints ``word N`` with N counting up, announcing its pid first."""
    return json.dumps(
        ["sh", "-c", f'echo "{word} start $$"; i=0; while true; do i=$((i+1)); echo "{word} $i"; sleep {pause}; done']
    )


LOGS = f"""
[programs.a]
command = {counter("a", 0.05)}
[programs.longername]
command = {counter("longername", 0.07)}
[jobs.once]
command = ["sh", "-c", "echo once 1; echo once 2"]
"""


def numbers(lines: list[str], unit: str) -> list[int]:
    """Return the counters one unit printed, in the order they were shown."""
    out = []
    for line in lines:
        name, _, rest = line.partition("|")
        words = rest.split()
        if name.strip() == unit and words[-1].isdigit() and words[-2] == unit:
            out.append(int(words[-1]))
    return out


def test_logs_without_names_merges_every_unit_in_time_order(run_daemon) -> None:
    """logs with no name shows programs and the job, each line under its padded name, each unit in order."""
    d = run_daemon(LOGS)
    d.wait_event("program.output", program="a", line="a 12")
    d.wait_event("program.output", program="longername", line="longername 12")  # ten past its start line
    out = cli("logs", "-n", "10", "--socket", d.socket)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert {line.split("|")[0] for line in lines} == {"a          ", "longername ", "once       "}
    assert "\x1b[" not in out.stdout  # colour only on a terminal
    for unit in ("a", "longername"):
        seen = numbers(lines, unit)
        assert len(seen) == 10 and seen == sorted(seen) and seen[-1] - seen[0] == 9, (unit, seen)
    code, doc = d.client.request("GET", "/v1/logs?lines=10")
    times = [row["time"] for row in doc["lines"]]
    assert code == 200 and times == sorted(times) and {r["unit"] for r in doc["lines"]} == {"a", "longername", "once"}
    only = cli("logs", "once", "longername", "-n", "2", "--socket", d.socket).stdout.splitlines()
    assert sorted(line.split("|")[0].strip() for line in only) == ["longername", "longername", "once", "once"]
    missing = cli("logs", "ghost", "--socket", d.socket)
    assert missing.returncode == 1 and "no program or job named ghost" in missing.stderr


def test_logs_follow_goes_on_across_a_restart_and_picks_up_a_reloaded_unit(run_daemon) -> None:
    """logs -f keeps following a program through its restart, and shows a unit that a reload added."""
    d = run_daemon(LOGS)
    d.wait_event("program.output", program="a", line="a 3")
    first_pid = d.unit("a")["pid"]
    follower = subprocess.Popen(
        [PY, "-m", "supervisor", "logs", "-n", "0", "-f", "--socket", d.socket],
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []

    def pump() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            seen.append(line)

    threading.Thread(target=pump, daemon=True).start()

    def read_until(needle: str) -> bool:
        return wait_until(
            lambda: any(needle in line for line in seen), 15, f"logs -f to print {needle!r}", seen=lambda: seen[-8:]
        )

    try:
        assert read_until("a ")  # following has begun
        assert cli("restart", "a", "--socket", d.socket).returncode == 0
        new_pid = d.unit("a")["pid"]
        assert new_pid != first_pid
        assert read_until(f"a start {new_pid}") and read_until("a 3\n"), seen[-5:]
        after = seen[next(i for i, line in enumerate(seen) if f"a start {new_pid}" in line) :]
        assert numbers(after, "a")[:3] == [1, 2, 3]  # the new incarnation's lines, in order
        d.config.write_text(d.config.read_text() + f"\n[programs.added]\ncommand = {counter('added', 0.1)}\n")
        reload = cli("reload", "--socket", d.socket)
        assert reload.returncode == 0
        assert reload.stdout.startswith("added added; unchanged: a, longername"), reload.stdout
        assert read_until("stdout added start "), seen[-5:]
        assert next(line for line in seen if "stdout added start" in line).startswith("added      | ")
    finally:
        follower.kill()
        follower.wait()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_logs_follow_exits_3_when_the_daemon_goes_away(run_daemon, how: str) -> None:
    """logs -f ends when the daemon does, stopped or killed: it says so and exits 3 (unreachable)."""
    d = run_daemon(LOGS)
    d.wait_event("program.output", program="a", line="a 3")
    follower = subprocess.Popen(
        [PY, "-m", "supervisor", "logs", "-n", "1", "-f", "a", "--socket", d.socket],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().startswith("a | ")  # following has begun
        d.signal(getattr(signal, how))
        d.wait_exit()
        code = follower.wait(30)
        err = follower.stderr.read() if follower.stderr is not None else ""
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert code == 3, err
    assert "closed the stream" in err, err


def test_log_colours_are_stable_per_unit() -> None:
    """On a terminal each unit's name column has a colour that depends only on its name."""
    row = {"unit": "web", "time": 0.0, "stream": "stdout", "line": "hello"}
    assert log_line(row, 5, True).startswith(f"\x1b[{unit_colour('web')}mweb   |\x1b[0m")
    assert unit_colour("web") == unit_colour("web") and log_line(row, 5, False).startswith("web   | ")
    assert len({unit_colour(n) for n in ("web", "worker", "beat", "migrate", "postgres")}) > 1


def recorded(path: Path) -> list[tuple[int, str]]:
    """Return (pid, signal name) for every signal the recorder wrote down."""
    if not path.exists():
        return []
    return [(int(p), s) for p, s in (line.split() for line in path.read_text().splitlines())]


def test_signal_reaches_the_main_process_or_the_whole_group(run_daemon, tmp_path: Path) -> None:
    """signal goes to the main process only; with --group its child gets it too; names and numbers work."""
    record = tmp_path / "signals.txt"
    d = run_daemon(f"[programs.rec]\ncommand = {program('signal_recorder', record)}\n")
    main = d.wait_unit("rec", state="running")["pid"]
    d.wait_event("program.output", program="rec", line=f"main {main} ready")

    def child_pid() -> int | None:
        lines = [e["line"] for e in d.events("program.output", program="rec")]
        return next((int(line.split()[1]) for line in lines if line.startswith("child ")), None)

    child = wait_until(child_pid, 15, "the recorder's child to be ready", seen=d.tail)
    main = d.unit("rec")["pid"]
    out = cli("signal", "rec", "HUP", "--socket", d.socket)
    assert (out.returncode, out.stdout.strip()) == (0, f"rec: sent SIGHUP to pid {main}")
    wait_until(lambda: (main, "SIGHUP") in recorded(record), 10, "the main process to record SIGHUP")
    assert cli("signal", "rec", "SIGUSR1", "--group", "--socket", d.socket).returncode == 0
    wait_until(
        lambda: {(main, "SIGUSR1"), (child, "SIGUSR1")} <= set(recorded(record)), 10, "both processes to get SIGUSR1"
    )
    assert cli("signal", "rec", str(12), "--socket", d.socket).returncode == 0  # 12 is SIGUSR2 on Linux
    wait_until(lambda: (main, "SIGUSR2") in recorded(record), 10, "the main process to record SIGUSR2")
    assert (child, "SIGHUP") not in recorded(record) and (child, "SIGUSR2") not in recorded(record)
    bad = cli("signal", "rec", "NOPE", "--socket", d.socket)
    assert bad.returncode == 1 and "no such signal: 'NOPE'" in bad.stderr
    ghost = cli("signal", "ghost", "HUP", "--socket", d.socket)
    assert ghost.returncode == 1 and "no program named 'ghost'" in ghost.stderr
    assert d.client.request("POST", "/v1/programs/rec/signal", {"signal": "HUP", "group": "yes"})[0] == 400
    assert d.client.request("POST", "/v1/programs/ghost/signal", {"signal": "HUP"})[0] == 404
    assert cli("stop", "rec", "--socket", d.socket).returncode == 0
    code, doc = d.client.request("POST", "/v1/programs/rec/signal", {"signal": 1, "group": False})
    assert code == 409 and "not running" in doc["error"]
    stopped = cli("signal", "rec", "HUP", "--socket", d.socket)
    assert stopped.returncode == 1 and "rec is not running (it is stopped)" in stopped.stderr


GRAPH = f"""
[jobs.slow]
command = ["sleep", "2"]
[jobs.quick]
command = ["true"]
[programs.fast]
command = {program("sleeper")}
[programs.side]
command = {program("sleeper")}
depends_on = ["quick"]
[programs.gate]
command = {program("sleeper")}
depends_on = ["fast", "slow", "quick"]
[programs.last]
command = {program("sleeper")}
depends_on = ["gate"]
"""


def test_timeline_follows_the_dependency_graph_and_marks_the_critical_chain(run_daemon) -> None:
    """Each unit becomes eligible after its dependencies are ready; the chain is slow -> gate -> last."""
    d = run_daemon(GRAPH)
    d.wait_ready(30)
    wait_until(lambda: d.unit("last")["timeline"]["ready_s"] is not None, 15, "last to be ready", seen=d.tail)
    status = {u["name"]: u for u in d.status()["units"]}
    deps = {"side": ["quick"], "gate": ["fast", "slow", "quick"], "last": ["gate"]}
    for name, unit in status.items():
        t = unit["timeline"]
        assert t["eligible_s"] is not None and t["ready_s"] is not None, (name, t)
        assert t["eligible_s"] <= (t["started_s"] if t["started_s"] is not None else t["ready_s"]) <= t["ready_s"]
        for dep in deps.get(name, []):
            assert status[dep]["timeline"]["ready_s"] <= t["eligible_s"], (name, dep, status)
    assert status["slow"]["timeline"]["ready_s"] >= 1.5  # it slept 2 s
    out = cli("timeline", "--json", "--socket", d.socket)
    doc = json.loads(out.stdout)
    assert doc["critical_chain"] == ["slow", "gate", "last"], doc
    assert {u["name"] for u in doc["units"] if u["critical"]} == {"slow", "gate", "last"}
    text = cli("timeline", "--socket", d.socket).stdout
    marked = {line.split()[1] for line in text.splitlines() if line.startswith("*")}
    assert marked == {"slow", "gate", "last"}, text
    assert "critical chain: slow -> gate -> last" in text and "=" in text


def test_reload_answers_in_words_and_json(run_daemon) -> None:
    """reload says what it restarted, added, removed and left alone; --json gives the document."""
    d = run_daemon(LOGS)
    d.wait_ready()
    text = d.config.read_text().replace(counter("a", 0.05), counter("a", 0.06))
    d.config.write_text(text.replace("[programs.longername]", "[programs.renamed]"))
    out = cli("reload", "--socket", d.socket)
    assert out.returncode == 0
    assert out.stdout.strip() == "restarted a; added renamed; removed longername", out.stdout
    again = json.loads(cli("reload", "--json", "--socket", d.socket).stdout)
    assert again["changed"] == [] and sorted(again["unchanged"]) == ["a", "renamed"]
    assert cli("reload", "--socket", d.socket).stdout.strip() == "unchanged: a, renamed"


def test_socket_discovery_says_where_it_looked(run_daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client finds the socket from --socket, the environment or the configuration, and says which."""
    nowhere = str(tmp_path / "none.sock")
    for args, env, origin in (
        (["--socket", nowhere], {}, "--socket"),
        ([], {"SUPERVISOR_SOCKET": nowhere}, "$SUPERVISOR_SOCKET"),
    ):
        out = cli("status", *args, env=env, cwd=tmp_path)
        assert out.returncode == 3
        assert f"cannot reach the supervisor at {nowhere} (from {origin})" in out.stderr
        assert "--socket PATH or SUPERVISOR_SOCKET=PATH" in out.stderr
    conf = tmp_path / "conf.toml"
    conf.write_text('[supervisor]\nsocket = "sub/${SOCK_NAME:-x}.sock"\n')
    out = cli("status", "--config", str(conf), env={"SOCK_NAME": "y"}, cwd=ROOT)
    assert out.returncode == 3 and f"{tmp_path}/sub/y.sock (from {conf})" in out.stderr
    monkeypatch.chdir(tmp_path)  # no conf/supervisor.toml here
    for name in ("SUPERVISOR_SOCKET", "SUPERVISOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path, origin = find_socket(None, None)
    assert path == default_socket() and origin.startswith("the built-in default")
    monkeypatch.setenv("SUPERVISOR_SOCKET", "/x.sock")
    assert default_socket() == "/x.sock"  # a daemon without a configured socket honours it too
    monkeypatch.delenv("SUPERVISOR_SOCKET")
    bad = tmp_path / "bad.toml"
    bad.write_text("[supervisor\n")
    for args, env in ((["--config", str(bad)], {}), ([], {"SUPERVISOR_CONFIG": str(bad)})):
        out = cli("status", *args, env=env, cwd=tmp_path)
        assert out.returncode == 78 and "not valid TOML" in out.stderr and str(bad) in out.stderr, out
        assert out.stderr.endswith(
            "\n  the socket is read from that file: --socket PATH or SUPERVISOR_SOCKET=PATH"
            " reaches a daemon without it\n"
        ), out  # the way to status with a broken file
    missing = cli("logs", "--config", str(tmp_path / "missing.toml"), cwd=tmp_path)
    assert missing.returncode == 78, missing
    first = missing.stderr.splitlines()[0]
    assert first == f"supervisor: no configuration file at {tmp_path}/missing.toml (from --config)", missing
    d = run_daemon(LOGS)
    d.wait_ready()
    found = cli("status", env={"SUPERVISOR_CONFIG": str(d.config)}, cwd=Path("/"))
    assert found.returncode == 0 and "longername" in found.stdout, found.stderr
    hinted = cli("status", "--socket", d.socket, env={"SUPERVISOR_CONFIG": str(bad)}, cwd=Path("/"))
    assert hinted.returncode == 0 and "longername" in hinted.stdout, hinted.stderr  # the hint's way works


def test_version_and_the_version_flag_agree() -> None:
    """`supervisor version` prints what --version prints."""
    assert cli("version").stdout == cli("--version").stdout and cli("version").stdout.startswith("supervisor ")


def complete(shell_script: str, words: list[str], config: Path) -> list[str]:
    """Run the bash completion function for ``words`` and return what it offers."""
    driver = (
        f"{shell_script}\n"
        f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
        "_supervisor; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    env = {**os.environ, "PATH": f"{Path(PY).parent}:{os.environ['PATH']}", "SUPERVISOR_CONFIG": str(config)}
    out = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, timeout=30, env=env, cwd=ROOT)
    return out.stdout.split()


def test_bash_completion_offers_commands_flags_and_configured_names(tmp_path: Path) -> None:
    """The bash script parses, and completes commands, a command's flags, and names from the configuration."""
    if not (Path(PY).parent / "supervisor").exists():
        pytest.skip("the supervisor command is not installed beside this Python")
    script = cli("completion", "bash").stdout
    path = tmp_path / "supervisor.bash"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, timeout=30).returncode == 0
    config = tmp_path / "c.toml"
    config.write_text(LOGS)
    assert {"status", "logs", "signal", "timeline", "version", "completion"} <= set(
        complete(script, ["supervisor", ""], config)
    )
    assert "--watch" in complete(script, ["supervisor", "status", "--"], config)
    assert set(complete(script, ["supervisor", "restart", ""], config)) == {"all", "a", "longername"}
    assert set(complete(script, ["supervisor", "logs", ""], config)) == {"a", "longername", "once"}
    assert "HUP" in complete(script, ["supervisor", "signal", "a", ""], config)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses(tmp_path: Path) -> None:
    """The zsh script passes zsh -n."""
    path = tmp_path / "_supervisor"
    path.write_text(cli("completion", "zsh").stdout)
    out = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_completion_names_come_from_the_configuration(tmp_path: Path) -> None:
    """The hidden _names command lists programs (or every unit) and is silent on a bad file."""
    config = tmp_path / "c.toml"
    config.write_text(LOGS)
    assert cli("_names", "--programs", "--config", str(config)).stdout.split() == ["a", "longername"]
    assert cli("_names", "--config", str(tmp_path / "nope.toml")).stdout == ""


def test_a_restart_that_waits_out_a_stop_ladder_says_so_and_ctrl_c_leaves_it_to_the_daemon(run_daemon) -> None:
    """After 2 s without an answer the command says what it waits for; leaving early does not undo the restart."""
    d = run_daemon(f"""
[programs.stubborn]
command = {program("ignores_sigterm")}
stop_timeout = "4s"
stack_dump = false
min_uptime = 0
""")
    first = d.wait_unit("stubborn", state="running")["pid"]
    d.wait_event("program.output", program="stubborn", line="ignoring SIGTERM")
    # With the client's request timeout cut to 1 s: a restart waits however long the ladder takes.
    patched = "import sys; from supervisor.client import api; api.TIMEOUT_S = 1.0; from supervisor.cli import main"
    argv = [PY, "-c", f"{patched}; sys.exit(main())", "restart", "stubborn", "--socket", d.socket]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "stubborn: restart under way, waiting for its stop ladder (stop_timeout) first" in out.stderr
    second = d.unit("stubborn")["pid"]
    assert out.stdout.strip() == f"stubborn: running pid {second}" and second != first
    wait_until(
        lambda: len(d.events("program.output", program="stubborn", line="ignoring SIGTERM")) == 2,
        10,
        "the new incarnation to ignore SIGTERM",
    )

    # Ctrl-C of the command (SIGINT) while the daemon waits out the ladder: the restart goes on.
    proc = subprocess.Popen(
        [PY, "-m", "supervisor", "restart", "stubborn", "--socket", d.socket],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: d.events("program.stopping", program="stubborn", pid=second), 10, "the stop to begin")
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    third = wait_until(
        lambda: (pid := d.unit("stubborn")["pid"]) not in (None, second) and pid, 20, "a new incarnation", seen=d.tail
    )
    assert third != first
