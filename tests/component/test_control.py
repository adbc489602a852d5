"""The control socket, the CLI and its exit codes, /healthz /readyz /metrics, reload."""

from __future__ import annotations

import grp
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PY, free_port, program, wait_until

TWO = f"""
[programs.alpha]
command = {program("sleeper")}
[programs.beta]
command = {program("sleeper")}
depends_on = ["alpha"]
"""


def cli(*args: str, env: dict[str, str] | None = None, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the supervisor CLI and capture what it prints."""
    cmd = [PY, "-m", "supervisor", *args]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[2],
    )


def test_status_table_json_and_exit_codes(run_daemon) -> None:
    """status prints a table or the document, and exits 0 when all is well, 1 when not."""
    d = run_daemon(TWO)
    d.wait_ready()
    table = cli("status", "--socket", d.socket)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["NAME", "KIND", "STATE"]
    assert any(line.startswith("alpha") and "running" in line for line in table.stdout.splitlines())
    doc = json.loads(cli("status", "--json", "--socket", d.socket).stdout)
    assert {u["name"]: u["state"] for u in doc["units"]} == {"alpha": "running", "beta": "running"}
    assert doc["supervisor"]["ready"] is True and doc["supervisor"]["pid"] == d.proc.pid
    assert cli("stop", "beta", "--socket", d.socket).returncode == 0
    not_ok = cli("status", "--json", "--socket", d.socket)
    assert not_ok.returncode == 1
    assert json.loads(not_ok.stdout)["units"][1]["state"] == "stopped"  # the whole document, whatever the code
    quiet = cli("status", "--quiet", "alpha", "--socket", d.socket)
    assert (quiet.returncode, quiet.stdout) == (0, "")


def test_start_stop_restart_round_trips(run_daemon) -> None:
    """stop holds a program down, start brings it back, restart gives it a new pid."""
    d = run_daemon(TWO)
    d.wait_ready()
    first = d.unit("alpha")["pid"]
    out = cli("restart", "alpha", "--socket", d.socket)
    assert out.returncode == 0 and out.stdout.startswith("alpha: running pid ")
    assert d.unit("alpha")["pid"] != first and d.unit("alpha")["last_exit"]["reason"] == "operator"
    assert cli("stop", "all", "--socket", d.socket).stdout.splitlines() == ["alpha: stopped", "beta: stopped"]
    assert d.unit("alpha")["state"] == "stopped"
    assert cli("start", "all", "--socket", d.socket).returncode == 0
    d.wait_unit("beta", state="running")
    missing = cli("start", "ghost", "--socket", d.socket)
    assert missing.returncode == 1 and "no program named 'ghost'" in missing.stderr


def test_logs_prints_the_last_lines_and_follows(run_daemon) -> None:
    """logs -n prints the last lines; -f keeps printing new ones."""
    d = run_daemon("""
[programs.talker]
command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done"]
""")
    d.wait_event("program.output", program="talker", line="line 5")
    out = cli("logs", "talker", "-n", "3", "--socket", d.socket)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3
    assert all("stdout line " in line for line in out.stdout.splitlines())
    follower = subprocess.Popen(
        [PY, "-m", "supervisor", "logs", "talker", "-n", "1", "-f", "--socket", d.socket],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        seen = [follower.stdout.readline() for _ in range(4)]
        numbers = [int(line.split()[-1]) for line in seen]
        assert numbers == sorted(numbers) and numbers[-1] > numbers[0]
    finally:
        follower.kill()
        follower.wait()


def test_exit_code_3_when_the_daemon_cannot_be_reached(tmp_path: Path) -> None:
    """Every client command exits 3 when nothing answers on the socket."""
    sock = str(tmp_path / "nobody.sock")
    for args in (["status"], ["start", "x"], ["stop", "x"], ["restart", "x"], ["logs", "x"], ["reload"]):
        out = cli(*args, "--socket", sock)
        assert out.returncode == 3, (args, out.stderr)
        assert "cannot reach the supervisor" in out.stderr


def test_bad_usage_exits_2_and_bad_config_exits_78(tmp_path: Path) -> None:
    """Unknown commands or flags exit 2; an invalid configuration exits 78 naming file and key."""
    assert cli("frobnicate").returncode == 2
    assert cli("status", "--bogus").returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[programs.web]\ncommand = ["x"]\nrestart = { policy = "sometimes" }\n')
    for command in ("run", "check", "migrate", "wait"):
        out = cli(command, "--config", str(bad))
        assert out.returncode == 78, (command, out.stderr)
        assert f"{bad}: programs.web.restart.policy:" in out.stderr


def test_check_prints_the_plan(tmp_path: Path) -> None:
    """check validates and prints the start-up order without starting anything."""
    path = tmp_path / "ok.toml"
    path.write_text(TWO)
    out = cli("check", "--config", str(path))
    assert out.returncode == 0
    assert "1. alpha (program)" in out.stdout and "2. beta (program)" in out.stdout


def test_second_daemon_is_refused_and_a_stale_socket_is_reused(run_daemon, tmp_path: Path) -> None:
    """A live socket refuses a second daemon (before it binds anything); a stale one is reused."""
    served = f'[programs.web]\ncommand = {program("http_ok")}\nlisten = "127.0.0.1:{free_port()}"\n'
    d = run_daemon(TWO + served)
    d.wait_ready()
    sock = d.socket
    config = tmp_path / "second.toml"
    config.write_text(f'[supervisor]\nsocket = "{sock}"\nhttp = ""\nlog_format = "json"\n' + TWO + served)
    second = subprocess.run(
        [PY, "-m", "supervisor", "run", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert second.returncode == 69
    assert "another supervisor answers" in second.stdout
    assert d.unit("alpha")["state"] == "running"  # the first one never noticed
    d.proc.kill()  # leaves its socket file behind
    d.proc.wait()
    assert os.path.exists(sock)
    d2 = run_daemon(TWO.replace("alpha", "gamma"))
    stale = Path(d2.dir, "supervisor.toml")
    stale.write_text(stale.read_text().replace(d2.socket, sock))
    d2.stop()
    d3 = subprocess.Popen([PY, "-m", "supervisor", "run", "--config", str(stale)], stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: cli("status", "--socket", sock).returncode == 0, 15, "a daemon on the stale socket")
    finally:
        d3.send_signal(signal.SIGTERM)
        d3.wait(30)


@pytest.mark.parametrize("warm", [False, True], ids=["validating", "from-the-cache"])
def test_a_daemon_that_finds_the_socket_lock_held_starts_nothing(tmp_path: Path, warm: bool) -> None:
    """Another supervisor still starting (it holds SOCKET.lock, and nobody answers yet): exit 69 first.

    Two daemons started in the same moment both find no socket; the lock is what tells them apart.
    """
    import fcntl

    starts, sock = tmp_path / "p.starts", tmp_path / "race.sock"
    config = tmp_path / "race.toml"
    config.write_text(
        f'[supervisor]\nsocket = "{sock}"\nhttp = ""\nlog_format = "json"\n'
        f'[programs.p]\ncommand = ["sh", "-c", "echo $$ >> {starts}; exec sleep 300"]\n'
    )
    argv = [PY, "-m", "supervisor", "run", "--config", str(config)]
    if warm:  # found in the cache: it would start p early without the lock
        assert cli("check", "--config", str(config)).returncode == 0
    with open(f"{sock}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the other supervisor does, from before its first program
        refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 69, refused.stdout + refused.stderr
    assert "another supervisor is starting" in refused.stdout and not starts.exists()
    # The holder gone, its lock file left behind is no lock.
    winner = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: cli("status", "--socket", str(sock)).returncode == 0, 15, "a daemon despite the old file")
    finally:
        winner.send_signal(signal.SIGTERM)
        winner.wait(30)


def status_as_nobody(socket_path: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `supervisor status` as nobody, with the system Python and a copy of the package.

    nobody cannot read our virtualenv; the client needs only the standard library anyway.
    """
    for parent in Path(socket_path).parents:  # let nobody reach the socket's directory
        if parent == Path(tempfile.gettempdir()):
            break
        os.chmod(parent, 0o755)
    pkg = tmp_path / "pkg"
    shutil.copytree(Path(__file__).resolve().parents[2] / "supervisor", pkg / "supervisor")
    for path in (pkg, *pkg.rglob("*")):
        os.chmod(path, 0o755)
    system_python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
    runuser = shutil.which("runuser") or "runuser"
    return subprocess.run(
        [runuser, "-u", "nobody", "--", system_python, "-m", "supervisor", "status", "--socket", socket_path],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(pkg), "PATH": "/usr/bin:/bin"},
        cwd="/",
    )


