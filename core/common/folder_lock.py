"""One writer per folder (a run folder, a dataset being prepared): an OS lock held for its writer's life (torch-free).

A process that trains into a run folder holds `FolderLock(run_dir)`: an exclusive `fcntl.flock` on the
file `.lock` in the folder, which also records the holder's pid. The lock file is opened and created
through core.common.safe_files (O_NOFOLLOW | O_CREAT, O_NONBLOCK, a regular-file check): a `.lock` that
is a link, a FIFO, a device or a folder is refused with UnsafeFile, never followed or written through.
The OS releases the lock when the process ends, however it ends (kill -9 included), so a stale lock
cannot outlive its holder. Other code asks `holder(run_dir)`: the pid of the live process writing there, or None.

    with FolderLock(run_dir):          # RunInUse if another process trains there
        ...train...
    pid = holder(run_dir)           # e.g. the Checkpoints screen: "in use by pid 1234"

Taking the lock also deletes what a killed writer left behind (its `.*.tmp` files), and
`remove_leftovers(run_dir)` does the same from outside (a listing), only while no live process
holds the run. Any work folder can be locked the same way: `data.prepare` locks its staging folders
and stdin spools, and `abandoned(folder)` tells the ones whose owner died. On systems without
`fcntl` (Windows) there is no lock: every folder reads as free and FolderLock does nothing.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Iterator

from core.common.safe_files import UnsafeFile, open_regular

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
ABANDON_AGE_S = 60.0  # a work folder younger than this may be one whose owner has not locked it yet
ACQUIRE_TRIES = 20  # readers peek by taking a shared lock for a moment: retry for a second before refusing
ACQUIRE_WAIT_S = 0.05


class RunInUse(Exception):
    """Another live process writes to this run folder."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.run_dir, self.pid = run_dir, pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"run {run_dir.name!r} is in use: {who} is training it ({run_dir}). "
            "Wait for it to finish or stop it, or choose another run name."
        )


def _is_at(file: IO[bytes], path: Path) -> bool:
    """Whether the open `file` is still the file at `path` (not one unlinked meanwhile)."""
    try:
        return os.path.samestat(os.fstat(file.fileno()), os.lstat(path))
    except OSError:
        return False


def _read_pid(file: IO[bytes]) -> int | None:
    file.seek(0)
    text = file.read(32).strip()
    return int(text) if text.isdigit() else None


def _open_lock(path: Path, create: bool) -> IO[bytes]:
    """The lock file, opened by core.common.safe_files.open_regular: never through a link (O_NOFOLLOW,
    created with O_CREAT | O_NOFOLLOW), never a FIFO, device or folder. UnsafeFile saying how to fix it."""
    try:
        return open_regular(path, write=create, create=create)
    except UnsafeFile as error:
        raise UnsafeFile(path, f"{error.reason}; not a lock file of this program's: remove it and try again") from None


class FolderLock:
    """The exclusive lock on a run folder (created if missing); a context manager, or acquire/release."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid into it, or raise RunInUse naming the holder's pid (UnsafeFile
        when `.lock` is a link, a FIFO, a folder, anything but the regular file it should be)."""
        if fcntl is None or self._file is not None:
            return
        pid = None
        for _ in range(ACQUIRE_TRIES):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                file = _open_lock(self.run_dir / LOCK_FILE, create=True)
            except FileNotFoundError:  # the holder removed the folder after our mkdir (a failed setup): again
                continue
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(file)
                file.close()
                time.sleep(ACQUIRE_WAIT_S)
                continue
            if _is_at(file, self.run_dir / LOCK_FILE):
                break
            file.close()  # its holder removed it before letting go (a run whose setup failed): lock the new one
        else:
            raise RunInUse(self.run_dir, pid)
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n".encode())
        file.flush()
        self._file = file
        _remove(_temp_files(self.run_dir))  # we are the only writer now: any temp file is a dead one's

    def release(self) -> None:
        """Give the lock up. The file stays (`remove_folder` is the one way to delete it: while held)."""
        if self._file is not None:
            self._file.truncate(0)
            self._file.close()  # closing releases the flock
            self._file = None

    def remove_folder(self) -> None:
        """Delete the lock file, and the run folder if that leaves it empty, then give the lock up. Done in
        this order a writer waiting for the lock finds its file gone once it gets it (acquire looks) and
        locks the new one: never two writers, one on a deleted file."""
        with contextlib.suppress(OSError):
            (self.run_dir / LOCK_FILE).unlink()
            self.run_dir.rmdir()  # only if now empty
        self.release()

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


@contextlib.contextmanager
def _peek(run_dir: Path) -> Iterator[IO[bytes] | None]:
    """Yield None while holding a shared lock on the run for a moment (no writer there), else the
    open lock file so the caller can read the writer's pid."""
    path = Path(run_dir) / LOCK_FILE
    try:
        file = _open_lock(path, create=False)
    except OSError:  # no lock file: nobody ever locked it (or not one acquire would take: no one can hold it)
        yield None
        return
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield file
            return
        try:
            yield None
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def in_use(run_dir: str | os.PathLike[str]) -> bool:
    """Whether a live process holds the run folder's lock."""
    if fcntl is None:
        return False
    with _peek(Path(run_dir)) as busy:
        return busy is not None


def holder(run_dir: str | os.PathLike[str]) -> int | None:
    """The pid of the live process training in `run_dir`, or None when the run is free.

    (A holder that has not written its pid yet reads as free for that instant; use `in_use` to know
    only whether the run is busy.)"""
    if fcntl is None:
        return None
    with _peek(Path(run_dir)) as busy:
        return _read_pid(busy) if busy is not None else None


def _temp_files(run_dir: Path) -> list[Path]:
    try:
        return [p for p in run_dir.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    except OSError:
        return []


def _remove(files: list[Path]) -> list[Path]:
    removed = []
    for path in files:
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def remove_leftovers(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files (`.NAME.*.tmp`) a killed writer left in `run_dir`, unless a live
    process holds the run; the removed paths. (A writer's own temp files exist only while it holds
    the lock, and a new writer's get fresh random names, so files listed before a free lock is seen
    belong to no one.)"""
    run_dir = Path(run_dir)
    candidates = _temp_files(run_dir)
    if not candidates or in_use(run_dir):
        return []
    return _remove(candidates)


def abandoned(folder: str | os.PathLike[str], min_age_s: float = ABANDON_AGE_S) -> bool:
    """Whether a work folder's owner is gone: no live process holds its lock, and it is older than
    `min_age_s` (its owner creates it a moment before locking it). Always False without `fcntl`."""
    if fcntl is None:
        return False
    try:
        age = time.time() - Path(folder).stat().st_mtime
    except OSError:
        return False
    return age >= min_age_s and not in_use(folder)
