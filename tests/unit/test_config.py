"""Configuration errors name the file, the key and the problem; valid files yield a plan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.config import load
from supervisor.machine.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, environ=env or {})
    assert str(path) in str(info.value)
    return info.value.problems


def test_unknown_keys_are_errors_at_every_depth(tmp_path: Path) -> None:
    """Unknown keys anywhere are rejected and named with their full path."""
    found = problems(
        tmp_path,
        """
[supervisor]
sokcet = "x"
[programs.web]
command = ["true"]
restart = { policy = "always", backof = {} }
""",
    )
    keys = {k for k, _ in found}
    assert keys == {"supervisor.sokcet", "programs.web.restart.backof"}
    assert dict(found) == {
        "supervisor.sokcet": "unknown key (did you mean `socket`?)",
        "programs.web.restart.backof": "unknown key (did you mean `backoff`?)",
    }


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """One error lists every problem, each with its key and what is wrong."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.web]
command = []
stop_timeout = "soon"
stop_signal = "SIGNOPE"
restart = { policy = "sometimes" }
max_memory = "lots"
""",
        )
    )
    assert "at least 1 item" in found["programs.web.command"]
    assert "not a duration" in found["programs.web.stop_timeout"]
    assert "not a signal name" in found["programs.web.stop_signal"]
    assert "'always', 'on-failure' or 'never'" in found["programs.web.restart.policy"]
    assert "not a size" in found["programs.web.max_memory"]


def test_missing_command_is_named(tmp_path: Path) -> None:
    """A program without a command says the key is missing."""
    assert problems(tmp_path, "[programs.web]\n") == [("programs.web.command", "required key is missing")]


def test_unknown_dependency_and_cycle(tmp_path: Path) -> None:
    """depends_on naming nothing, or forming a cycle, is an error naming both sides."""
    found = problems(
        tmp_path,
        """
[programs.a]
command = ["true"]
depends_on = ["ghost"]
""",
    )
    assert found == [("programs.a.depends_on[0]", "unknown unit 'ghost'")]
    found = problems(
        tmp_path,
        """
[programs.a]
command = ["true"]
depends_on = ["b"]
[programs.b]
command = ["true"]
depends_on = ["a"]
""",
    )
    assert found[0][0] == "depends_on" and "a -> b -> a" in found[0][1]


def test_after_names_other_programs_and_joins_the_cycle_check(tmp_path: Path) -> None:
    """after names programs only, never itself, and may not close a loop with depends_on."""
    found = problems(
        tmp_path,
        """
[dependencies.db]
type = "tcp"
url = "127.0.0.1:5432"
[programs.a]
command = ["true"]
after = ["ghost", "a", "db", "b"]
[programs.b]
command = ["true"]
""",
    )
    assert found == [
        ("programs.a.after[0]", "'ghost': after names programs only (unknown program)"),
        ("programs.a.after[1]", "a program cannot start after itself"),
        ("programs.a.after[2]", "'db': after names programs only (dependencies are ordered by depends_on)"),
    ]
    for second, kind in (('depends_on = ["a"]', "depends_on"), ('after = ["a"]', "after")):
        found = problems(
            tmp_path,
            f"""
[programs.a]
command = ["true"]
after = ["b"]
[programs.b]
command = ["true"]
{second}
""",
        )
        assert found == [("programs.a.after", f"start-order loop: a after b, b {kind} a")], second


def test_after_orders_without_changing_the_plan(tmp_path: Path) -> None:
    """after is no dependency: the plan (and so the shutdown order) keeps siblings on one level."""
    path = tmp_path / "s.toml"
    path.write_text(
        """
[programs.web]
command = ["true"]
[programs.worker]
command = ["true"]
after = ["web"]
"""
    )
    loaded = load(path, {})
    assert loaded.plan == [["web", "worker"]]
    assert loaded.config.programs["worker"].after == ["web"]


def test_health_check_needs_exactly_one_kind(tmp_path: Path) -> None:
    """A health table with two kinds, or a file check without max_age, is refused."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.a]