AS_ROOT = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root and runuser")


@AS_ROOT
def test_another_user_is_refused(run_daemon, tmp_path: Path) -> None:
    """The socket is 0600 and the peer uid is checked: another user gets nothing."""
    d = run_daemon(TWO)
    d.wait_ready()
    assert oct(os.stat(d.socket).st_mode & 0o777) == "0o600"
    os.chmod(d.socket, 0o666)  # even with the file mode opened, the uid check refuses
    out = status_as_nobody(d.socket, tmp_path)
    assert out.returncode == 1 and "may not control" in out.stderr, out
    assert d.unit("alpha")["state"] == "running"


@AS_ROOT
def test_group_opens_the_socket_to_its_members(run_daemon, tmp_path: Path) -> None:
    """With group set, the socket is 0660 with that group, and a member of it is served."""
    d = run_daemon('[supervisor]\ngroup = "nogroup"\n' + TWO)
    d.wait_ready()
    st = os.stat(d.socket)
    assert oct(st.st_mode & 0o777) == "0o660" and st.st_gid == grp.getgrnam("nogroup").gr_gid
    out = status_as_nobody(d.socket, tmp_path)
    assert out.returncode == 0, out
    assert "alpha" in out.stdout


def test_healthz_readyz_metrics(run_daemon) -> None:
    """/healthz answers, /readyz says why not ready, /metrics parses with the required families."""
    d = run_daemon(TWO)
    d.wait_ready()
    base = f"http://127.0.0.1:{d.http_port}"
    assert json.load(urllib.request.urlopen(f"{base}/healthz"))["status"] == "ok"
    assert json.load(urllib.request.urlopen(f"{base}/readyz")) == {"ready": True}
    cli("stop", "beta", "--socket", d.socket)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/readyz")
    assert info.value.code == 503 and json.load(info.value)["reasons"] == ["beta is stopped"]
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "supervisor_program_up",
        "supervisor_program_state",
        "supervisor_program_restarts",
        "supervisor_program_uptime_seconds",
        "supervisor_program_last_exit_code",
        "supervisor_program_rss_bytes",
        "supervisor_program_health_check_failures",
        "supervisor_dependency_ready",
        "supervisor_probe_duration_seconds",
        "supervisor_job_state",
        "supervisor_job_attempts",
        "supervisor_job_duration_seconds",
        "supervisor_ready",
    ):
        assert name in families, f"missing {name}"
    up = {s.labels["program"]: s.value for s in families["supervisor_program_up"].samples}
    assert up == {"alpha": 1.0, "beta": 0.0}
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(f"{base}/v1/programs/alpha/stop", method="POST"))
    assert info.value.code == 405  # no control over TCP


