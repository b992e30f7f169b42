"""Where text comes from: Tiny Shakespeare (downloaded once), a file, a folder of files, stdin, or a
Hugging Face dataset (`hf:NAME[:CONFIG]`).

`resolve_source` turns the user's source string into a `Source`: a list of files to read, each a text
file or a record file (JSON lines, Parquet: data.records, whose `text_field` holds the documents),
their total size (for progress) and a description for dataset.json. stdin and a Hugging Face dataset
are spooled into a temporary file first, so they can be read twice. Reading and validating the text
is `data.prepare`'s job.
"""

from __future__ import annotations

import http.client
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

from core.common import paths
from core.common.disk import disk_problem, write_atomic
from core.common.folder_lock import FolderLock, abandoned
from data.records import DEFAULT_TEXT_FIELD, HF_PREFIX, RECORD_SUFFIXES, RecordsCancelled, parse_hf, record_kind, spool_hf

SHAKESPEARE = "shakespeare"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
# The download's name in the cache, and the offline way to the dataset `prepare shakespeare` makes: a
# file of this name is named like the download (shakespeare-char, ...), the name README's commands use.
SHAKESPEARE_FILE = "tinyshakespeare.txt"
STDIN = "-"
DEFAULT_EXTENSIONS = (".txt", ".md", *RECORD_SUFFIXES)
DOWNLOAD_TIMEOUT_S = 15
READ_CHUNK = 2**20
SPOOL_PREFIX = "nanogpt-tui-stdin-"  # a folder in the system's temp dir, locked while its preparation runs
# (the name is kept from when stdin was the only thing spooled: older versions' leftovers are still found)


class SourceError(ValueError):
    """A source that cannot be read: missing, unreadable, empty folder, no network."""


class DownloadError(SourceError):
    """Tiny Shakespeare could not be downloaded; each front end says how to go on offline."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class SourceCancelled(Exception):
    """The work was cancelled through its `cancel` event."""


@dataclass
class Progress:
    """How far a stage has got, in bytes (or in another `unit`: a learned BPE's "merge" stage counts merges;
    `total` 0: not known), and for how long it has run."""

    stage: str
    done: int
    total: int
    seconds: float = 0.0  # since the stage began
    unit: str = "bytes"

    @property
    def rate(self) -> float:
        """Units a second so far (0 before the stage has run measurably)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None when that cannot be told (no total, no rate yet)."""
        return (self.total - self.done) / self.rate if self.total and self.rate else None


ProgressCallback = Callable[[Progress], None]


class Throttle:
    """Passes progress on at most every `interval` seconds, and always the start and end of a stage."""

    def __init__(self, callback: ProgressCallback | None, interval: float = 0.1) -> None:
        self.callback = callback
        self.interval = interval
        self._last = 0.0
        self._stage = ""
        self._began = 0.0  # when the current stage began

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if stage != self._stage:
            self._began = now
        if stage != self._stage or (total and done >= total) or now - self._last >= self.interval:
            self._last, self._stage = now, stage
            self.callback(Progress(stage, done, total, now - self._began))


@dataclass
class SourceFile:
    path: Path
    label: str  # how errors name it ("stdin" for a spooled pipe)
    size: int
    kind: str = "text"  # or a record file's (data.records.record_kind): "jsonl", "parquet"


@dataclass
class Source:
    """Files to read in order, as one text."""

    description: str
    name: str  # basis of the default dataset name
    files: list[SourceFile]
    text_field: str = DEFAULT_TEXT_FIELD  # of the record files
    _cleanup: list[Path] = field(default_factory=list, repr=False)  # temporary folders
    _locks: list[FolderLock] = field(default_factory=list, repr=False)  # theirs, held until close

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def chunks(self, file: SourceFile, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        """The bytes of one file, in chunks; read errors become SourceError naming the file."""
        try:
            with open(file.path, "rb") as f:
                while chunk := f.read(chunk_size):
                    yield chunk
        except OSError as error:
            raise SourceError(f"cannot read {file.label}: {error.strerror or error}") from None

    def close(self) -> None:
        """Remove temporary folders (a spooled stdin)."""
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)
        self._cleanup.clear()
        for lock in self._locks:
            lock.release()
        self._locks.clear()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise SourceCancelled("cancelled")


def download(
    url: str,
    dest: Path,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Fetch `url` into `dest` atomically (core.common.disk.write_atomic: nothing half-downloaded is left).
    SourceError for a full or read-only disk, DownloadError for the network."""
    import urllib.error  # here, not at the top: urllib costs the app's first paint 15 ms
    import urllib.request

    report = Throttle(progress)

    def fetch(out: IO[bytes]) -> None:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(64 * 1024):
                _check_cancel(cancel)
                out.write(chunk)
                done += len(chunk)
                report("download", done, max(total, done + 1))
            # A dropped connection just ends the reads (no exception): only the length tells.
            if total and done != total:
                raise DownloadError(
                    f"the download of Tiny Shakespeare from {url} stopped after {done:,} of {total:,} bytes; try again", url
                )
            report("download", done, done)

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(dest, fetch, what="save the download")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        problem = disk_problem(error, "save the download", dest.parent)  # a full or read-only disk, not the network
        if problem is not None:
            raise SourceError(str(problem)) from None
        reason = error.reason if isinstance(error, urllib.error.URLError) else f"{type(error).__name__}: {error}"
        raise DownloadError(f"cannot download Tiny Shakespeare from {url} ({reason}); no network?", url) from None
    return dest


