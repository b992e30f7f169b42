"""metrics.jsonl: one JSON record per logged step, eval and other event, appended as a run trains (torch-free).

Each record is one of core.runs.events' events: `{"type": "step", ...Step's fields}`, likewise "eval",
"sample", "checkpoint" (its `path` is the file's name in the run folder), "paused", "resumed", "finished"
and "failed" (without its traceback); core.runs.control adds "session" and "ack". So the file alone tells a
watcher in another process (core.runs.watch) everything the trainer reported. Standard JSON has no NaN or
Infinity, so a non-finite number (an inf grad_norm of a float16 step the gradient scaler skips) is
written as null, and read back as NaN.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from core.runs.events import CheckpointSaved, Eval, Event, Failed, Finished, Paused, Sample, Step, Unpaused

METRICS_FILE = "metrics.jsonl"
# The events a trainer records, by record type.
EVENT_TYPES: dict[str, type] = {
    "step": Step, "eval": Eval, "sample": Sample, "checkpoint": CheckpointSaved, "paused": Paused,
    "resumed": Unpaused, "finished": Finished, "failed": Failed,
}
RECORD_TYPES = {cls: name for name, cls in EVENT_TYPES.items()}
FIELD_KINDS: dict[str, Any] = {"int": int, "float": (int, float), "str": str, "Path": str}
MAX_LINE = 2**16  # bytes: the longest line read as a record
log = logging.getLogger(__name__)


def write_record(file: TextIO, record: dict[str, Any]) -> None:
    """Append one record, flushed so a crash keeps it (non-finite numbers as null)."""
    record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    file.write(json.dumps(record) + "\n")
    file.flush()


def record_event(file: TextIO, event: Event) -> None:
    """Append the record of `event`, if it is one of EVENT_TYPES."""
    kind = RECORD_TYPES.get(type(event))
    if kind is None:
        return
    fields = dataclasses.asdict(event)
    if isinstance(event, CheckpointSaved):
        fields["path"] = event.path.name  # a watcher on another machine sees the folder elsewhere
    fields.pop("details", None)  # a failure's traceback is for the trainer's own log
    write_record(file, {"type": kind, **fields})


def event_from_record(record: dict[str, Any], run_dir: Path) -> Event | None:
    """The event a record stands for (None for other records, or a malformed one); paths are in `run_dir`."""
    cls = EVENT_TYPES.get(record.get("type"))  # type: ignore[arg-type]
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in record:
            if f.default is dataclasses.MISSING:
                return None
            continue
        value = record[f.name]
        if value is None and f.type == "float":
            value = math.nan  # written as null: it was not finite
        expected = FIELD_KINDS.get(str(f.type))
        if expected is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            return None  # not written by a trainer: better no event than a wrong one
        values[f.name] = value
    if cls is CheckpointSaved:
        values["path"] = run_dir / Path(str(values["path"])).name
    return cls(**values)


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


def read_curves(run_dir: Path) -> dict[str, list[list[float]]] | None:
    """A run's curves from its metrics.jsonl, or None when it has none: `{"steps": [[iter, loss, tokens,
    seconds, lr], ...], "evals": [[iter, train_loss, val_loss], ...]}` (a checkpoint history's layout, plus
    the lr), and `"bpb": [[iter, train_bpb, val_bpb], ...]` for the evals that measured bits per byte.
    What `records` skips, and records missing a field, are skipped; null reads as NaN."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    steps: list[list[float]] = []
    evals: list[list[float]] = []
    bpb: list[list[float]] = []

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    for _, record in records(path):
        try:
            if record["type"] == "step":
                steps.append([int(record["iter"]), number(record["loss"]), int(record["tokens_seen"]),
                              number(record["elapsed_s"]), number(record["lr"])])
            elif record["type"] == "eval":
                evals.append([int(record["iter"]), number(record["train_loss"]), number(record["val_loss"])])
                if "val_bpb" in record:
                    bpb.append([int(record["iter"]), number(record.get("train_bpb")), number(record["val_bpb"])])
        except (ValueError, TypeError, KeyError):
            continue  # a record missing a field, or not one of ours
    return {"steps": steps, "evals": evals, "bpb": bpb}
