"""`instances = N`: the file's program becomes X:0 ... X:N-1; a count changed later is a diff of instances only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from supervisor.client.completion import unit_names
from supervisor.config import load
from supervisor.config.diff import diff
from supervisor.config.instances import listen_key, rescale
from supervisor.control.readyz import readyz
from supervisor.engine.frontdoor import FrontDoor
from supervisor.engine.instances import check_scale
from supervisor.engine.target import Refused
from supervisor.machine.errors import EXIT_CONFIG, ConfigError
from supervisor.machine.instances import members, select

WEB = """
[programs.web]
command = ["serve", "--port", "80${SUPERVISOR_INSTANCE}"]
environment = { NAME = "web-${SUPERVISOR_INSTANCE}" }
health = { http = "http://127.0.0.1:80${SUPERVISOR_INSTANCE}/health" }
listen = "127.0.0.1:8000"
instances = 3
[programs.worker]
command = ["work", "${SUPERVISOR_INSTANCE:-none}"]
depends_on = ["web"]
after = ["web"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text(text)
    return path


def test_each_instance_is_named_and_gets_its_index_in_command_environment_and_health(tmp_path: Path) -> None:
    """web with instances = 3 is web:0, web:1, web:2, each with its own ${SUPERVISOR_INSTANCE}."""
    loaded = load(write(tmp_path, WEB), environ={"SUPERVISOR_INSTANCE": "from-the-environment"})
    programs = loaded.config.programs
    assert list(programs) == ["web:0", "web:1", "web:2", "worker"]
    one = programs["web:1"]
    assert one.command == ["serve", "--port", "801"]
    assert one.environment == {"NAME": "web-1", "SUPERVISOR_INSTANCE": "1"}
    assert one.health is not None and one.health.http == "http://127.0.0.1:801/health"
    assert (one.instance_of, one.instance, one.instances) == ("web", 1, None)
    assert loaded.config.templates["web"].instances == 3
    # A program without the key is as before: the variable is the environment's, no instance is set.
    assert programs["worker"].command == ["work", "from-the-environment"]
    assert "SUPERVISOR_INSTANCE" not in programs["worker"].environment


def test_depends_on_and_after_a_program_with_instances_mean_all_of_them(tmp_path: Path) -> None:
    """worker depends on web: it starts after every instance, and each instance stops after it."""
    loaded = load(write(tmp_path, WEB), environ={})
    assert loaded.plan == [["web:0", "web:1", "web:2"], ["worker"]]
    before = loaded.config.stop_before()
    assert all(before[f"web:{i}"] == {"worker"} for i in range(3))


@pytest.mark.parametrize("count", ["0", "-2"])
def test_instances_below_one_exit_78_naming_the_key(
    tmp_path: Path, count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """instances = 0 or a negative count is refused (exit 78) with the file and the key named."""
    from supervisor.cli import main

    path = write(tmp_path, WEB.replace("instances = 3", f"instances = {count}"))
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    assert [k for k, _ in info.value.problems] == ["programs.web.instances"]
    assert main(["check", "-c", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{path}: programs.web.instances" in err and "greater than or equal to 1" in err


def test_instances_above_the_bound_exit_78_naming_the_key(tmp_path: Path) -> None:
    """instances = 1001 is refused (exit 78): a count the daemon would take minutes to apply, its loop wedged."""
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, WEB.replace("instances = 3", "instances = 1001")), environ={})
    assert [k for k, _ in info.value.problems] == ["programs.web.instances"]
    assert "less than or equal to 1000" in info.value.render()
    assert load(write(tmp_path, WEB.replace("instances = 3", "instances = 1000")), environ={})


@pytest.mark.parametrize("count", [0, -1, 1001, 99999, True, "3"])
def test_scale_refuses_a_count_outside_1_to_1000(tmp_path: Path, count: object) -> None:
    """scale web 99999 is a 400 before anything starts, as 0 and -1 are; the reason gives the range."""
    loaded = load(write(tmp_path, WEB), environ={})
    with pytest.raises(Refused, match=r"whole number from 1 to 1000 \(got"):
        check_scale(loaded, "web", count, ["web", "worker"])
    assert check_scale(loaded, "web", 1000, ["web", "worker"]) == 1000


def test_scale_of_an_instance_says_to_scale_its_program(tmp_path: Path) -> None:
    """scale web:1 3 names web, not a [programs.web:1] table that cannot exist."""
    loaded = load(write(tmp_path, WEB), environ={})
    with pytest.raises(Refused) as info:
        check_scale(loaded, "web:1", 3, ["web", "worker"])
    assert str(info.value) == "web:1 is an instance of web: scale web itself (supervisor scale web N)"
    with pytest.raises(Refused, match=r"^worker has no instances: set instances = N in \[programs.worker\]"):
        check_scale(loaded, "worker", 3, ["web", "worker"])


def test_an_instance_name_taken_by_another_unit_is_refused(tmp_path: Path) -> None:
    """A program literally named web:1 beside web with instances is a clash, named once."""
    text = WEB + '[programs."web:1"]\ncommand = ["x"]\n'
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), environ={})
    assert ("programs.web.instances", "'web:1' is already a unit's name") in info.value.problems


