"""The README is short and its links land; the snippets of the README and docs/ can be pasted as they are."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from supervisor.config.loader import load

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").rglob("*.md"))
UNIT = ROOT / "conf" / "systemd" / "stack-supervisor.service"


def slugs(markdown: str) -> set[str]:
    """Return the anchors of a page's headings, as mkdocs' toc and GitHub both derive them."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        plain = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
        found.add(re.sub(r"[-\s]+", "-", plain))
    return found


def test_readme_is_at_most_250_lines() -> None:
    """The README stays a ten-minute read: what it is, the two commands, where to go next."""
    assert len(README.splitlines()) <= 250


def test_readme_links_land_on_a_page_and_heading() -> None:
    """Every relative link of the README names a file that exists and, with #anchor, a heading on it."""
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) > 20, "the README links into docs/"
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links to {path}, which does not exist"
        if anchor:
            assert anchor in slugs(target.read_text()), f"README links to {link}: no such heading in {path}"


def test_readme_links_every_key_of_its_example_to_the_reference() -> None:
    """A reader gets from each key of the README's example to its reference entry in one click."""
    example = re.search(r"## A configuration\n\n```toml\n(.*?)```", README, re.S)
    assert example, "the README shows a configuration"
    tables = tomllib.loads(example.group(1))
    for kind in ("dependencies", "jobs", "programs"):
        for unit in tables[kind].values():
            for key in unit:
                anchors = [f"#{key}-{k}" for k in ("dependencies", "jobs", "programs")]
                assert any(f"docs/reference/configuration.md{a})" in README for a in anchors), key


@pytest.mark.parametrize("page", ["README.md", "docs/configuration.md"])
def test_configuration_examples_validate(page: str, tmp_path: Path) -> None:
    """The example configuration a page shows loads without a problem."""
    text = (ROOT / page).read_text()
    example = re.search(r"\n```toml\n(\[dependencies\.postgres\].*?)```", text, re.S)
    assert example, f"{page} shows a configuration"
    path = tmp_path / "supervisor.toml"
    path.write_text(example.group(1))
    loaded = load(path, {"DATABASE_URL": "postgresql://app@db:5432/app"})
    assert set(loaded.config.programs) == {"web", "worker"}


def test_systemd_snippets_have_no_comment_after_a_value() -> None:
    """systemd takes `Key=value  # note` as the value itself: every comment sits on a line of its own."""
    blocks = [
        b for page in [ROOT / "README.md", *DOCS] for b in re.findall(r"```ini\n(.*?)```", page.read_text(), re.S)
    ]
    assert blocks, "the docs show the unit"
    bad = [line for block in blocks for line in block.splitlines() if "=" in line and "#" in line.split("=", 1)[1]]
    assert bad == []


def test_the_documented_unit_is_the_shipped_one() -> None:
    """Each setting in docs/deployment.md's unit snippet is a line of conf/systemd/stack-supervisor.service."""
    block = re.search(r"```ini\n(.*?)```", (ROOT / "docs/deployment.md").read_text(), re.S)
    assert block
    unit = UNIT.read_text().splitlines()
    settings = [line for line in block.group(1).splitlines() if "=" in line and not line.startswith("#")]
    assert settings and [s for s in settings if s not in unit] == []


def test_the_documented_vm_install_matches_the_shipped_files() -> None:
    """The install commands of docs/deployment.md copy files that exist, to the paths the unit reads."""
    text = (ROOT / "docs/deployment.md").read_text()
    install = re.search(r"```sh\n# as root, in a checkout.*?```", text, re.S)
    assert install
    unit = UNIT.read_text()
    copies = re.findall(r"^install .*? (\S+) (/\S+)", install.group(0), re.M)
    assert copies
    for source, _ in copies:
        assert (ROOT / source).is_file(), source
    targets = {target for _, target in copies}
    assert "/etc/systemd/system/stack-supervisor.service" in targets
    for target in re.findall(r"(/etc/stack-supervisor/\S+)", unit):
        assert target.lstrip("-") in targets, f"the unit reads {target}, which the docs do not install"
    doc_path = re.search(r"Documentation=file://(\S+)", unit)
    assert doc_path and doc_path.group(1) in targets, "the unit's Documentation= is installed"
    assert "systemctl enable --now stack-supervisor" in install.group(0)


def test_restart_backend_script_runs_the_commands_the_docs_show() -> None:
    """scripts/restart-backend.ps1 runs, for its default program, exactly the commands docs/deployment.md lists."""
    script = (ROOT / "scripts/restart-backend.ps1").read_text()
    default = re.search(r'\$Program = "(\w+)"', script)
    assert default
    runs = [
        line.strip().replace("$Program", default.group(1))
        for line in script.splitlines()
        if line.strip().startswith("docker ")
    ]
    text = (ROOT / "docs/deployment.md").read_text()
    shown = re.search(r"It runs exactly these two commands.*?```sh\n(.*?)```", text, re.S)
    assert shown
    assert runs == shown.group(1).strip().splitlines()
    assert all(" exec -T " in run for run in runs), "a script has no terminal: docker compose exec needs -T"
