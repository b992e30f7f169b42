"""Starting this program's own Python modules as child processes (`python -m core.X`), wherever it runs from.

The child must import the same code as its parent, also when the parent runs from a source tree that is
not installed (a checkout, a worktree): the folder holding `core` goes first on the child's PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the folder that holds core/


def module_command(module: str) -> list[str]:
    """The command line that runs `module` (dotted) with this interpreter."""
    return [sys.executable, "-m", module]


def child_env() -> dict[str, str]:
    """The environment for a child: ours, with this program's folder first on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env