command = ["true"]
health = { http = "http://x/", tcp = "x:1" }
[programs.b]
command = ["true"]
health = { file = "/tmp/hb" }
""",
        )
    )
    assert "exactly one" in found["programs.a.health"]
    assert "needs max_age" in found["programs.b.health"]


def test_lock_must_name_a_postgres_dependency(tmp_path: Path) -> None:
    """A job's lock names a postgres dependency."""
    found = problems(
        tmp_path,
        """
[dependencies.cache]
type = "redis"
[jobs.migrate]
command = ["true"]
lock = "cache"
""",
    )
    assert found == [("jobs.migrate.lock", "'cache' is not a postgres dependency")]


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    """Unparseable TOML and a missing file are configuration errors too; the missing one is named absolute."""
    assert "not valid TOML" in problems(tmp_path, "[programs\n")[0][1]
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.toml", environ={})
    assert info.value.problems == [("", f"no configuration file at {tmp_path}/nope.toml")]


def test_interpolation_defaults_and_required(tmp_path: Path) -> None:
    """${VAR}, ${VAR:-default} and ${VAR:?message} expand from the environment."""
    path = write(
        tmp_path,
        """
[programs.web]
command = ["uvicorn", "--port", "${PORT:-8000}", "${EXTRA}"]
environment = { DSN = "${DATABASE_URL:-postgresql://localhost/db}" }
""",
    )
    loaded = load(path, environ={"PORT": "9000"})
    assert loaded.config.programs["web"].command == ["uvicorn", "--port", "9000", ""]
    assert loaded.config.programs["web"].environment["DSN"] == "postgresql://localhost/db"
    found = problems(tmp_path, '[programs.web]\ncommand = ["${TOKEN:?set TOKEN}"]\n')
    assert found == [("programs.web.command[0]", "${TOKEN} is not set: set TOKEN")]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """SUPERVISOR_<TABLE>__<KEY> variables override the file (pydantic-settings)."""
    path = write(tmp_path, '[supervisor]\nhttp = "127.0.0.1:1"\n[programs.web]\ncommand = ["true"]\n')
    loaded = load(path, environ={"SUPERVISOR_SUPERVISOR__HTTP": "", "SUPERVISOR_PROGRAMS__WEB__STOP_TIMEOUT": "3s"})
    assert loaded.config.supervisor.http == ""
    assert loaded.config.programs["web"].stop_timeout == 3.0


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    """cwd, alembic_config and the socket are joined onto the file's own directory, `..` kept as written."""
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "s.toml"
    path.write_text("""
[supervisor]
socket = "run/s.sock"
[dependencies.pg]
type = "postgres"
[jobs.migrate]
command = ["alembic", "upgrade", "head"]
alembic_config = "../app/alembic.ini"
lock = "pg"
[programs.web]
command = ["true"]
cwd = "../app"
""")
    cfg = load(path, environ={}).config
    assert cfg.supervisor.socket == str(tmp_path / "conf" / "run" / "s.sock")
    assert cfg.programs["web"].cwd == f"{tmp_path}/conf/../app"
    assert cfg.jobs["migrate"].alembic_config == f"{tmp_path}/conf/../app/alembic.ini"


def test_plan_orders_by_dependency_and_warns_about_slow_ladders(tmp_path: Path) -> None:
    """The plan lists levels in start order; ladders longer than shutdown_timeout warn."""
    path = write(
        tmp_path,
        """
[supervisor]
shutdown_timeout = "10s"
[dependencies.pg]
type = "postgres"
[jobs.migrate]
command = ["true"]
depends_on = ["pg"]
[programs.web]
command = ["true"]
depends_on = ["migrate"]
stop_timeout = "8s"
[programs.worker]
command = ["true"]
depends_on = ["web"]
stop_timeout = "8s"
""",
    )
    loaded = load(path, environ={})
    assert loaded.plan == [["pg"], ["migrate"], ["web"], ["worker"]]
    assert loaded.warnings and "16s" in loaded.warnings[0]


