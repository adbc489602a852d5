"""A process tree's RSS is summed from the tree itself, and agrees with a pass over the whole table."""

from __future__ import annotations

import os
import subprocess
import sys

from supervisor.host import proctree
from tests.conftest import wait_until

GRANDPARENT = "import subprocess, sys; p = subprocess.Popen(['sleep', '60']); sys.stdin.read(); p.kill()"


def test_tree_rss_counts_children_and_grandchildren() -> None:
    """A child and its own child count toward the root, as the whole-table figure counts them."""
    child = subprocess.Popen([sys.executable, "-c", GRANDPARENT], stdin=subprocess.PIPE)
    try:
        alone = proctree._rss(os.getpid())
        wait_until(lambda: proctree._children(child.pid), 10, "the grandchild spawned")
        by_tree = proctree.trees_rss({os.getpid()})[os.getpid()]
        by_table = proctree._trees_rss_by_table({os.getpid()})[os.getpid()]
        assert by_tree > alone + proctree._rss(child.pid)
        assert abs(by_tree - by_table) < 0.2 * by_table  # the same processes, read a moment apart
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)


def test_a_gone_process_has_no_rss() -> None:
    """A pid that exited counts as zero, not an error."""
    done = subprocess.Popen(["true"])
    done.wait()
    assert proctree.tree_rss(done.pid) == 0