def test_a_problem_of_the_program_is_reported_once_not_per_instance(tmp_path: Path) -> None:
    """An unknown dependency of web with 3 instances is one problem, under programs.web."""
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, WEB.replace('listen = "127.0.0.1:8000"', 'depends_on = ["ghost"]')), environ={})
    assert info.value.problems == [("programs.web.depends_on[0]", "unknown unit 'ghost'")]


def test_rescale_adds_and_removes_the_highest_indexes_and_changes_nothing_else(tmp_path: Path) -> None:
    """Scaling is a diff of instances: up adds web:3, web:4; down removes the highest; the others are unchanged."""
    loaded = load(write(tmp_path, WEB), environ={})
    up = rescale(loaded, "web", 5)
    assert up.plan == [["web:0", "web:1", "web:2", "web:3", "web:4"], ["worker"]]
    change = diff(loaded.config, up.config)
    assert change.added == ("web:3", "web:4") and change.changed == () and change.removed == ()
    assert change.new_listen == ()  # they accept on the socket web already has
    down = rescale(up, "web", 1)
    change = diff(up.config, down.config)
    assert change.removed == ("web:1", "web:2", "web:3", "web:4") and change.changed == ()
    assert down.plan == [["web:0"], ["worker"]]
    # The file again: back to its count, as a reload does.
    assert diff(down.config, loaded.config).added == ("web:1", "web:2")


def test_a_changed_template_changes_every_instance_and_binds_its_new_address_once(tmp_path: Path) -> None:
    """A new listen address is one socket for all instances (one listen key)."""
    loaded = load(write(tmp_path, WEB), environ={})
    moved = load(write(tmp_path, WEB.replace("8000", "8001")), environ={})
    change = diff(loaded.config, moved.config)
    assert change.changed == ("web:0", "web:1", "web:2")
    assert {listen_key(n, moved.config.programs[n]) for n in change.new_listen} == {"web"}


def test_names_stand_for_a_program_or_all_of_its_instances() -> None:
    """members/select resolve web to web:0.. in index order, a full name to itself, and report the unknown."""
    units = ["web:10", "web:2", "web:0", "worker", "ab:c"]
    assert members("web", units) == ["web:0", "web:2", "web:10"]
    assert members("web:2", units) == ["web:2"]
    assert members("ab", units) == []
    assert select(["worker", "web", "ghost"], units) == (["worker", "web:0", "web:2", "web:10"], ["ghost"])


def test_completion_offers_the_program_and_its_instances(tmp_path: Path) -> None:
    """The shell completion's names include web and web:0 ... web:2 from the file."""
    path = write(tmp_path, WEB)
    assert unit_names(str(path), programs_only=True) == ["web", "web:0", "web:1", "web:2", "worker"]