def shakespeare_file(progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> Path:
    """Tiny Shakespeare in the user cache, downloaded on first use."""
    dest = paths.cache_dir() / SHAKESPEARE_FILE
    if not dest.is_file():
        download(SHAKESPEARE_URL, dest, progress, cancel)
    return dest


def file_source_name(path: Path) -> str:
    """The name a file gives its dataset (before the tokenizer): its stem (a.jsonl.gz: a), but "shakespeare"
    for a saved copy of Tiny Shakespeare, so offline the dataset gets the name `prepare shakespeare` gives."""
    if path.name.lower() == SHAKESPEARE_FILE:
        return SHAKESPEARE
    return path.name[: -len(".jsonl.gz")] if path.name.lower().endswith(".jsonl.gz") else path.stem


def _normalise_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def _source_file(path: Path, label: str | None = None) -> SourceFile:
    label = label or str(path)
    try:
        with open(path, "rb"):
            pass
        return SourceFile(path, label, path.stat().st_size, record_kind(path) or "text")
    except OSError as error:
        raise SourceError(f"cannot read {label}: {error.strerror or error}") from None


def _folder_files(folder: Path, extensions: tuple[str, ...]) -> list[SourceFile]:
    found = sorted(
        p for p in folder.rglob("*") if p.name.lower().endswith(extensions) and p.is_file()  # (.jsonl.gz: 2 dots)
    )
    if not found:
        listed = f"{', '.join(extensions[:-1])} or {extensions[-1]}" if len(extensions) > 1 else extensions[0]
        raise SourceError(f"no {listed} files in {folder}")
    return [_source_file(p) for p in found]


def _spool(filename: str, write: Callable[[BinaryIO], object]) -> tuple[Path, FolderLock]:
    """A file `write` fills, in a temporary folder, so it can be read twice; the folder's lock, held
    until the source is closed, tells `remove_stale_spools` in other processes that it is ours."""
    folder = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX))
    lock = FolderLock(folder)
    try:
        lock.acquire()
        with open(folder / filename, "wb") as out:
            write(out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        lock.release()
        raise
    return folder, lock


def _copy_stdin(out: BinaryIO, cancel: threading.Event | None) -> None:
    while chunk := sys.stdin.buffer.read(READ_CHUNK):
        _check_cancel(cancel)
        out.write(chunk)


def _hf_source(spec: str, text_field: str, progress: ProgressCallback | None, cancel: threading.Event | None) -> Source:
    """A Hugging Face dataset, streamed into a JSON-lines spool (data.records.spool_hf)."""
    name, config = parse_hf(spec)
    report = Throttle(progress)
    try:
        folder, lock = _spool("hf.jsonl", lambda out: spool_hf(spec, text_field, out, lambda done: report("download", done, 0), cancel))
    except RecordsCancelled:
        raise SourceCancelled("cancelled") from None
    where = f"{HF_PREFIX}{name}" + (f":{config}" if config else "")
    return Source(f"{where} (train split, field {text_field!r})", name.rsplit("/", 1)[-1],
                  [_source_file(folder / "hf.jsonl", where)], DEFAULT_TEXT_FIELD, [folder], [lock])


def remove_stale_spools() -> list[Path]:
    """Delete the stdin spools of preparations that were killed (no live process holds their lock)."""
    root = Path(tempfile.gettempdir())
    try:
        stale = [p for p in root.iterdir() if p.name.startswith(SPOOL_PREFIX) and p.is_dir() and abandoned(p)]
    except OSError:
        return []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def resolve_source(
    spec: str,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    text_field: str = DEFAULT_TEXT_FIELD,
) -> Source:
    """Turn "shakespeare", a file path, a folder path, "-" (stdin) or "hf:NAME[:CONFIG]" into a Source;
    `text_field` names the documents' field in record files (data.records)."""
    if spec == SHAKESPEARE:
        path = shakespeare_file(progress, cancel)
        return Source(f"shakespeare ({SHAKESPEARE_URL})", SHAKESPEARE, [_source_file(path)])
    if spec == STDIN:
        folder, lock = _spool("stdin.txt", lambda out: _copy_stdin(out, cancel))
        return Source("stdin", "stdin", [_source_file(folder / "stdin.txt", "stdin")], DEFAULT_TEXT_FIELD, [folder], [lock])
    if spec.startswith(HF_PREFIX):
        return _hf_source(spec, text_field, progress, cancel)
    path = Path(spec).expanduser()
    field_note = f", field {text_field!r}" if text_field != DEFAULT_TEXT_FIELD else ""
    if path.is_dir():
        extensions = _normalise_extensions(extensions)
        files = _folder_files(path, extensions)
        return Source(f"folder {path.resolve()} ({len(files)} files{field_note})", path.resolve().name, files, text_field)
    if path.is_file():
        file = _source_file(path)
        return Source(str(path.resolve()) + (field_note if file.kind != "text" else ""), file_source_name(path), [file],
                      text_field)
    if path.exists():
        raise SourceError(f"{path} is neither a file nor a folder")
    raise SourceError(f"no such file or folder: {path} (sources are 'shakespeare', a file, a folder, '-' for stdin "
                      f"or {HF_PREFIX}NAME for a Hugging Face dataset)")

