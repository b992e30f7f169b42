"""Documents from record files: JSON lines (.jsonl, .jsonl.gz), Parquet (.parquet) and Hugging Face datasets.

Each record's text field (`text` unless told otherwise) is one document. In the text that preparation
reads, every document is followed by a separator (`document_text`): `<|endoftext|>` for a BPE tokenizer,
encoded as its end-of-text token (as nanoGPT's OpenWebText prepare does: encode_ordinary(doc) + [eot]),
and for the char tokenizer a newline where the document does not end with one. `encode_documents` encodes
such text: each `<|endoftext|>` as the special token, everything between as plain text (so a document's
own `<|endoftext|>`, rare in real corpora, counts as a separator too).

A Hugging Face dataset (`hf:NAME[:CONFIG]`, its train split) is streamed once into a local JSON-lines
spool (`spool_hf`), which preparation then reads like any JSON-lines file (twice: see data.prepare).

pyarrow and datasets are optional extras, imported only when a Parquet file or an hf: source is used.
Memory stays bounded: JSON lines are read a line at a time (at most MAX_RECORD_BYTES), Parquet a batch of
rows at a time.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from core.common.lazy import lazy
from core.tokens.tokenizers import ENDOFTEXT, Tokenizer

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
PARQUET_SUFFIX = ".parquet"
RECORD_SUFFIXES = (*JSONL_SUFFIXES, PARQUET_SUFFIX)
HF_PREFIX = "hf:"
DEFAULT_TEXT_FIELD = "text"
MAX_RECORD_BYTES = 64 * 2**20  # one JSON line: a long book is a few MB
PARQUET_BATCH_ROWS = 1024
HF_SPLIT = "train"
EXTRAS = {"pyarrow": "parquet", "datasets": "hf"}  # the optional extra (pyproject.toml) that installs each


class RecordsError(ValueError):
    """Records that cannot be read: not JSON or Parquet, no such text field, a library missing, no network."""


class RecordsCancelled(Exception):
    """The work was cancelled through its `cancel` event."""


def record_kind(path: Path) -> str | None:
    """"jsonl" or "parquet" for a record file (by its name), None for anything else (text)."""
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIX):
        return "parquet"
    return None


def _missing(package: str, what: str) -> RecordsError:
    return RecordsError(f"{what} needs the {package} package: pip install {package} "
                        f"(or pip install 'nanogpt-tui[{EXTRAS[package]}]')")


def documents(path: Path, kind: str, text_field: str, label: str) -> Iterator[tuple[str, int]]:
    """(document, bytes of the file read so far) for each record of a "jsonl" or "parquet" file."""
    if kind == "jsonl":
        return _jsonl_documents(path, text_field, label)
    if kind == "parquet":
        return _parquet_documents(path, text_field, label)
    raise ValueError(f"not a record kind: {kind!r}")


def _field(record: Any, text_field: str, where: str) -> str:
    """The record's text: RecordsError saying what is wrong when it has none."""
    if not isinstance(record, dict):
        raise RecordsError(f"{where}: a {type(record).__name__}, not a record (a JSON object)")
    if text_field not in record:
        fields = ", ".join(list(record)[:12]) or "none"
        raise RecordsError(f"{where}: no field {text_field!r} (its fields: {fields}); choose one with --text-field")
    value = record[text_field]
    if not isinstance(value, str):
        raise RecordsError(f"{where}: its {text_field!r} is {'null' if value is None else 'a ' + type(value).__name__}, "
                           "not a string")
    return value


def _jsonl_documents(path: Path, text_field: str, label: str) -> Iterator[tuple[str, int]]:
    try:
        raw = open(path, "rb")
    except OSError as error:
        raise RecordsError(f"cannot read {label}: {error.strerror or error}") from None
    with raw:
        # For .gz the progress is the compressed bytes read, as the file's size is.
        lines: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.lower().endswith(".gz") else raw
        number, done = 0, 0
        try:
            while line := lines.readline(MAX_RECORD_BYTES + 1):
                number += 1
                done = raw.tell() if lines is not raw else done + len(line)
                if len(line) > MAX_RECORD_BYTES:
                    raise RecordsError(f"{label} line {number}: longer than {MAX_RECORD_BYTES // 2**20} MB; "
                                       "not a record of JSON lines")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except RecursionError:
                    raise RecordsError(f"{label} line {number}: JSON nested too deeply") from None
                except ValueError as error:  # bad JSON, or not UTF-8
                    raise RecordsError(f"{label} line {number}: not JSON ({error})") from None
                yield _field(record, text_field, f"{label} line {number}"), done
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise RecordsError(f"cannot read {label}: {error}") from None


