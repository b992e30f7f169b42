"""Disk helpers (torch-free): the one atomic write, a full or read-only disk told plainly, and what a folder holds.

`write_atomic` is how every file of the project is written (checkpoints, metrics.jsonl's trim,
control.json, chat settings and sessions, dataset files, exports, the token-check cache): into a
temporary file beside the target (`.NAME.<random>.tmp`, which `core.common.folder_lock` cleans up after
a killed writer), flushed and fsync'ed, given the target's mode (or a stated one; 0644 by default, not
mkstemp's 0600, so a shared folder stays readable), moved over the target with `os.replace`, and the
folder fsync'ed where the OS allows. Readers see the old file or the new one, never half of one; a
crash after it returns keeps the new one; the target is replaced, never written through (a link in its
place is replaced, not followed).

A write that fails because the disk is full (or over quota) or read-only raises `DiskWriteError`, one
line: "no space left on device: could not WHAT in FOLDER (N free); ..." or "read-only file system:
could not WHAT in FOLDER", with the temporary file removed and the old file intact. Other writers
(dataset preparation's .bin files) ask `disk_problem`; torch's checkpoint writer reports the OSError only
as the context of its own "unexpected pos" RuntimeError, so the whole chain of causes is searched.

`folder_size` walks a whole folder (every file stat'ed): on a big run folder or a network disk that takes
a while, so screens call it from a thread worker, never from a handler.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.common.formatting import human_size

FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
DEFAULT_MODE = 0o644


class DiskWriteError(OSError):
    """A write that failed because the disk is full or read-only (its errno: ENOSPC or EROFS); the
    message is one line saying so."""

    def __str__(self) -> str:
        return str(self.strerror)


def _errnos(error: BaseException | None) -> list[int]:
    """The errno of `error` and of every error it was raised from or while handling."""
    found, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno is not None:
            found.append(error.errno)
        error = error.__cause__ or error.__context__
    return found


def disk_problem(error: BaseException | None, what: str, folder: str | os.PathLike[str]) -> DiskWriteError | None:
    """The one-line DiskWriteError for a write that failed on a full or read-only disk, else None."""
    codes = _errnos(error)
    if any(code in FULL_ERRNOS for code in codes):
        return DiskWriteError(errno.ENOSPC, no_space_message(what, folder))
    if errno.EROFS in codes:
        return DiskWriteError(errno.EROFS, read_only_message(what, folder))
    return None


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


def read_only_message(what: str, folder: str | os.PathLike[str]) -> str:
    """"read-only file system: could not <what> in FOLDER; ..." for a failed write."""
    return f"read-only file system: could not {what} in {Path(folder)} (files already there are intact)"


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


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *, mode: int | None = None,
                 what: str | None = None, replace: Callable[[str, Path], bool] | None = None) -> bool:
    """Replace `path` with what `write` writes into the open (binary) file it is given; see the module
    docstring. `mode`: the new file's permissions (default: the old file's, else 0644). `what` words a
    failure ("save checkpoint ckpt.pt"; default "write NAME"): DiskWriteError for a full or read-only
    disk, any other error as raised; either way the temporary file is gone and the old file intact.
    `replace(temp, path)` is the last step (default: os.replace, True), for a writer that decides only
    then whether the new file still should land (chat_store.NewestWins: the newest snapshot, under its
    lock); when it returns False the new file is dropped. Returns whether it landed."""
    path = Path(path)
    folder = path.parent
    tmp: str | None = None
    try:
        if mode is None:
            mode = _kept_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), mode)
            else:  # Windows
                os.chmod(tmp, mode)
            os.fsync(file.fileno())
        if replace is None:
            os.replace(tmp, path)
        elif not replace(tmp, path):
            return False  # (the temporary file goes on the way out)
        tmp = None
        sync_folder(folder)
        return True
    except BaseException as error:
        problem = disk_problem(error, what or f"write {path.name}", folder)
        if problem is not None:
            raise problem from error
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, **options: Any) -> bool:
    """`write_atomic` of these bytes (`options`: its keyword arguments)."""
    return write_atomic(path, lambda file: file.write(data), **options)


def write_text_atomic(path: str | os.PathLike[str], text: str, **options: Any) -> bool:
    """`write_atomic` of this text, as UTF-8 (`options`: its keyword arguments)."""
    return write_bytes_atomic(path, text.encode("utf-8"), **options)


def _kept_mode(path: Path) -> int:
    """The permissions of the file at `path` if it is a regular one (a link's target never counts), else 0644."""
    try:
        st = os.lstat(path)
    except OSError:
        return DEFAULT_MODE
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else DEFAULT_MODE


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync a folder, so a rename in it survives a crash; a no-op where folders cannot be opened (Windows)
    or fsync'ed (some network file systems)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