def test_entrypoint_variables(tmp_path: Path) -> None:
    """DB_HOST/DB_PORT give a postgres URL when none is set; ALEMBIC_CMD replaces the migration."""
    path = write(
        tmp_path,
        """
[dependencies.postgres]
type = "postgres"
[jobs.migrate]
command = ["alembic", "upgrade", "head"]
depends_on = ["postgres"]
""",
    )
    cfg = load(path, environ={"DB_HOST": "db", "DB_PORT": "6543", "ALEMBIC_CMD": "true"}).config
    assert cfg.dependencies["postgres"].url == "postgresql://db:6543/"
    assert cfg.jobs["migrate"].command == ["true"]


def test_values_keep_their_toml_types(tmp_path: Path) -> None:
    """A string where a number or a boolean is expected is an error, never coerced."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.web]
command = ["true"]
autostart = "yes"
notify = "true"
restart = { max_restarts = "10", backoff = { factor = "2" } }
[jobs.migrate]
command = ["true"]
attempts = "3"
""",
        )
    )
    assert set(found) == {
        "programs.web.autostart",
        "programs.web.notify",
        "programs.web.restart.max_restarts",
        "programs.web.restart.backoff.factor",
        "jobs.migrate.attempts",
    }
    assert "not a string (got 'yes')" in found["programs.web.autostart"]
    assert "expected an integer" in found["programs.web.restart.max_restarts"]


def test_durations_take_numbers_and_strings(tmp_path: Path) -> None:
    """Durations stay numbers of seconds or strings such as "2s"; sizes likewise."""
    path = write(tmp_path, '[programs.web]\ncommand = ["true"]\nstop_timeout = 3\nmin_uptime = "500ms"\n')
    web = load(path, environ={}).config.programs["web"]
    assert (web.stop_timeout, web.min_uptime) == (3.0, 0.5)


def test_values_from_the_environment_are_parsed_into_the_key_type(tmp_path: Path) -> None:
    """Strings from ${VAR} and from SUPERVISOR_* overrides are the one thing parsed into numbers and booleans."""
    path = write(
        tmp_path,
        """
[programs.web]
command = ["true"]
autostart = "${AUTOSTART}"
restart = { max_restarts = "${MAX:-7}", success_exit_codes = ["${OK_CODE}"] }
""",
    )
    env = {"AUTOSTART": "false", "OK_CODE": "3", "SUPERVISOR_PROGRAMS__WEB__NOTIFY": "true"}
    web = load(path, environ=env).config.programs["web"]
    assert web.autostart is False and web.notify is True
    assert web.restart.max_restarts == 7 and web.restart.success_exit_codes == [3]
    found = problems(tmp_path, '[programs.web]\ncommand = ["true"]\nautostart = "${A}"\n', {"A": "maybe"})
    assert found[0][0] == "programs.web.autostart" and "'maybe'" in found[0][1]


def test_urls_are_checked_against_their_scheme(tmp_path: Path) -> None:
    """Each URL must carry its type's scheme: postgres, redis, http, or host:port for tcp."""
    found = dict(
        problems(
            tmp_path,
            """
[dependencies.pg]
type = "postgres"
url = "localhost:5432/app"
[dependencies.cache]
type = "redis"
url = "127.0.0.1:6379"
[dependencies.api]
type = "http"
url = "127.0.0.1:8000/livez"
[dependencies.port]
type = "tcp"
url = "http://127.0.0.1:80"
[programs.web]
command = ["true"]
health = { http = "127.0.0.1:8000/livez" }
""",
        )
    )
    assert "postgresql://" in found["dependencies.pg.url"]
    assert "redis://" in found["dependencies.cache.url"]
    assert "http://" in found["dependencies.api.url"]
    assert "host:port" in found["dependencies.port.url"]
    assert "http://" in found["programs.web.health.http"]
    path = write(
        tmp_path,
        """
[dependencies.pg]
type = "postgres"
url = "postgres://u@db:5432/app"
[dependencies.cache]
type = "redis"
url = "unix:///run/redis.sock"
[dependencies.tls]
type = "redis"
url = "rediss://cache:6380/2"
[dependencies.port]
type = "tcp"
url = "tcp://127.0.0.1:80"
""",
    )
    assert len(load(path, environ={}).config.dependencies) == 4