def _parquet_documents(path: Path, text_field: str, label: str) -> Iterator[tuple[str, int]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise _missing("pyarrow", f"reading {label} (Parquet)") from None
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise RecordsError(f"{label} is not a readable Parquet file: {error}") from None
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        fields = ", ".join(schema.names[:12]) or "none"
        raise RecordsError(f"{label}: no column {text_field!r} (its columns: {fields}); choose one with --text-field")
    kind = schema.field(text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise RecordsError(f"{label}: its column {text_field!r} holds {kind}, not strings")
    rows, size = max(parquet.metadata.num_rows, 1), path.stat().st_size
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[text_field]):
            for value in batch.column(0).to_pylist():
                row += 1
                if value is None:
                    raise RecordsError(f"{label} row {row}: its {text_field!r} is null, not a string")
                yield value, size * row // rows
    except (OSError, pa.ArrowException) as error:
        raise RecordsError(f"cannot read {label}: {error}") from None


def document_text(document: str, eot: bool) -> str:
    """A document as it goes into the text to encode: followed by its separator (see the module docstring):
    `eot` for a BPE tokenizer (it has <|endoftext|>), else the char tokenizer's newline."""
    if eot:
        return document + ENDOFTEXT
    return document if document.endswith("\n") else document + "\n"


def encode_documents(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """The ids of `text` with each `<|endoftext|>` as the end-of-text token, the rest as plain text: what
    tiktoken's encode(text, allowed_special={"<|endoftext|>"}) gives."""
    eot = np.array([tokenizer.special_tokens[ENDOFTEXT]], dtype=tokenizer.dtype)
    arrays = []
    for index, part in enumerate(text.split(ENDOFTEXT)):
        if index:
            arrays.append(eot)
        if part:
            arrays.append(tokenizer.encode_array(part))
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=tokenizer.dtype)


def parse_hf(spec: str) -> tuple[str, str | None]:
    """"hf:NAME[:CONFIG]" -> (NAME, CONFIG or None)."""
    name, _, config = spec.removeprefix(HF_PREFIX).partition(":")
    if not name.strip():
        raise RecordsError(f"{spec!r}: name a Hugging Face dataset, e.g. hf:roneneldan/TinyStories or hf:NAME:CONFIG")
    return name.strip(), config.strip() or None


def spool_hf(
    spec: str,
    text_field: str,
    out: BinaryIO,
    report: Callable[[int], None],
    cancel: threading.Event | None = None,
) -> int:
    """Stream the train split of the Hugging Face dataset `spec` names into `out` as JSON lines of
    {"text": ...}; `report` gets the bytes written so far. The number of documents."""
    name, config = parse_hf(spec)
    try:
        import datasets
    except ImportError:
        raise _missing("datasets", f"streaming {spec}") from None
    where = f"hf:{name}" + (f":{config}" if config else "")

    def hub_error(error: Exception) -> RecordsError:  # the hub's errors come in many classes
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return RecordsError(f"cannot stream {where} from the Hugging Face Hub ({type(error).__name__}: {first}); "
                            "no network, or no such dataset or config?")

    count, written = 0, 0
    try:
        records = iter(datasets.load_dataset(name, config, split=HF_SPLIT, streaming=True))
    except Exception as error:
        raise hub_error(error) from None
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except Exception as error:  # (a dropped connection too: an OSError, unlike a failed write below)
            raise hub_error(error) from None
        if cancel is not None and cancel.is_set():
            raise RecordsCancelled("cancelled")
        count += 1
        line = (json.dumps({DEFAULT_TEXT_FIELD: _field(record, text_field, f"{where} record {count}")}) + "\n").encode()
        out.write(line)
        written += len(line)
        report(written)
    if count == 0:
        raise RecordsError(f"{where} has no records in its {HF_SPLIT} split")
    return count
