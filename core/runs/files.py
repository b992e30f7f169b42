"""The checkpoint files of a run folder, and the walk over runs/ that every listing of runs shares.

Torch-free: the app lists runs in its workers before torch is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.common import paths
from core.common.folder_lock import remove_leftovers
from core.runs.metrics import METRICS_FILE

LATEST = "ckpt.pt"  # nanoGPT's name, so a run folder is also a nanoGPT out_dir
BEST = "best.pt"


def run_files(runs_root: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """(file, kind) of every run's latest and best checkpoints, kind "none" (at its ckpt.pt path) for a run
    that started but never saved. Temporary files that killed writers left in a run folder are removed
    on the way."""
    root = Path(runs_root) if runs_root is not None else paths.runs_dir()
    if not root.is_dir():
        return []
    files: list[tuple[Path, str]] = []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        remove_leftovers(run)
        found = [(run / filename, kind) for filename, kind in ((LATEST, "latest"), (BEST, "best")) if (run / filename).is_file()]
        if not found and (run / METRICS_FILE).is_file():  # a run that started but never saved
            found = [(run / LATEST, "none")]
        files += found
    return files