def test_stop_ladder_from_lists_or_single_values(tmp_path: Path) -> None:
    """stop_signal and stop_timeout take a list of rungs; a single duration is split evenly between them."""
    path = write(
        tmp_path,
        """
[programs.one]
command = ["true"]
stop_signal = "INT"
[programs.even]
command = ["true"]
stop_signal = ["TERM", "SIGQUIT"]
stop_timeout = "10s"
[programs.each]
command = ["true"]
stop_signal = ["SIGINT", "SIGTERM"]
stop_timeout = ["1s", 4]
""",
    )
    programs = load(path, environ={}).config.programs
    assert programs["one"].stop_ladder() == (("SIGINT", 10.0),)
    assert programs["even"].stop_ladder() == (("SIGTERM", 5.0), ("SIGQUIT", 5.0))
    assert programs["each"].stop_ladder() == (("SIGINT", 1.0), ("SIGTERM", 4.0))
    # The scalar fields summarise the ladder: the first signal, the time until SIGKILL.
    assert (programs["each"].stop_signal, programs["each"].stop_timeout) == ("SIGINT", 5.0)


def test_stop_ladder_errors(tmp_path: Path) -> None:
    """An empty list, SIGKILL in the list, a bad rung or a length mismatch is named under its key."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.empty]
command = ["true"]
stop_signal = []
[programs.kill]
command = ["true"]
stop_signal = ["TERM", "KILL"]
[programs.bad]
command = ["true"]
stop_signal = ["TERM", "NOPE"]
[programs.mismatch]
command = ["true"]
stop_signal = ["TERM", "QUIT"]
stop_timeout = ["1s", "2s", "3s"]
[programs.rung]
command = ["true"]
stop_signal = ["TERM"]
stop_timeout = ["soon"]
""",
        )
    )
    assert "at least one" in found["programs.empty.stop_signal"]
    assert "SIGKILL" in found["programs.kill.stop_signal"]
    assert "'NOPE' is not a signal name" in found["programs.bad.stop_signal"]
    assert "3 durations for 2 stop signals" in found["programs.mismatch.stop_timeout"]
    assert "not a duration" in found["programs.rung.stop_timeout"]


def test_new_program_keys_have_their_defaults(tmp_path: Path) -> None:
    """min_uptime 1s, start_timeout 60s, notify and stop_group off, stop-first, exit 78 never restarted."""
    web = load(write(tmp_path, '[programs.web]\ncommand = ["true"]\n'), environ={}).config.programs["web"]
    assert (web.min_uptime, web.start_timeout, web.notify, web.stop_group) == (1.0, 60.0, False, False)
    assert web.env_file == ()
    assert web.restart.order == "stop-first"
    assert (web.restart.success_exit_codes, web.restart.no_restart_exit_codes) == ([], [78])


def test_new_program_keys_are_validated(tmp_path: Path) -> None:
    """start_timeout is positive, exit codes are 0..255 and a code is not both success and no-restart."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.a]
command = ["true"]
start_timeout = 0
restart = { order = "sideways", success_exit_codes = [256] }
[programs.b]
command = ["true"]
min_uptime = -1
restart = { success_exit_codes = [3], no_restart_exit_codes = [3, 78] }
[programs.c]
command = ["true"]
restart = { no_restart_exit_codes = [0] }
""",
        )
    )
    assert "positive" in found["programs.a.start_timeout"]
    assert "'stop-first' or 'start-first'" in found["programs.a.restart.order"]
    assert "less than or equal to 255" in found["programs.a.restart.success_exit_codes[0]"]
    assert "negative" in found["programs.b.min_uptime"]
    assert "exit code 3 cannot be both" in found["programs.b.restart"]
    assert "exit code 0" in found["programs.c.restart"]


