"""`supervisor check` warms the script heads cache, as an image build would run it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from supervisor.cli import main
from supervisor.stack import migrations
from tests.unit import test_heads_cache

scripts = pytest.fixture(test_heads_cache.scripts.__wrapped__)  # type: ignore[attr-defined]


def test_check_warms_the_cache(scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`supervisor check` reads the heads once (as image builds run it), and says that it cached them."""
    if shutil.which("alembic", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("alembic is not installed beside this Python")
    config = scripts.parent / "s.toml"
    config.write_text(
        '[dependencies.pg]\ntype = "postgres"\nurl = "postgresql://127.0.0.1:1/x"\n'
        f'[jobs.migrate]\ndepends_on = ["pg"]\ncommand = ["{sys.executable}", "-m", "alembic", "upgrade", "head"]\n'
        f'alembic_config = "alembic.ini"\ncwd = "."\n'
    )
    assert main(["check", "--config", str(config)]) == 0
    assert "migrate: script heads 0003 cached" in capsys.readouterr().out
    assert migrations.cached_heads(str(scripts), str(scripts.parent)) == ({"0001", "0002", "0003"}, ("0003",))