def test_notify_socket_gets_ready_watchdog_and_stopping(run_daemon, tmp_path: Path) -> None:
    """A real AF_UNIX datagram socket receives EXTEND_TIMEOUT_USEC, READY=1, WATCHDOG=1, STOPPING=1."""
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(10)
    try:
        with_job = TWO + '[jobs.prep]\ncommand = ["sleep", "0.3"]\ntimeout = "90s"\n'
        d = run_daemon(with_job, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        messages: list[str] = []

        def received(word: str) -> bool:
            while not any(word in m for m in messages):
                messages.append(listener.recv(4096).decode())
            return True

        received("READY=1")
        ready_at = len(messages)
        extend = [m for m in messages[:ready_at] if "EXTEND_TIMEOUT_USEC=" in m]
        assert extend and "EXTEND_TIMEOUT_USEC=120000000" in extend[0]  # job timeout + 30s, while it ran
        assert d.unit("beta")["state"] == "running"  # READY=1 only once programs are up
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in messages[:ready_at])
        received("WATCHDOG=1")
        watchdogs = sum("WATCHDOG=1" in m for m in messages)
        received("WATCHDOG=1") if watchdogs < 2 else None
        d.signal(signal.SIGTERM)
        received("STOPPING=1")
        assert d.wait_exit() == 0
    finally:
        listener.close()