def test_start_first_needs_listen_and_readiness_from_the_new_process(tmp_path: Path) -> None:
    """start-first without listen, or with only an http check, is refused with the reason."""
    found = dict(
        problems(
            tmp_path,
            """
[programs.nolisten]
command = ["true"]
notify = true
restart = { order = "start-first" }
[programs.probe]
command = ["true"]
listen = "127.0.0.1:8000"
health = { http = "http://127.0.0.1:8000/livez" }
restart = { order = "start-first" }
""",
        )
    )
    assert found["programs.nolisten.restart.order"].startswith("'start-first' needs listen:")
    why = found["programs.probe.restart.order"]
    assert why.startswith("'start-first' needs notify = true, ready_log or a file health check")
    assert "answered by the old one" in why
    path = write(
        tmp_path,
        """
[programs.notify]
command = ["true"]
listen = "127.0.0.1:8000"
notify = true
restart = { order = "start-first" }
[programs.heartbeat]
command = ["true"]
listen = "127.0.0.1:8001"
health = { file = "/tmp/hb", max_age = "10s" }
restart = { order = "start-first" }
""",
    )
    assert len(load(path, environ={}).config.programs) == 2


def test_env_file_is_one_path_or_a_list_relative_to_the_file(tmp_path: Path) -> None:
    """env_file paths resolve against the file's directory, keeping the "-" that makes one optional."""
    path = write(
        tmp_path,
        """
[jobs.migrate]
command = ["true"]
env_file = ".env"
[programs.web]
command = ["true"]
env_file = ["-/etc/app.env", "conf/web.env"]
""",
    )
    cfg = load(path, environ={}).config
    assert cfg.jobs["migrate"].env_file == (str(tmp_path / ".env"),)
    assert cfg.programs["web"].env_file == ("-/etc/app.env", str(tmp_path / "conf" / "web.env"))
    found = problems(tmp_path, '[programs.web]\ncommand = ["true"]\nenv_file = 3\n')
    assert found[0][0] == "programs.web.env_file"


def test_alembic_cmd_is_marked_as_coming_from_the_environment(tmp_path: Path) -> None:
    """Only a command taken from ALEMBIC_CMD is marked so; a file's own `true` is not."""
    text = '[jobs.migrate]\ncommand = ["true"]\n[jobs.other]\ncommand = ["true"]\n'
    jobs = load(write(tmp_path, text), environ={}).config.jobs
    assert not jobs["migrate"].from_alembic_cmd
    jobs = load(write(tmp_path, text), environ={"ALEMBIC_CMD": "alembic downgrade base"}).config.jobs
    assert jobs["migrate"].command == ["alembic", "downgrade", "base"] and jobs["migrate"].from_alembic_cmd
    assert not jobs["other"].from_alembic_cmd


def test_a_changed_ladder_is_a_changed_definition(tmp_path: Path) -> None:
    """Two programs with the same first signal and total time but other rungs differ, so a reload restarts one."""
    text = '[programs.web]\ncommand = ["true"]\nstop_signal = ["TERM", "{second}"]\nstop_timeout = ["1s", "3s"]\n'
    before = load(write(tmp_path, text.format(second="QUIT")), environ={}).config.programs["web"]
    after = load(write(tmp_path, text.format(second="INT")), environ={}).config.programs["web"]
    same = load(write(tmp_path, text.format(second="QUIT")), environ={}).config.programs["web"]
    assert (before.stop_signal, before.stop_total) == (after.stop_signal, after.stop_total)
    assert before != after and before == same


