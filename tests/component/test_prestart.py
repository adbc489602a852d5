"""A warm start spawns the programs that wait on nothing before the engine is up, and the engine adopts them."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import PY, free_port, wait_until

# `check` first, in the very environment of the `run` that follows, as ExecStartPre or an image
# build does: the `run` finds the file validated in the cache, and starts early.
WARM = ("sh", "-c", '"$1" -m supervisor check --config "$6" >/dev/null && exec "$@"', "sh")


def appends_pid(path: Path, then: str = "exec sleep 300") -> str:
    """A command that appends its pid to ``path`` (once per start), then goes on with ``then``."""
    return f'["sh", "-c", "echo $$ >> {path}; {then}"]'


def test_programs_that_wait_on_nothing_start_early_and_are_adopted_once(run_daemon, tmp_path: Path) -> None:
    """a and c wait on nothing: started early, each once; b waits for a: started by the engine."""
    starts = tmp_path / "a.starts"
    d = run_daemon(
        f"[programs.a]\ncommand = {appends_pid(starts, 'echo hello-from-a; exec sleep 300')}\n"
        '[programs.b]\ncommand = ["sleep", "301"]\ndepends_on = ["a"]\n'
        '[programs.c]\ncommand = ["sh", "-c", "exit 3"]\nrestart = { policy = "never" }\n',
        prefix=WARM,
    )
    early = d.wait_event("supervisor.started_early")
    assert early["programs"] == ["a", "c"]
    d.wait_event("supervisor.ready")  # not wait_ready: c exited, which status counts as a problem
    a = d.unit("a")
    assert a["state"] == "running" and a["restarts"] == 0
    assert starts.read_text().split() == [str(a["pid"])], "a started twice, or not by the process adopted"
    wait_until(lambda: d.events("program.output", line="hello-from-a"), 10, "a's first line in the log", seen=d.tail)
    # c exited before the engine had a SIGCHLD handler: reaped all the same, on its first turn.
    c = wait_until(lambda: (u := d.unit("c"))["state"] == "exited" and u, 10, "c to be seen exited", seen=d.tail)
    assert c["last_exit"] == {"code": 3, "reason": "exit"}
    assert d.unit("b")["state"] == "running" and not d.events("supervisor.prestart_unclaimed")


def test_nothing_starts_early_while_another_supervisor_answers_on_the_socket(run_daemon, tmp_path: Path) -> None:
    """The second `run` on a busy socket exits 69 and has started no duplicate of the program."""
    starts = tmp_path / "p.starts"
    conf = tmp_path / "busy.toml"
    conf.write_text(
        f'[supervisor]\nsocket = "{tmp_path / "busy.sock"}"\nhttp = ""\n[programs.p]\ncommand = {appends_pid(starts)}\n'
    )
    argv = [PY, "-m", "supervisor", "run", "--config", str(conf)]
    first = run_daemon(None, argv=argv, env={"SUPERVISOR_SOCKET": str(tmp_path / "busy.sock")})
    first.wait_ready()
    second = run_daemon(None, argv=[*WARM, *argv], env={"SUPERVISOR_SOCKET": str(tmp_path / "busy.sock")})
    assert second.wait_exit() == 69
    assert len(starts.read_text().split()) == 1, "the refused supervisor started the program too"
    assert first.unit("p")["state"] == "running"


def test_nothing_starts_early_when_the_http_address_is_taken(run_daemon, tmp_path: Path) -> None:
    """A `run` that cannot bind its http address exits 69, and no program of it ever ran."""
    starts = tmp_path / "p.starts"
    port = free_port()
    conf = tmp_path / "taken.toml"
    conf.write_text(
        f'[supervisor]\nsocket = "{tmp_path / "t.sock"}"\nhttp = "127.0.0.1:{port}"\n'
        f"[programs.p]\ncommand = {appends_pid(starts)}\n"
    )
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        d = run_daemon(None, argv=[*WARM, PY, "-m", "supervisor", "run", "--config", str(conf)])
        assert d.wait_exit() == 69
    assert not starts.exists(), f"a program ran: {starts.read_text()!r}"


def test_a_file_that_no_longer_runs_here_starts_nothing_early(run_daemon, tmp_path: Path) -> None:
    """Validated and cached, then its env file is removed: `run` refuses (78) before anything starts."""
    starts, env_file = tmp_path / "p.starts", tmp_path / "p.env"
    env_file.write_text("GREETING=hello\n")
    removes = ("sh", "-c", f'"$1" -m supervisor check --config "$6" >/dev/null && rm {env_file} && exec "$@"', "sh")
    d = run_daemon(f'[programs.p]\ncommand = {appends_pid(starts)}\nenv_file = "{env_file}"\n', prefix=removes)
    assert d.wait_exit() == 78
    assert "programs.p.env_file" in d.tail() and not starts.exists()


IGNORES_SIGCHLD = (
    "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])"
)


# sh resets SIGCHLD for its own waits, so the wrapper that ignores it comes last, after `check`.
WARM_THEN_IGNORE = ("sh", "-c", '"$4" -m supervisor check --config "$9" >/dev/null && exec "$@"', "sh", PY, "-c")
WARM_THEN_IGNORE += (IGNORES_SIGCHLD,)


def test_an_inherited_ignored_sigchld_does_not_hide_an_early_programs_exit(run_daemon, tmp_path: Path) -> None:
    """SIGCHLD ignored by whoever started us would let the kernel reap c behind our back: it is reset."""
    d = run_daemon(
        '[programs.a]\ncommand = ["sleep", "300"]\n'
        '[programs.c]\ncommand = ["sh", "-c", "exit 3"]\nrestart = { policy = "never" }\n',
        prefix=WARM_THEN_IGNORE,
    )
    assert d.wait_event("supervisor.started_early")["programs"] == ["a", "c"]
    wait_until(lambda: d.unit("c")["state"] == "exited", 10, "c to be seen exited", seen=d.tail)


def test_a_stop_request_while_programs_start_early_stops_them_by_their_ladders(run_daemon, tmp_path: Path) -> None:
    """SIGTERM before the engine has its handlers waits for them: a graceful stop, exit 0, not a kill."""
    d = run_daemon(
        '[programs.p]\ncommand = ["sh", "-c", "kill -TERM $PPID; exec sleep 300"]\n',  # asks as soon as it runs
        prefix=WARM,
    )
    assert d.wait_exit() == 0, d.tail()
    assert d.events("supervisor.started_early") and d.events("supervisor.signal", signal="SIGTERM")


def test_a_program_started_early_with_other_settings_is_gone_before_the_engine_starts_its_own() -> None:
    """Never two copies side by side: a spec that no longer matches kills and reaps the early child first."""
    import os

    from supervisor.host import prestart, process

    spec = process.SpawnSpec(["sleep", "300"], dict(os.environ), capture=True)
    early = prestart.Prestarted()
    child = process.spawn(spec)
    early.children["p"] = (spec, child, 0.0)
    other = process.SpawnSpec(["sleep", "300"], {**os.environ, "X": "2"}, capture=True)
    assert early.take("p", other) is None and early.children == {}
    try:
        os.kill(child.pid, 0)
    except ProcessLookupError:
        pass  # killed and reaped: not even a zombie left
    else:
        raise AssertionError(f"the early child {child.pid} is still there")


def test_the_start_says_whether_its_file_came_from_the_cache(run_daemon, tmp_path: Path) -> None:
    """supervisor.starting says cache or validation; a cache directory it cannot use is named, with why."""
    cache = tmp_path / "cache"
    env = {"SUPERVISOR_CACHE_DIR": str(cache)}
    text = '[programs.p]\ncommand = ["sleep", "300"]\n'
    warm = run_daemon(text, prefix=WARM, env=env)
    assert warm.wait_event("supervisor.starting")["config_from"] == "cache"
    cold = run_daemon(text, env=env)  # another file (another directory): validated anew
    assert cold.wait_event("supervisor.starting")["config_from"] == "validation"
    cold.wait_ready()
    assert not cold.events("config.cache_unusable")
    cache.chmod(0o777)
    unusable = run_daemon(text, env=env)
    warning = unusable.wait_event("config.cache_unusable")
    assert "writable by others" in warning["why"], warning
