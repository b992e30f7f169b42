"""Cached listings for the screens: datasets, checkpoint summaries, and what a checkpoint's tokenizer needs.

Each listing is keyed by the files' stat signatures (inode, size, mtime): a screen shown again with
nothing changed on disk gets the same listing back after a few `stat` calls, without reading a
dataset.json or loading a checkpoint (which imports torch). Only the entries whose files changed are
read again. Every function here may block on the disk: call them from thread workers, never from the
UI thread. The caches are process-wide and guarded by one lock, so any worker may call any function.

A listing comes back with its `signature`: a screen that remembers the signature it shows can skip
redrawing when a new listing has the same one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, TypeVar

from core.common import paths
from core.common.folder_lock import holder
from core.dataset.format import DatasetError, DatasetInfo, load_dataset
from core.runs.files import BEST, run_files
from core.tokens.tokenizers import TokenizerError

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary

T = TypeVar("T")
Signature = tuple[Hashable, ...]
DatasetItem = DatasetInfo | tuple[Path, str]  # as core.dataset.format.list_datasets gives them
DATASET_FILES = ("dataset.json", "train.bin", "val.bin", "meta.pkl", "token_counts.npy")

_lock = threading.Lock()
_cache: dict[Hashable, Any] = {}
_computing: dict[Hashable, threading.Lock] = {}  # a lock per key being computed
MAX_ENTRIES = 512  # a safety net: signatures of files long gone are dropped past this many
# How often a screen showing runs looks at their files again while it is shown (a run trained elsewhere
# saves, finishes, is renamed). A look is a few stats per run: the listing reads only what changed.
FOLLOW_S = 2.0


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a file, or None if it is missing. Atomic saves change the inode."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def dataset_signature(folder: Path) -> Signature:
    return (str(folder), file_signature(folder), *(file_signature(folder / name) for name in DATASET_FILES))


def memo(key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, computed once per `key`: a worker asking while another computes it waits for that
    result (screens list at the same time when the app starts), and other keys are not held up."""
    with _lock:
        if key in _cache:
            return _cache[key]
        key_lock = _computing.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            if key in _cache:
                return _cache[key]
        try:
            value = compute()
            with _lock:
                if len(_cache) >= MAX_ENTRIES:
                    _cache.clear()
                _cache[key] = value
        finally:  # a compute that raises (a bad file) leaves no lock behind
            with _lock:
                _computing.pop(key, None)
    return value


def clear() -> None:
    """Forget every cached entry (tests)."""
    with _lock:
        _cache.clear()


def short_reason(error: str, path: Path, width: int = 60) -> str:
    """A broken entry's error for its row: the first line, without the path the row names already, cut to `width`."""
    reason = error.splitlines()[0].replace(f"{path}{os.sep}", "").replace(str(path), "").strip()
    return reason if len(reason) <= width else reason[: width - 1] + "…"


def _read_dataset(folder: Path) -> DatasetItem:
    try:
        return load_dataset(folder)
    except (DatasetError, TokenizerError) as error:
        return (folder, str(error))


def datasets() -> tuple[Signature, list[DatasetItem]]:
    """Every dataset in the data dir, like `core.dataset.format.list_datasets`, and the listing's signature."""
    root = paths.datasets_dir()
    try:
        folders = sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:
        folders = []
    signatures = [dataset_signature(folder) for folder in folders]
    items = [memo(("dataset", sig), lambda f=folder: _read_dataset(f)) for folder, sig in zip(folders, signatures, strict=True)]
    return (str(root), *signatures), items


def _summary_signature(path: Path, kind: str) -> Signature:
    # A run without a checkpoint says who trains it: its holder is part of the signature, as a writer
    # killed by SIGKILL drops its lock without changing the lock file.
    return (str(path), kind, holder(path.parent) if kind == "none" else file_signature(path))


def _summary(path: Path, kind: str, signature: Signature) -> CheckpointSummary:
    """The summary of `path` (listed as `kind`), read once per `signature`."""

    def read() -> CheckpointSummary:
        from core.runs.listing import summarize, unsaved_run

        return unsaved_run(path.parent) if kind == "none" else summarize(path, kind)

    return memo(("checkpoint", signature), read)


def checkpoint_summary(path: Path) -> CheckpointSummary:
    """One checkpoint file's summary, its settings included, as `checkpoints` lists it: read again only
    when the file changed since (the Compare screen reads the marked runs' settings here)."""
    kind = "best" if path.name == BEST else "latest"
    return _summary(path, kind, _summary_signature(path, kind))


def checkpoint_files(opened: list[Path] | tuple[Path, ...] = ()) -> list[tuple[Path, str]]:
    """(file, kind) of every run's latest and best checkpoints (kind "none" for a started run without one), then
    of the `opened` files still there. Temporary files killed writers left in run folders are removed."""
    return run_files() + [(path, "best" if path.name == BEST else "latest") for path in opened if path.is_file()]


def checkpoints(opened: list[Path] | tuple[Path, ...] = ()) -> tuple[Signature, list[CheckpointSummary]]:
    """Every run's checkpoint summaries, newest first (as `core.runs.listing.list_checkpoints`), then the
    `opened` files' summaries; and the listing's signature. Only new or changed files are read."""
    from datetime import datetime

    files = checkpoint_files(opened)
    signatures = [_summary_signature(path, kind) for path, kind in files]
    summaries = [_summary(path, kind, sig) for (path, kind), sig in zip(files, signatures, strict=True)]
    opened_set = {str(path) for path in opened}
    runs = [s for s in summaries if str(s.path) not in opened_set]
    extra = [s for s in summaries if str(s.path) in opened_set]
    runs.sort(key=lambda s: s.modified or datetime.min, reverse=True)
    return (str(paths.runs_dir()), *signatures), runs + extra


def checkpoint_tokenizer(path: Path) -> tuple[dict[str, Any], str]:
    """A checkpoint's tokenizer spec and its dataset's name, read once per version of the file.

    Raises `core.runs.checkpoint.CheckpointError` when the file cannot be read.
    """

    def read() -> tuple[dict[str, Any], str]:
        from core.runs.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, mmap=True)
        return ckpt["tokenizer"], str(ckpt["dataset"].get("name", ""))

    return memo(("checkpoint-tokenizer", str(path), file_signature(path)), read)


def dataset_folder(name: str) -> Path | None:
    """The folder of dataset `name` in the data dir; None when `name` (read from a checkpoint, say) is no plain name."""
    try:
        return paths.dataset_dir(name)
    except paths.BadName:
        return None


def signature_of_dataset(name: str) -> Signature:
    """The signature of the dataset `name` in the data dir (its files' stats): it changes when it is prepared again."""
    folder = dataset_folder(name)
    return dataset_signature(folder) if folder is not None else (name,)


def cached_by_files(kind: str, files: Signature, compute: Callable[[], T]) -> T:
    """`compute()` once per `kind` and file signature `files` (e.g. a tokenizer built from a dataset)."""
    return memo((kind, files), compute)