def test_ready_interval_is_positive_and_defaults_to_none(tmp_path: Path) -> None:
    """A dependency's ready_interval is a positive duration; unset, the interval goes on once ready."""
    found = dict(problems(tmp_path, '[dependencies.db]\ntype = "redis"\nready_interval = "0s"\n'))
    assert "positive" in found["dependencies.db.ready_interval"]
    text = '[dependencies.db]\ntype = "redis"\n[dependencies.pg]\ntype = "postgres"\nready_interval = "10s"\n'
    path = write(tmp_path, text)
    deps = load(path, environ={}).config.dependencies
    assert (deps["db"].ready_interval, deps["pg"].ready_interval) == (None, 10.0)


def test_periods_and_limits_where_zero_means_nothing_are_positive(tmp_path: Path) -> None:
    """memory_interval, probe_timeout and a dependency's backoff of 0 would spin or never answer: refused by key."""
    found = dict(
        problems(
            tmp_path,
            """
[dependencies.db]
type = "redis"
url = "redis://127.0.0.1:6379/0"
probe_timeout = 0
backoff = { initial = 0 }
[dependencies.cache]
type = "redis"
url = "redis://127.0.0.1:6379/0"
backoff = { initial = "1s", max = 0 }
[programs.web]
command = ["true"]
max_memory = "512MB"
memory_interval = 0
[programs.worker]
command = ["true"]
memory_interval = "0ms"
""",
        )
    )
    assert found["programs.web.memory_interval"] == "must be positive (got 0)"
    assert found["programs.worker.memory_interval"] == "must be positive (got '0ms')"
    assert found["dependencies.db.probe_timeout"] == "must be positive (got 0)"
    assert "initial and max must be positive" in found["dependencies.db.backoff"]
    assert "initial and max must be positive" in found["dependencies.cache.backoff"]
    assert len(found) == 5


def test_a_programs_restart_backoff_may_still_be_zero(tmp_path: Path) -> None:
    """Restarting at once stays allowed (max_restarts bounds it); only waits between probes must be positive."""
    path = write(tmp_path, '[programs.web]\ncommand = ["true"]\nrestart = { backoff = { initial = 0, max = 0 } }\n')
    assert load(path, environ={}).config.programs["web"].restart.backoff.initial == 0.0


RELEASE = """
[supervisor]
socket = "run/s.sock"
[programs.web]
command = ["true"]
cwd = "app"
env_file = ["-.env", "../shared.env"]
[dependencies.db]
type = "postgres"
[jobs.migrate]
command = ["true"]
lock = "db"
alembic_config = "alembic.ini"
"""


def releases(tmp_path: Path) -> Path:
    """Two releases with the same file, ``current`` linked to the first; return ``current``."""
    for n in ("1", "2"):
        (tmp_path / "releases" / n / "app").mkdir(parents=True)
        (tmp_path / "releases" / n / "supervisor.toml").write_text(RELEASE)
    (tmp_path / "releases" / "shared.env").write_text("A=1\n")
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "releases" / "1")
    return current


def test_a_file_reached_through_a_symlinked_release_keeps_the_link_in_every_path(tmp_path: Path) -> None:
    """The file and its relative paths stay under current/ (so they follow the link when it moves); `..` is kept."""
    current = releases(tmp_path)
    loaded = load(current / "supervisor.toml", environ={})
    assert loaded.path == current / "supervisor.toml"
    web, migrate = loaded.config.programs["web"], loaded.config.jobs["migrate"]
    assert web.cwd == f"{current}/app"
    assert web.env_file == (f"-{current}/.env", f"{current}/../shared.env")
    assert migrate.alembic_config == f"{current}/alembic.ini"
    assert loaded.config.supervisor.socket == f"{current}/run/s.sock"
    # `..` after the link is the kernel's: the release's parent, not current's (which has no shared.env)
    assert Path(web.env_file[1]).read_text() == "A=1\n"
    (current.parent / "next").symlink_to(tmp_path / "releases" / "2")
    os.replace(current.parent / "next", current)
    assert os.path.realpath(web.cwd) == str(tmp_path / "releases" / "2" / "app")


