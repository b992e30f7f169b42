"""Turn a text source into a dataset, streaming, with progress and cancellation.

Two passes over the source, each in chunks so memory stays bounded whatever the size:
1. read: check the text (no NUL bytes, valid UTF-8), count its characters and, for the char
   tokenizer, collect its vocabulary;
2. encode: split at character int(n * (1 - val_fraction)) like nanoGPT (train first, val the rest),
   encode each part chunk by chunk and write it through a DatasetWriter.
BPE chunks are cut only where the tokenizer's pre-split regex is certain to split too, so the ids
equal those of encoding each part in one call.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from core.common import paths
from core.common.disk import is_disk_full, no_space_message
from core.common.folder_lock import abandoned
from core.common.lazy import lazy
from core.dataset.format import DatasetError, DatasetInfo, DatasetWriter, check_name
from core.tokens.tokenizers import CharTokenizer, Tokenizer, TokenizerError, get_tokenizer
from data.sources import (
    DEFAULT_EXTENSIONS,
    READ_CHUNK,
    SHAKESPEARE,
    DownloadError,
    Progress,
    ProgressCallback,
    Source,
    SourceCancelled,
    SourceError,
    Throttle,
    remove_stale_spools,
    resolve_source,
)

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")  # imported on first use: the app's first paint does not wait for numpy

__all__ = ["PrepareCancelled", "PrepareError", "Progress", "default_name", "prepare"]

UNICODE_LIMIT = 0x110000
# Places where both GPT-2's and cl100k's pre-split regexes always start a new piece, whatever follows
# or precedes, so encoding the text on either side separately gives the same ids:
# before a space that follows a non-space, and after a newline between two non-spaces.
# (Python's \s is a superset of the regexes' \s, so Python's \S is the safe side.)
BPE_CUT = re.compile(r"(?<=\S)(?= )|(?<=\S\n)(?=\S)")
# A text with no such place in this many characters is cut anyway, to keep memory bounded.
MAX_PENDING_CHARS = 8 * READ_CHUNK
MAX_STEM = 80  # of a default dataset name: dataset names are at most 100 characters
ENCODE_THREADS = min(4, os.cpu_count() or 1)
MAX_IN_FLIGHT = 2 * ENCODE_THREADS


class PrepareError(ValueError):
    """The source cannot become a dataset; nothing was written."""


class DatasetExists(PrepareError):
    """A dataset of that name is already there: each front end offers its own way to replace it."""


class DownloadFailed(PrepareError):
    """Tiny Shakespeare could not be downloaded from `url`: each front end says how to go on offline."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class PrepareCancelled(Exception):
    """Preparation was cancelled; nothing was written."""


def default_name(source: Source, tokenizer: str) -> str:
    """"shakespeare-char", "mybook-gpt2": the source's name made folder-safe, plus the tokenizer.

    The name is cut to MAX_STEM characters, so that with the tokenizer it stays a valid dataset name.
    """
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "-", source.name)[:MAX_STEM].strip(".-+") or "text"
    return f"{stem}-{tokenizer}"


def shakespeare_name(tokenizer: str) -> str:
    """The name `prepare shakespeare` gives its dataset (README's commands train on it): what each front
    end's offline advice names too."""
    return default_name(Source(description="Tiny Shakespeare", name=SHAKESPEARE, files=[]), tokenizer)


def _texts(source: Source, chunk_size: int, stage: str, report: Throttle, cancel: threading.Event | None) -> Iterator[str]:
    """The source's text, in pieces, checked for binary data and bad UTF-8.

    Files are joined with a newline where one does not already end with it.
    """
    done, total = 0, source.size
    for index, file in enumerate(source.files):
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        last = ""
        for chunk in source.chunks(file, chunk_size):
            if cancel is not None and cancel.is_set():
                raise PrepareCancelled("preparation cancelled")
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise PrepareError(f"binary data in {file.label} at byte {offset + nul} (a NUL byte): not a text file")
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise PrepareError(f"not UTF-8 text: {file.label} at byte {offset - pending + error.start}") from None
            offset += len(chunk)
            done += len(chunk)
            report(stage, done, total)
            if text:
                last = text[-1]
                yield text
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise PrepareError(f"not UTF-8 text: {file.label} ends inside a character at byte {offset}") from None
        if last and last != "\n" and index < len(source.files) - 1:
            yield "\n"
    report(stage, total, total)


class _SplitEncoder:
    """Encodes one split's text as it arrives, in chunks, into the writer.

    Chunks are encoded on a thread pool (tiktoken releases the GIL) and written in order; at most
    `MAX_IN_FLIGHT` chunks wait at a time, so memory stays bounded.
    """

    def __init__(self, tokenizer: Tokenizer, writer: DatasetWriter, split: str, chunk_chars: int, pool: Executor) -> None:
        self.tokenizer = tokenizer
        self.writer = writer
        self.split = split
        self.chunk_chars = chunk_chars
        self.pool = pool
        self.exact_cuts = not isinstance(tokenizer, CharTokenizer)  # any cut is exact for characters
        self.pending: list[str] = []
        self.pending_chars = 0
        self.jobs: deque[Future[np.ndarray]] = deque()

    def feed(self, text: str) -> None:
        if not text:
            return
        self.pending.append(text)
        self.pending_chars += len(text)
        if self.pending_chars >= self.chunk_chars:
            self._encode(final=False)

    def finish(self) -> None:
        self._encode(final=True)
        while self.jobs:
            self.writer.append(self.split, self.jobs.popleft().result())

    def _encode(self, final: bool) -> None:
        text = "".join(self.pending)
        cut = len(text)
        if not final and self.exact_cuts:
            found = self._last_cut(text)
            if found is None and len(text) < MAX_PENDING_CHARS:
                self.pending = [text]
                return  # wait for more text to find a safe place
            cut = found or len(text)
        if cut:
            self.jobs.append(self.pool.submit(self.tokenizer.encode_array, text[:cut]))
            while len(self.jobs) > MAX_IN_FLIGHT:
                self.writer.append(self.split, self.jobs.popleft().result())
        rest = text[cut:]
        self.pending = [rest] if rest else []
        self.pending_chars = len(rest)

    @staticmethod
    def _last_cut(text: str) -> int | None:
        # Look near the end first, widening the window: a cut is nearly always in the last few lines.
        window = 4096
        while True:
            start = max(0, len(text) - window)
            cut = None
            for match in BPE_CUT.finditer(text, start):
                cut = match.start()
            if cut or start == 0:
                return cut
            window *= 16


