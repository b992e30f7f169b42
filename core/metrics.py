"""metrics.jsonl: one JSON record per logged step and per eval, appended as a run trains (torch-free).

Records are `{"type": "step", ...Step's fields}` and `{"type": "eval", ...Eval's fields}`. Standard
JSON has no NaN or Infinity, so a non-finite number (an inf grad_norm of a float16 step the gradient
scaler skips) is written as null.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

METRICS_FILE = "metrics.jsonl"
MAX_LINE = 2**16  # bytes: the longest line read as a record
log = logging.getLogger(__name__)


def write_record(file: TextIO, record: dict[str, Any]) -> None:
    """Append one record, flushed so a crash keeps it (non-finite numbers as null)."""
    record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    file.write(json.dumps(record) + "\n")
    file.flush()


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each record of a metrics file, read a line at a time with bounded
    memory. What is not a record is skipped with a warning naming the file and line: a line longer
    than MAX_LINE bytes (never ours: a record is a few hundred), bytes that are not UTF-8, a line that
    is not JSON (cut short by a crash: not worth a warning)."""
    with open(path, "rb") as file:
        for number, line in enumerate(iter(lambda: file.readline(MAX_LINE + 1), b""), start=1):
            if len(line) > MAX_LINE:
                while line and not line.endswith(b"\n"):  # skip the rest of it, MAX_LINE bytes at a time
                    line = file.readline(MAX_LINE)
                log.warning("%s line %d: longer than %d bytes, not a record: skipped", path, number, MAX_LINE)
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                log.warning("%s line %d: not UTF-8 text (byte %d): skipped", path, number, error.start)
                continue
            except ValueError:
                continue
            if isinstance(record, dict):
                yield number, record


def trim(run_dir: Path, start_iter: int, last_eval: int | None) -> None:
    """Drop the records of iterations a resumed run is about to redo: those from `start_iter` on (a failed
    session's, or a later checkpoint's), but for the eval at `last_eval`, the checkpoint's own. The file
    keeps its permissions; what is not a record (see `records`) is dropped too."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{METRICS_FILE}.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            for _, record in records(path):
                it = record.get("iter")
                if isinstance(it, int) and (it < start_iter or (record.get("type") == "eval" and it == last_eval)):
                    file.write(json.dumps(record) + "\n")
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # mkstemp's file is private; keep the original's mode
        os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
