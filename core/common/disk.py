"""Disk helpers (torch-free): a full disk told plainly, and what a folder holds.

Writers (checkpoints, metrics, prepare) catch the OSError of a failed write and ask `is_disk_full`;
torch's checkpoint writer reports the OSError only as the context of its own "unexpected pos"
RuntimeError, so the whole chain of causes is searched.

`folder_size` walks a whole folder (every file stat'ed): on a big run folder or a network disk that takes
a while, so screens call it from a thread worker, never from a handler.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.common.formatting import human_size

FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is "no space left" (or quota)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        error = error.__cause__ or error.__context__
    return False


def free_space(folder: str | os.PathLike[str]) -> str:
    """The free space of the filesystem holding `folder`, e.g. "12.3 MiB free" (or "free space unknown")."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    return f"{human_size(free)} free"


def no_space_message(what: str, folder: str | os.PathLike[str]) -> str:
    """"no space left on device: could not <what> in FOLDER (N MB free); ..." for a failed write."""
    return (
        f"no space left on device: could not {what} in {Path(folder)} ({free_space(folder)}); "
        "free some space and try again (files already there are intact)"
    )


@dataclass(frozen=True)
class FolderSize:
    """How many files a folder holds, all its subfolders included, and their bytes."""

    files: int
    bytes: int

    def __str__(self) -> str:
        return f"{self.files} file{'' if self.files == 1 else 's'}, {human_size(self.bytes)}"


def folder_size(folder: str | os.PathLike[str]) -> FolderSize:
    """Count the files under `folder` and their bytes; never raises.

    Links are counted, not followed (shutil.rmtree removes a link, not what it points to). A file that
    vanishes or cannot be stat'ed meanwhile (a trainer replacing its checkpoint) is left out, an unreadable
    subfolder too: this sizes a folder for a question, it does not vouch for it.
    """
    files = size = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            files += 1
            size += stat.st_size
    return FolderSize(files, size)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """`write` a temporary file beside `path`, then move it into place: readers see the old file or the
    new one, never half of one. Mode 0644 (mkstemp's 0600 would hide it from other users on a shared folder)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
