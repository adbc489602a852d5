"""The README's snippets can be pasted as they are."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_systemd_snippets_have_no_comment_after_a_value() -> None:
    """systemd takes `Key=value  # note` as the value itself: every comment sits on a line of its own."""
    blocks = re.findall(r"```ini\n(.*?)```", README, re.S)
    assert blocks, "the README shows a unit"
    bad = [line for block in blocks for line in block.splitlines() if "=" in line and "#" in line.split("=", 1)[1]]
    assert bad == []
