"""The script heads are cached by the scripts' names, sizes and mtimes, so a repeat start imports no alembic."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from supervisor.stack import migrations

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webstack"


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example's alembic.ini and migrations, and a cache directory of the test's own."""
    monkeypatch.setenv("SUPERVISOR_CACHE_DIR", str(tmp_path / "cache"))
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE / "migrations", app / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "alembic.ini", app / "alembic.ini")
    return app / "alembic.ini"


def test_stored_heads_are_found_again(scripts: Path) -> None:
    """Heads stored for the scripts as they are come back from the cache unchanged."""
    assert migrations.cached_heads(str(scripts)) is None
    assert migrations.store_heads(str(scripts), {"0001", "0002"}, ("0002",)) is not None
    assert migrations.cached_heads(str(scripts)) == ({"0001", "0002"}, ("0002",))


def test_a_changed_or_added_revision_file_misses_the_cache(scripts: Path) -> None:
    """Editing a revision file, or adding one, changes the key: the stale heads are never used."""
    migrations.store_heads(str(scripts), {"0001", "0002"}, ("0002",))
    versions = scripts.parent / "migrations" / "versions"
    edited = versions / "0001_events.py"
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert migrations.cached_heads(str(scripts)) is None
    migrations.store_heads(str(scripts), {"0001", "0002"}, ("0002",))
    (versions / "0003_more.py").write_text("revision = '0003'\ndown_revision = '0002'\n")
    assert migrations.cached_heads(str(scripts)) is None


def test_a_script_location_that_is_no_directory_is_not_cached(tmp_path: Path) -> None:
    """A package resource or a missing directory gives no key, so the helper always reads the scripts."""
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = mypackage:migrations\n")
    assert migrations.heads_cache_key(str(ini)) is None
    ini.write_text("[other]\n")
    assert migrations.heads_cache_key(str(ini)) is None


def test_the_key_resolves_a_relative_script_location_from_the_jobs_cwd(tmp_path: Path) -> None:
    """A relative script_location is read from the job's cwd, as alembic reads it from its own."""
    (tmp_path / "migrations").mkdir()
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = migrations\n")
    assert migrations.heads_cache_key(str(ini), cwd=str(tmp_path)) is not None
    assert migrations.heads_cache_key(str(ini), cwd=str(tmp_path / "migrations")) is None


@pytest.mark.parametrize("planted", ["symlink", "fifo", "group-writable-dir"])
def test_heads_planted_in_the_cache_are_not_trusted(scripts: Path, tmp_path: Path, planted: str) -> None:
    """A link or a FIFO in place of the entry, or a directory others can write, is no cache (and no hang)."""
    entry = migrations.store_heads(str(scripts), {"0001", "0002"}, ("0002",))
    assert entry is not None
    forged = tmp_path / "forged.json"
    forged.write_text('{"known": ["9999"], "heads": ["9999"]}\n')
    if planted == "group-writable-dir":
        entry.write_text(forged.read_text())
        entry.parent.chmod(0o770)
        assert migrations.store_heads(str(scripts), {"0001"}, ("0001",)) is None  # nor written
    else:
        entry.unlink()
        entry.symlink_to(forged) if planted == "symlink" else os.mkfifo(entry, 0o600)
    # A FIFO read with a blocking open would hang here, with no writer ever to come.
    assert migrations.cached_heads(str(scripts)) is None