def test_a_relative_file_is_named_through_the_logical_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From `cd current`, $PWD keeps the link that getcwd() resolves; a $PWD that is elsewhere is ignored."""
    current = releases(tmp_path)
    monkeypatch.chdir(current)
    assert os.getcwd() == str(tmp_path / "releases" / "1")
    here = load(Path("supervisor.toml"), environ={"PWD": str(current)})
    assert here.path == current / "supervisor.toml" and here.config.programs["web"].cwd == f"{current}/app"
    for pwd in ({}, {"PWD": str(tmp_path / "releases" / "2")}, {"PWD": "current"}):
        physical = load(Path("supervisor.toml"), environ=pwd)
        assert physical.path == tmp_path / "releases" / "1" / "supervisor.toml", pwd


def test_nan_and_inf_are_no_durations(tmp_path: Path) -> None:
    """TOML's nan and inf pass a `<= 0` check: a sleep of nan returns at once, so they are refused by key."""
    found = dict(
        problems(
            tmp_path,
            """
[dependencies.db]
type = "redis"
interval = nan
ready_interval = inf
probe_timeout = -inf
backoff = { initial = nan }
[programs.web]
command = ["true"]
memory_interval = nan
start_timeout = inf
""",
        )
    )
    for key in (
        "dependencies.db.interval",
        "dependencies.db.ready_interval",
        "dependencies.db.probe_timeout",
        "dependencies.db.backoff.initial",
        "programs.web.memory_interval",
        "programs.web.start_timeout",
    ):
        assert "finite" in found[key], (key, found)


def test_the_shutdown_warning_counts_the_longest_chain_not_the_levels(tmp_path: Path) -> None:
    """Ladders on unrelated branches run side by side, so check warns only when one chain exceeds the timeout."""
    text = """
[supervisor]
shutdown_timeout = "12s"
[programs.alone]
command = ["true"]
stop_timeout = "10s"
[programs.base]
command = ["true"]
stop_timeout = "5s"
[programs.top]
command = ["true"]
depends_on = ["base"]
stop_timeout = "5s"
"""
    loaded = load(write(tmp_path, text), environ={})
    assert loaded.config.shutdown_span() == 10
    assert not [w for w in loaded.warnings if "shutdown_timeout" in w]
    slow = load(write(tmp_path, text.replace('"12s"', '"9s"')), environ={})
    assert [w for w in slow.warnings if "longest chain" in w]


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ('ready_log = "Application (startup"', "programs.web.ready_log", "not a valid regular expression"),
        ("oom_score_adj = 1001", "programs.web.oom_score_adj", "less than or equal to 1000"),
        ("oom_score_adj = -1001", "programs.web.oom_score_adj", "greater than or equal to -1000"),
        ('stack_dump = "yes"', "programs.web.stack_dump", "true or false"),
    ],
)
def test_python_aware_keys_reject_bad_values_naming_the_key(tmp_path: Path, line: str, key: str, words: str) -> None:
    """A bad ready_log regex, an oom_score_adj outside -1000..1000 or a non-boolean stack_dump names its key."""
    found = dict(problems(tmp_path, f'[programs.web]\ncommand = ["true"]\n{line}\n'))
    assert words in found[key], found


def test_ready_log_makes_start_first_valid(tmp_path: Path) -> None:
    """A log line from the new incarnation is readiness enough for start-first."""
    path = write(
        tmp_path,
        '[programs.web]\ncommand = ["true"]\nlisten = "127.0.0.1:8000"\n'
        'ready_log = "Application startup complete"\nrestart = { order = "start-first" }\n',
    )
    loaded = load(path, environ={})
    assert loaded.config.programs["web"].ready_log == "Application startup complete"
    from supervisor.config.plan import plan_lines

    assert any("ready by its ready_log line" in line for line in plan_lines(loaded))
