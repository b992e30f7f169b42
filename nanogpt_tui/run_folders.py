"""Following run folders across renames: a rename keeps a folder's device and inode, so a folder that is
gone from where it was can be found again beside it (the Checkpoints screen renames runs in place)."""

from __future__ import annotations

from pathlib import Path

FolderId = tuple[int, int]


def folder_id(path: Path) -> FolderId | None:
    """What identifies a folder across a rename (device and inode), or None if it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def find_moved(known: dict[Path, FolderId]) -> dict[Path, Path | None]:
    """The folders of `known` that are no longer where they were: where they went beside it, or None if deleted."""
    moved: dict[Path, Path | None] = {}
    for old, folder in known.items():
        if folder_id(old) == folder:
            continue
        siblings = old.parent.iterdir() if old.parent.is_dir() else iter(())
        moved[old] = next((path for path in siblings if folder_id(path) == folder), None)
    return moved