def test_sighup_restarts_only_the_changed_program(run_daemon) -> None:
    """After a SIGHUP, only the program whose definition changed gets a new pid."""
    d = run_daemon(TWO)
    d.wait_ready()
    pids = {n: d.unit(n)["pid"] for n in ("alpha", "beta")}
    d.config.write_text(
        d.config.read_text().replace(
            f"command = {program('sleeper')}\ndepends_on", 'command = ["sleep", "300"]\ndepends_on'
        )
    )
    d.signal(signal.SIGHUP)
    d.wait_event("config.reloaded")
    beta = d.wait_unit("beta", state="running", restarts=1)
    assert beta["pid"] != pids["beta"] and beta["last_exit"]["reason"] == "reload"
    assert d.unit("alpha")["pid"] == pids["alpha"]


def test_invalid_reload_changes_nothing(run_daemon) -> None:
    """A SIGHUP or reload with an invalid file is refused with the reason, and nothing changes."""
    d = run_daemon(TWO)
    d.wait_ready()
    pids = {n: d.unit(n)["pid"] for n in ("alpha", "beta")}
    good = d.config.read_text()
    d.config.write_text(good + "\n[programs.gamma]\ncommand = []\n")
    d.signal(signal.SIGHUP)
    refused = d.wait_event("config.reload_refused")
    assert any("programs.gamma.command" in p for p in refused["problems"])
    assert refused["config"] == str(d.config)  # SIGHUP has no client to print it: the log names the file
    out = cli("reload", "--socket", d.socket)
    assert out.returncode == 1 and "programs.gamma.command" in out.stdout
    assert {n: d.unit(n)["pid"] for n in ("alpha", "beta")} == pids
    before = len(d.events("config.reload_refused"))
    d.config.write_text("[programs\n")  # not TOML: no key to name
    d.signal(signal.SIGHUP)
    wait_until(lambda: len(d.events("config.reload_refused")) > before, 15, "the refusal", seen=d.tail)
    (problem,) = d.events("config.reload_refused")[-1]["problems"]
    assert problem.startswith("(top level): not valid TOML"), problem
    assert {n: d.unit(n)["pid"] for n in ("alpha", "beta")} == pids
    assert [u["name"] for u in d.status()["units"]] == ["alpha", "beta"]


SLOW_STOP = """
import signal, sys, time
def term(*_):
    time.sleep(1.0)  # a warm shutdown: finish what is running, then go
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("up", flush=True)
while True:
    signal.pause()
"""


def test_reload_reports_a_restart_once_it_played_out_and_stop_names_each_program_once(run_daemon) -> None:
    """reload answers after a slow warm shutdown and the new start, saying so; `stop w w` prints w once."""
    d = run_daemon(f'[programs.worker]\ncommand = ["{PY}", "-c", {json.dumps(SLOW_STOP)}]\nmin_uptime = 0\n')
    d.wait_ready()
    first = d.unit("worker")["pid"]
    d.config.write_text(d.config.read_text().replace("min_uptime = 0", 'min_uptime = 0\nenvironment = { V = "2" }'))
    out = cli("reload", "--socket", d.socket)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "restarted worker", out.stdout
    assert d.unit("worker")["state"] == "running"
    assert d.unit("worker")["pid"] != first
    stopped = cli("stop", "worker", "worker", "--socket", d.socket)
    assert stopped.stdout.splitlines() == ["worker: stopped"], stopped.stdout
