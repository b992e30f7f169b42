"""Turn a text source into a dataset, streaming, with progress and cancellation.

Two passes over the source, each in chunks so memory stays bounded whatever the size:
1. read: check the text (no NUL bytes, valid UTF-8), count its characters and bytes and, for the char
   tokenizer, collect its vocabulary; (for a learned BPE, "learn": read the train split again and learn
   the BPE from it, data.learn_bpe; then "merge": the merges, counted in merges, not bytes)
2. encode: split at character int(n * (1 - val_fraction)) like nanoGPT (train first, val the rest),
   encode each part chunk by chunk and write it through a DatasetWriter.
BPE chunks are cut only where the tokenizer's pre-split regex is certain to split too, so the ids
equal those of encoding each part in one call. Chunks are encoded on every core (threads: tiktoken
releases the GIL) and written in order, so the files are byte-identical to those of `workers=1`, which
encodes on the calling thread.

Record files (JSON lines, Parquet, a Hugging Face dataset: data.records) are read as the text of their
documents, each followed by its separator; a BPE tokenizer encodes the separators `<|endoftext|>` as its
end-of-text token. So does a text file's `<|endoftext|>` with `special_tokens` (documents separated as
in TinyStories' .txt); without it a text file is plain text, as in nanoGPT's prepare scripts. For a
learned BPE the files of a folder are documents too: `<|endoftext|>` separates them (other tokenizers
join them with a newline). A separator counts as 13 characters of the text, as in a .txt holding it: the
same documents split at the same place whichever way they come.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.common import paths
from core.common.disk import disk_problem
from core.common.folder_lock import abandoned
from core.common.lazy import lazy
from core.dataset.format import DatasetError, DatasetInfo, DatasetWriter, check_name
from core.tokens.bpe import DEFAULT_PATTERN
from core.tokens.bpe_train import BpeCancelled
from core.tokens.tokenizers import ENDOFTEXT, CharTokenizer, Tokenizer, TokenizerError, get_tokenizer
from data.learn_bpe import BPE, DEFAULT_VOCAB, BpeRequest, learn_from, tokenizer_label
from data.records import DEFAULT_TEXT_FIELD, RecordsError, document_text, documents, encode_documents
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
    end's offline advice names too. `tokenizer` as in a dataset's name (data.learn_bpe.tokenizer_label)."""
    return default_name(Source(description="Tiny Shakespeare", name=SHAKESPEARE, files=[]), tokenizer)


def _texts(
    source: Source, chunk_size: int, stage: str, report: Throttle, cancel: threading.Event | None,
    eot: bool, files_are_documents: bool = False,
) -> Iterator[str]:
    """The source's text, in pieces, checked for binary data and bad UTF-8; a record file's documents
    each followed by its separator (data.records.document_text: `eot`, <|endoftext|>, else a newline).

    Text files are joined with a newline where one does not already end with it; with
    `files_are_documents`, <|endoftext|> stands between two files instead.
    """
    done, total = 0, source.size
    for index, file in enumerate(source.files):
        if file.kind != "text":
            for document, read in documents(file.path, file.kind, source.text_field, file.label):
                if cancel is not None and cancel.is_set():
                    raise PrepareCancelled("preparation cancelled")
                report(stage, done + read, total)
                yield document_text(document, eot)
            done += file.size
            continue
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
        if files_are_documents and index < len(source.files) - 1:
            yield ENDOFTEXT
        elif last and last != "\n" and index < len(source.files) - 1:
            yield "\n"
    report(stage, total, total)


class _SplitEncoder:
    """Encodes one split's text as it arrives, in chunks, into the writer.

    Chunks are encoded on a thread pool (tiktoken releases the GIL) and written in order; at most
    `MAX_IN_FLIGHT` chunks wait at a time, so memory stays bounded.
    """

    def __init__(
        self, tokenizer: Tokenizer, writer: DatasetWriter, split: str, chunk_chars: int, pool: Executor, special: bool,
    ) -> None:
        self.tokenizer = tokenizer
        # With `special`, <|endoftext|> in the text is the end-of-text token (data.records.encode_documents).
        self.encode: Callable[[str], np.ndarray] = (
            functools.partial(encode_documents, tokenizer) if special else tokenizer.encode_array
        )
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
            self.jobs.append(self.pool.submit(self.encode, text[:cut]))
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


