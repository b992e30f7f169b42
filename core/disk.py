"""A full disk, told plainly (torch-free): which folder, and how much space is left there.

Writers (checkpoints, metrics, prepare) catch the OSError of a failed write and ask `is_disk_full`;
torch's checkpoint writer reports the OSError only as the context of its own "unexpected pos"
RuntimeError, so the whole chain of causes is searched.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from core.formatting import human_size

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
