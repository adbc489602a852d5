"""docs/testing.md names exactly the tests that can skip: a new skip shows up there or this fails."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
PAGE = ROOT / "docs" / "testing.md"


def _calls(node: ast.AST) -> Iterator[str]:
    """The names a function calls: ``pytest.skip`` as such, any other call by its last name."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "pytest":
                yield f"pytest.{func.attr}"
            elif isinstance(func, ast.Attribute):
                yield func.attr
            elif isinstance(func, ast.Name):
                yield func.id


def _is_skipif(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "skipif"


def skipping_helpers() -> set[str]:
    """Functions under tests/ that skip the test calling them (``pytest.skip``, directly or through one another)."""
    bodies: dict[str, list[ast.AST]] = {}
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("test_"):
                bodies.setdefault(node.name, []).append(node)
    helpers: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, nodes in bodies.items():
            if name not in helpers and any(c == "pytest.skip" or c in helpers for n in nodes for c in _calls(n)):
                helpers.add(name)
                grew = True
    return helpers


def skippable_tests() -> set[str]:
    """``path::name`` of every test that a skipif mark (its own or its module's) or a skip call can skip."""
    helpers = skipping_helpers()
    found: set[str] = set()
    for path in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        marks, whole_module = set(), False
        for node in tree.body:
            if isinstance(node, ast.Assign) and _is_skipif(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        whole_module |= target.id == "pytestmark"
                        marks.add(target.id)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.name.startswith("test_"):
                continue
            marked = any(_is_skipif(d) or (isinstance(d, ast.Name) and d.id in marks) for d in node.decorator_list)
            called = any(c == "pytest.skip" or c in helpers for c in _calls(node))
            if whole_module or marked or called:
                found.add(f"{path.relative_to(ROOT).as_posix()}::{node.name}")
    return found


def listed() -> set[str]:
    """The tests the page's skip table names."""
    section = PAGE.read_text().split("## Tests that skip", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(tests/[\w/]+\.py::\w+)`", section))


def test_the_page_lists_exactly_the_skippable_tests() -> None:
    """Every test that can skip is in docs/testing.md's table, and every test there can skip."""
    can, named = skippable_tests(), listed()
    assert sorted(can - named) == [], "add these to the table in docs/testing.md (## Tests that skip)"
    assert sorted(named - can) == [], "these no longer skip (or are gone): take them out of docs/testing.md"
