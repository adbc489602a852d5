"""The documentation site's nav: no missing page (`make lint` builds the site with mkdocs --strict)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_of_the_nav_exists_and_the_main_pages_are_in_it() -> None:
    """The nav names only pages that exist, and the pages a reader starts from are all in it."""

    def pages(items: list) -> list[str]:  # type: ignore[type-arg]
        found: list[str] = []
        for item in items:
            for value in item.values() if isinstance(item, dict) else [item]:
                found += pages(value) if isinstance(value, list) else [value]
        return found

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.SafeLoader)
    listed = pages(config["nav"])
    assert [p for p in listed if not (ROOT / "docs" / p).is_file()] == []
    for page in ("getting-started.md", "concepts.md", "operators-guide.md", "reference/configuration.md"):
        assert page in listed