def test_readyz_for_a_program_answers_for_all_of_its_instances() -> None:
    """/readyz?unit=web is 503 while one instance is down, 200 once all are running; web:0 alone is asked by name."""

    def entry(name: str, state: str) -> Any:
        return {"name": name, "kind": "program", "state": state, "health": None, "autostart": True, "held": False}

    doc: Any = {"supervisor": {"state": "running"}, "units": [entry("web:0", "running"), entry("web:1", "backoff")]}
    assert readyz(doc, {"unit": ["web"]}) == (503, {"unit": "web", "ready": False, "reasons": ["web:1 is backoff"]})
    assert readyz(doc, {"unit": ["web:0"]}) == (200, {"unit": "web:0", "ready": True})
    assert readyz(doc, {"unit": ["we"]})[0] == 404


def test_check_names_the_instances_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check` plans web:0..web:2 and says once that web has 3 instances replaced one at a time."""
    from supervisor.cli import main

    cache = {"SUPERVISOR_CACHE_DIR": str(tmp_path / "cache")}
    path = write(tmp_path, '[programs.web]\ncommand = ["sleep", "1"]\ninstances = 3\n')
    with pytest.MonkeyPatch.context() as env:
        for key, value in cache.items():
            env.setenv(key, value)
        assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1. web:0 (program), web:1 (program), web:2 (program)" in out
    assert out.count("web: 3 instances, web:0 ... web:2; restart web replaces them one at a time") == 1


def test_a_singleton_with_instances_is_refused(tmp_path: Path) -> None:
    """singleton and instances contradict each other: one problem, under programs.beat.instances."""
    text = (
        '[dependencies.db]\ntype = "postgres"\nurl = "postgresql://x@127.0.0.1/x"\n'
        '[programs.beat]\ncommand = ["beat"]\nsingleton = "db"\ninstances = 2\n'
    )
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), environ={})
    assert [k for k, _ in info.value.problems] == ["programs.beat.instances"]


def test_status_watch_shows_a_programs_instances_those_a_scale_adds_too() -> None:
    """`status --watch web` keeps web:0.. in its table, and a later fetch picks up web:2 after a scale."""
    from supervisor.client.watch import _fetch

    class Fake:
        def __init__(self) -> None:
            self.names = ["web:0", "web:1", "worker"]

        def request(self, method: str, target: str) -> tuple[int, Any]:
            units = [{"name": n, "kind": "program", "state": "running"} for n in self.names]
            return 200, {"supervisor": {"state": "running"}, "units": units}

    client: Any = Fake()
    assert [u["name"] for u in _fetch(client, ["web"])["units"]] == ["web:0", "web:1"]
    client.names.insert(2, "web:2")
    assert [u["name"] for u in _fetch(client, ["web"])["units"]] == ["web:0", "web:1", "web:2"]
    with pytest.raises(LookupError, match="no unit named ghost"):
        _fetch(client, ["web", "ghost"])


def test_start_all_orders_a_follower_after_every_instance_of_what_it_comes_after(tmp_path: Path) -> None:
    """`after = ["web"]` with web's instances: web:0 and web:1 are one level, worker the next; one gating pass each.

    The order looked for "web" itself among the targets, found only web:0 and web:1, and put worker
    first when the file listed it first; and each target had a whole gating pass of its own.
    """
    path = tmp_path / "s.toml"
    path.write_text(
        '[programs.worker]\ncommand = ["true"]\nafter = ["web"]\n[programs.web]\ncommand = ["true"]\ninstances = 2\n'
    )
    loaded = load(path, {})
    host: Any = SimpleNamespace(loaded=loaded)
    targets: Any = [SimpleNamespace(name=n) for n in ("worker", "web:0", "web:1")]
    levels = FrontDoor._after_levels(host, targets)
    assert [[p.name for p in level] for level in levels] == [["web:0", "web:1"], ["worker"]]
