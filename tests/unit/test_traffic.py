"""``[supervisor] traffic`` and ``/readyz?unit=``: the units that decide readiness for traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.cli import main
from supervisor.config import load
from supervisor.control.readyz import readyz
from supervisor.machine.errors import ConfigError
from supervisor.machine.status import traffic_reasons


def program(name: str, state: str = "running", **more: Any) -> dict[str, Any]:
    return {"name": name, "kind": "program", "state": state, "health": None, "autostart": True, "held": False, **more}


UNITS: list[Any] = [
    {"name": "redis", "kind": "dependency", "state": "unavailable", "error": "connection refused"},
    program("web"),
    program("worker", "stopped", held=True),
]


def document(state: str = "running", traffic: list[str] | None = None) -> Any:
    return {"supervisor": {"state": state, "traffic": traffic}, "units": UNITS}


def test_every_unit_decides_without_traffic() -> None:
    """Without ``traffic``, /readyz is `status` exit 0: every unit, and start-up over."""
    assert traffic_reasons("running", UNITS, None) == ["redis unavailable: connection refused", "worker is stopped"]
    assert traffic_reasons("starting", UNITS[1:2], None) == ["supervisor is starting"]
    assert readyz(document(), {}) == (503, {"ready": False, "reasons": traffic_reasons("running", UNITS, None)})


def test_only_the_traffic_units_decide_with_traffic() -> None:
    """With ``traffic = ["web"]`` a down dependency or a stopped worker leaves web ready, start-up or not."""
    assert readyz(document(traffic=["web"]), {}) == (200, {"ready": True})
    assert readyz(document("starting", traffic=["web"]), {}) == (200, {"ready": True})
    assert traffic_reasons("running", [program("web", "backoff")], ["web"]) == ["web is backoff"]
    assert traffic_reasons("running", [program("web", health="unhealthy")], ["web"]) == ["web is unhealthy"]


def test_instances_count_under_their_programs_name() -> None:
    """``traffic = ["web"]`` covers the instances ``web:0``, ``web:1``."""
    units = [program("web:0"), program("web:1", "backoff"), program("webhook", "fatal")]
    assert traffic_reasons("running", units, ["web"]) == ["web:1 is backoff"]


@pytest.mark.parametrize("state", ["draining", "stopping"])
def test_a_leaving_supervisor_takes_no_traffic(state: str) -> None:
    """Draining or stopping, /readyz is 503 whatever the units, for traffic and for one unit."""
    assert readyz(document(state, ["web"]), {}) == (503, {"ready": False, "reasons": [f"supervisor is {state}"]})
    code, body = readyz(document(state), {"unit": ["web"]})
    assert code == 503 and body["reasons"] == [f"supervisor is {state}"]


def test_one_unit_on_request() -> None:
    """``?unit=NAME`` answers for that unit alone; an unknown name is 404 naming the units."""
    assert readyz(document(), {"unit": ["web"]}) == (200, {"unit": "web", "ready": True})
    assert readyz(document(), {"unit": ["worker"]}) == (
        503,
        {"unit": "worker", "ready": False, "reasons": ["worker is stopped"]},
    )
    code, body = readyz(document(), {"unit": ["ghost"]})
    assert code == 404 and body == {"error": "no unit named 'ghost' (units: redis, web, worker)"}


BASE = '[programs.web]\ncommand = ["true"]\n[programs.worker]\ncommand = ["true"]\n'


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    return info.value.problems


def test_traffic_names_units_of_the_file(tmp_path: Path) -> None:
    """An unknown unit in ``traffic`` is named by its index; an empty list is refused; a good one loads."""
    found = problems(tmp_path, '[supervisor]\ntraffic = ["web", "wbe"]\n' + BASE)
    assert found == [("supervisor.traffic[1]", "unknown unit 'wbe' (did you mean `web`?)")]
    assert problems(tmp_path, "[supervisor]\ntraffic = []\n" + BASE)[0][0] == "supervisor.traffic"
    path = tmp_path / "good.toml"
    path.write_text('[supervisor]\ntraffic = ["web"]\n' + BASE)
    assert load(path, environ={}).config.supervisor.traffic == ["web"]
    path.write_text(BASE)
    assert load(path, environ={}).config.supervisor.traffic is None


def test_check_exits_78_for_an_unknown_traffic_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check` refuses ``traffic`` naming no unit with exit 78, naming the file and the key."""
    path = tmp_path / "s.toml"
    path.write_text('[supervisor]\ntraffic = ["ghost"]\n' + BASE)
    assert main(["check", "--config", str(path)]) == 78
    assert f"{path}: supervisor.traffic[0]: unknown unit 'ghost'" in capsys.readouterr().err