def _tokenizer(name: str) -> Tokenizer | None:
    """The BPE tokenizer called `name`, or None for char (built from the text in pass 1)."""
    if name == "char":
        return None
    try:
        return get_tokenizer(name)
    except TokenizerError as error:
        raise PrepareError(str(error)) from None


def prepare(
    source: str,
    tokenizer: str = "char",
    name: str | None = None,
    val_fraction: float = 0.1,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    block_size: int = 64,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    chunk_size: int = READ_CHUNK,
) -> DatasetInfo:
    """Make a dataset from `source` ("shakespeare", a file, a folder or "-") and return its info.

    Raises PrepareError for bad input and PrepareCancelled when `cancel` is set; either way nothing
    is left behind. `progress` gets Progress(stage, done, total) in bytes, at most ~10 times a second.
    """
    if not 0 < val_fraction < 1:
        raise PrepareError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if block_size < 1:
        raise PrepareError(f"block_size must be at least 1, not {block_size}")
    if chunk_size < 1:
        raise PrepareError(f"chunk_size must be at least 1, not {chunk_size}")
    bpe = _tokenizer(tokenizer)
    remove_stale_staging()
    remove_stale_spools()
    try:
        with resolve_source(source, extensions, progress, cancel) as src:
            name = check_name(name or default_name(src, tokenizer))
            if (paths.datasets_dir() / name).exists() and not overwrite:
                raise DatasetExists(f"dataset {name!r} already exists")
            return _prepare(src, bpe, name, val_fraction, block_size, overwrite, Throttle(progress), cancel, chunk_size)
    except SourceCancelled:
        raise PrepareCancelled("preparation cancelled") from None
    except DownloadError as error:
        raise DownloadFailed(str(error), error.url) from None
    except (SourceError, DatasetError, TokenizerError) as error:
        raise PrepareError(str(error)) from None
    except OSError as error:
        if is_disk_full(error):
            what = f"write dataset {name!r}" if name else "write the dataset"
            raise PrepareError(no_space_message(what, paths.datasets_dir())) from None
        raise


def remove_stale_staging() -> list[Path]:
    """Delete what killed preparations left in the datasets folder: staging folders (`.NAME.*.tmp`) no
    live process holds, and a dataset moved aside for an overwrite (`.NAME.*.old`), put back if the
    new one never took its place. Only folders older than a minute: a new one may not be locked yet."""
    root = paths.datasets_dir()
    try:
        leftovers = [p for p in root.iterdir() if p.name.startswith(".") and p.suffix in (".tmp", ".old") and p.is_dir()]
    except OSError:
        return []
    removed = []
    for folder in leftovers:
        if not abandoned(folder):
            continue
        target = root / folder.name[1:].rsplit(".", 2)[0]
        if folder.suffix == ".old" and (folder / "data").is_dir() and not target.exists():
            os.replace(folder / "data", target)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _prepare(
    src: Source,
    bpe: Tokenizer | None,
    name: str,
    val_fraction: float,
    block_size: int,
    overwrite: bool,
    report: Throttle,
    cancel: threading.Event | None,
    chunk_size: int,
) -> DatasetInfo:
    # Pass 1: check the text, count characters, find the character vocabulary.
    chars = 0
    seen = np.zeros(UNICODE_LIMIT, dtype=bool) if bpe is None else None
    for text in _texts(src, chunk_size, "read", report, cancel):
        chars += len(text)
        if seen is not None:
            seen[np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)] = True
    if chars == 0:
        raise PrepareError(f"empty text: {src.description} holds no characters")
    tokenizer = bpe or CharTokenizer([chr(c) for c in np.flatnonzero(seen)])

    # Pass 2: split by characters like nanoGPT, encode each part, write.
    n_train = int(chars * (1 - val_fraction))
    # Leaving the pool waits for at most MAX_IN_FLIGHT chunks per split; then the writer cleans up.
    with (
        DatasetWriter(name, tokenizer, overwrite=overwrite) as writer,
        ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="prepare-encode") as pool,
    ):
        train = _SplitEncoder(tokenizer, writer, "train", chunk_size, pool)
        val = _SplitEncoder(tokenizer, writer, "val", chunk_size, pool)
        position = 0
        for text in _texts(src, chunk_size, "encode", report, cancel):
            head = text[: max(0, n_train - position)]
            train.feed(head)
            val.feed(text[len(head) :])
            position += len(text)
        train.finish()
        val.finish()
        for split, count in writer.tokens.items():
            if count <= block_size:
                raise PrepareError(
                    f"text too short: the {split} split has {count} tokens, it needs more than "
                    f"block_size={block_size}; use a longer text or a smaller block size"
                    + (", or a smaller val_fraction" if split == "train" else ", or a larger val_fraction")
                )
        return writer.commit(src.description, chars, val_fraction)
