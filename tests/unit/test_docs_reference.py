"""The configuration and CLI references are generated, complete, and the same as the committed pages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate them with `make docs-ref` (python scripts/docs_reference.py) and commit the result"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_reference"] = module
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def test_every_configuration_key_has_a_one_line_description() -> None:
    """A key added to config/models.py without its one-line docstring fails here, by name."""
    missing = GEN.undocumented_keys()
    assert missing == [], (
        f"write a one-line docstring under each of these keys in supervisor/config/models.py: {missing}"
    )


def test_every_command_and_option_has_a_help_line() -> None:
    """A sub-command or option of supervisor/cli.py without help= fails here, by name."""
    missing = GEN.undocumented_commands()
    assert missing == [], f"give these a help= in supervisor/cli.py: {missing}"


@pytest.mark.parametrize("page", ["configuration.md", "cli.md"])
def test_committed_reference_pages_are_up_to_date(page: str) -> None:
    """The committed page is byte for byte what the generator writes from the code as it is now."""
    path = ROOT / "docs" / "reference" / page
    expected = GEN.pages()[path]
    assert path.exists(), f"docs/reference/{page} is missing: {REGENERATE}"
    assert path.read_text() == expected, f"docs/reference/{page} is out of date: {REGENERATE}"


def test_every_key_is_on_the_configuration_page() -> None:
    """Each key of each table has its own section on the page, the target of links from the other pages."""
    text = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    for model, _, _ in GEN.TABLES:
        for key in model.model_fields:
            heading = f"### {GEN.key_heading(model, key)}\n"
            assert heading in text, f"{model.__name__}.{key} has no section: {REGENERATE}"


def test_every_command_is_on_the_cli_page() -> None:
    """Each sub-command of the parser has its own section on the CLI page."""
    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    from supervisor import cli

    for name in GEN.commands(cli._parser()):
        assert f"## `supervisor {name}`\n" in text, f"`supervisor {name}` is not documented: {REGENERATE}"


def test_the_drift_check_notices_a_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--check` exits 1 and names the command to run when a page differs from what the code gives."""
    page = tmp_path / "configuration.md"
    page.write_text("stale\n")
    monkeypatch.setattr(GEN, "CONFIG_PAGE", page)
    monkeypatch.setattr(GEN, "ROOT", tmp_path)
    monkeypatch.setattr(GEN, "CLI_PAGE", tmp_path / "cli.md")
    (tmp_path / "cli.md").write_text(GEN.cli_page())
    assert GEN.main(["--check"]) == 1
    assert page.read_text() == "stale\n", "--check writes nothing"
    assert GEN.main([]) == 0
    assert page.read_text() == GEN.config_page()


def test_anchors_are_the_same_on_github_and_in_mkdocs() -> None:
    """A key's anchor is what both GitHub and mkdocs derive from its heading, so a README link works in both."""
    from markdown.extensions.toc import slugify

    from supervisor.config.models import ProgramTable

    heading = GEN.key_heading(ProgramTable, "stop_timeout")
    assert GEN.anchor(ProgramTable, "stop_timeout") == slugify(heading.replace("`", ""), "-") == "stop_timeout-programs"
