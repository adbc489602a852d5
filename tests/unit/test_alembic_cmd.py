"""Which migration commands the revisions may skip: upgrades only."""

from __future__ import annotations

import pytest

from supervisor.stack.migrations import is_upgrade


@pytest.mark.parametrize(
    ("argv", "upgrade"),
    [
        (["alembic", "upgrade", "head"], True),
        (["alembic", "-c", "conf/alembic.ini", "upgrade", "heads"], True),
        (["python", "-m", "alembic", "upgrade", "head"], True),
        (["sh", "-c", "alembic upgrade head && echo done"], True),
        (["alembic", "downgrade", "base"], False),
        (["alembic", "stamp", "head"], False),
        (["true"], False),
        (["upgrade"], False),
    ],
)
def test_only_upgrade_commands_may_skip_at_head(argv: list[str], upgrade: bool) -> None:
    """An alembic upgrade is recognised in its argv or inside a shell line; anything else runs as given."""
    assert is_upgrade(argv) is upgrade