class _Inline(Executor):
    """Runs each job at once on the calling thread: the single-core path (`workers=1`)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def _tokenizer(name: str) -> Tokenizer | None:
    """The BPE tokenizer called `name`, or None for char and bpe (made from the text itself)."""
    if name in ("char", BPE):
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
    text_field: str = DEFAULT_TEXT_FIELD,
    special_tokens: bool = False,
    workers: int | None = None,
    vocab_size: int | None = None,
    split_pattern: str = DEFAULT_PATTERN,
) -> DatasetInfo:
    """Make a dataset from `source` ("shakespeare", a file, a folder, "-" or "hf:NAME[:CONFIG]") and return
    its info. `text_field`: the documents' field in record files; `special_tokens`: a text file's
    <|endoftext|> is the end-of-text token (BPE only); `workers`: encoding threads (1: the calling thread;
    default: up to ENCODE_THREADS, one a core).

    `tokenizer` is "char", "bpe" (learned from the train split: `vocab_size` ids, default
    data.learn_bpe.DEFAULT_VOCAB, split by `split_pattern`) or a tiktoken name.

    Raises PrepareError for bad input and PrepareCancelled when `cancel` is set; either way nothing
    is left behind. `progress` gets Progress(stage, done, total, seconds) in bytes (in merges for "merge"),
    at most ~10 times a second.
    """
    if not 0 < val_fraction < 1:
        raise PrepareError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if block_size < 1:
        raise PrepareError(f"block_size must be at least 1, not {block_size}")
    if chunk_size < 1:
        raise PrepareError(f"chunk_size must be at least 1, not {chunk_size}")
    if workers is not None and workers < 1:
        raise PrepareError(f"workers must be at least 1, not {workers}")
    if not text_field:
        raise PrepareError("name the records' text field (--text-field), e.g. text")
    bpe = _tokenizer(tokenizer)
    learn = _bpe_request(tokenizer, vocab_size, split_pattern)
    if special_tokens and learn is None and (bpe is None or ENDOFTEXT not in bpe.special_tokens):
        raise PrepareError(f"special tokens: the {tokenizer} tokenizer has no {ENDOFTEXT}; they are for BPE tokenizers")
    remove_stale_staging()
    remove_stale_spools()
    try:
        with resolve_source(source, extensions, progress, cancel, text_field) as src:
            name = check_name(name or default_name(src, tokenizer_label(tokenizer, vocab_size)))
            if (paths.datasets_dir() / name).exists() and not overwrite:
                raise DatasetExists(f"dataset {name!r} already exists")
            eot = bpe is not None or learn is not None  # a BPE tokenizer: it has <|endoftext|>
            files_are_documents = learn is not None and len(src.files) > 1
            special = eot and (special_tokens or files_are_documents or any(f.kind != "text" for f in src.files))
            return _prepare(src, bpe, learn, name, val_fraction, block_size, overwrite, Throttle(progress), cancel,
                            chunk_size, special, files_are_documents, workers or ENCODE_THREADS)
    except (SourceCancelled, BpeCancelled):
        raise PrepareCancelled("preparation cancelled") from None
    except DownloadError as error:
        raise DownloadFailed(str(error), error.url) from None
    except (SourceError, RecordsError, DatasetError, TokenizerError) as error:
        raise PrepareError(str(error)) from None
    except OSError as error:  # a full or read-only disk is one line; anything else is a bug's traceback
        problem = disk_problem(error, f"write dataset {name!r}" if name else "write the dataset", paths.home())
        if problem is None:
            raise
        raise PrepareError(str(problem)) from None


def _bpe_request(tokenizer: str, vocab_size: int | None, split_pattern: str) -> BpeRequest | None:
    """What to learn for `tokenizer` "bpe" (None for the others, which take no vocabulary size)."""
    if tokenizer != BPE:
        if vocab_size is not None:
            raise PrepareError(f"a vocabulary size is for a learned BPE (--tokenizer {BPE}), not for {tokenizer}")
        return None
    try:
        return BpeRequest(vocab_size or DEFAULT_VOCAB, split_pattern)
    except TokenizerError as error:
        raise PrepareError(str(error)) from None


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
    learn: BpeRequest | None,
    name: str,
    val_fraction: float,
    block_size: int,
    overwrite: bool,
    report: Throttle,
    cancel: threading.Event | None,
    chunk_size: int,
    special: bool,
    files_are_documents: bool,
    workers: int,
) -> DatasetInfo:
    # Pass 1: check the text, count characters and bytes, find the character vocabulary.
    chars = text_bytes = 0
    eot = bpe is not None or learn is not None
    texts = functools.partial(_texts, src, chunk_size, report=report, cancel=cancel, eot=eot,
                              files_are_documents=files_are_documents)
    seen = np.zeros(UNICODE_LIMIT, dtype=bool) if not eot else None
    for text in texts(stage="read"):
        chars += len(text)
        text_bytes += len(text.encode("utf-8"))
        if seen is not None:
            seen[np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)] = True
    if chars == 0:
        raise PrepareError(f"empty text: {src.description} holds no characters")
    n_train = int(chars * (1 - val_fraction))
    if learn is not None:
        def merged(done: int, total: int) -> None:
            if report.callback is not None:
                report.callback(Progress("merge", done, total, unit="merges"))

        bpe = learn_from(texts(stage="learn"), n_train, learn, merged, cancel, documents=special)
    tokenizer = bpe or CharTokenizer([chr(c) for c in np.flatnonzero(seen)])

    # Pass 2: split by characters like nanoGPT, encode each part, write.
    # Leaving the pool waits for at most MAX_IN_FLIGHT chunks per split; then the writer cleans up.
    with (
        DatasetWriter(name, tokenizer, overwrite=overwrite) as writer,
        ThreadPoolExecutor(workers, thread_name_prefix="prepare-encode") if workers > 1 else _Inline() as pool,
    ):
        train = _SplitEncoder(tokenizer, writer, "train", chunk_size, pool, special)
        val = _SplitEncoder(tokenizer, writer, "val", chunk_size, pool, special)
        position = 0
        for text in texts(stage="encode"):
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
        return writer.commit(src.description, chars, val_fraction, text_bytes)
