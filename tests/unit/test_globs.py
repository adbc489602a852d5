"""``watch`` globs: ``*`` within a segment, ``**`` across them, roots to watch, and the ones that match nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import globs
from supervisor.config.globs import Globs, compile_glob, root


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("app/**/*.py", "app/main.py", True),
        ("app/**/*.py", "app/api/v1/routes.py", True),
        ("app/**/*.py", "app/main.pyc", False),
        ("app/**/*.py", "tests/app/main.py", False),
        ("*.py", "main.py", True),
        ("*.py", "app/main.py", False),
        ("**/*.py", "main.py", True),
        ("**/*.py", "a/b/c.py", True),
        ("app/*.toml", "app/settings.toml", True),
        ("app/?.py", "app/a.py", True),
        ("app/?.py", "app/ab.py", False),
        ("templates/**", "templates/a/b.html", True),
        ("conf/[ab].ini", "conf/a.ini", True),
        ("conf/[!ab].ini", "conf/a.ini", False),
        ("conf/[!ab].ini", "conf/c.ini", True),
        ("a+b/(x).py", "a+b/(x).py", True),
        ("settings.py", "settings.py", True),
    ],
)
def test_globs_match_as_a_shell_with_globstar_does(pattern: str, path: str, hit: bool) -> None:
    """Each glob matches the paths a shell with globstar would give it, and no others."""
    assert bool(compile_glob(pattern).match(path)) is hit


def test_roots_are_the_fixed_part_of_each_glob(tmp_path: Path) -> None:
    """app/**/*.py watches app/; *.py the base; a plain file its directory; nested roots collapse."""
    assert root("/srv", "app/**/*.py") == "/srv/app"
    assert root("/srv", "*.py") == "/srv"
    assert root("/srv", "conf/app.toml") == "/srv/conf"
    assert root("/srv", "/etc/app/*.ini") == "/etc/app"
    (tmp_path / "app" / "api").mkdir(parents=True)
    globs = Globs(str(tmp_path), ["app/**/*.py", "app/api/*.py", "missing/*.py"])
    assert globs.roots() == [str(tmp_path / "app")]


def test_matches_take_absolute_paths_and_unmatched_globs_are_named(tmp_path: Path) -> None:
    """A changed path is matched relative to the base; a glob with no file yet is reported, the others not."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("")
    globs = Globs(str(tmp_path), ["app/**/*.py", "templates/*.html"])
    assert globs.matches(str(tmp_path / "app" / "x" / "y.py"))
    assert not globs.matches(str(tmp_path / "app" / "notes.txt"))
    assert globs.unmatched() == ["templates/*.html"]


def test_check_warns_once_per_program_about_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    """`check` (the loader's warnings) names the program's key and the glob, once for all its instances."""
    from supervisor.config import load

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("")
    path = tmp_path / "supervisor.toml"
    path.write_text(
        f'[programs.web]\ncommand = ["true"]\ncwd = "{tmp_path}"\ninstances = 2\n'
        'watch = ["app/**/*.py", "templates/*.html"]\n'
    )
    loaded = load(path, environ={})
    warnings = [w for w in globs.all_warnings(loaded) if ".watch" in w]
    assert len(warnings) == 1 and warnings[0].startswith("programs.web.watch: 'templates/*.html' matches no file")
    # Found anew each time, not kept with the result (which the cache may hand back later).
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text("")
    assert [w for w in globs.all_warnings(loaded) if ".watch" in w] == []
