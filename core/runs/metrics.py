"""metrics.jsonl: one JSON record per logged step, eval and other event, appended as a run trains (torch-free).

Each record is one of core.runs.events' events: `{"type": "step", ...Step's fields}`, likewise "eval",
"sample", "checkpoint" (its `path` is the file's name in the run folder), "paused", "resumed", "device" (a
DeviceReading, at most every DEVICE_RECORD_S), "finished" and "failed" (without its traceback);
core.runs.control adds "session" and "ack". So the file alone tells a watcher in another process
(core.runs.watch) everything the trainer reported. Standard JSON has no NaN or
Infinity, so a non-finite number (an inf grad_norm of a float16 step the gradient scaler skips) is
written as null, and read back as NaN.

The file is input from anyone who can write the run folder: every reader (resume's `trim`, `read_curves`,
the Watch screen's core.runs.watch) opens it through core.common.safe_files (never a link, a FIFO or a
device) and takes each line through `parse_record`: a line longer than MAX_LINE, not UTF-8, not JSON,
nested deeper than safe_files.MAX_DEPTH, or not an object is skipped, counted (`Skipped`), and named in
one warning; it never stops a resume or a watch.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from core.common.disk import DEFAULT_MODE, write_atomic
from core.common.safe_files import BadJSON, UnsafeFile, json_kind, open_regular, parse_json
from core.runs.events import (
    CheckpointSaved, DeviceReading, Eval, Event, Failed, Finished, Paused, Sample, Step, Unpaused,
)

METRICS_FILE = "metrics.jsonl"
# The events a trainer records, by record type.
EVENT_TYPES: dict[str, type] = {
    "step": Step, "eval": Eval, "sample": Sample, "checkpoint": CheckpointSaved, "paused": Paused,
    "resumed": Unpaused, "device": DeviceReading, "finished": Finished, "failed": Failed,
}
RECORD_TYPES = {cls: name for name, cls in EVENT_TYPES.items()}
FIELD_KINDS: dict[str, Any] = {"int": int, "float": (int, float), "str": str, "Path": str,
                               "int | None": (int, type(None)), "float | None": (int, float, type(None))}
DEVICE_RECORD_S = 10.0  # a trainer records its device readings this often at most (the UI gets them each second)
MAX_LINE = 2**16  # bytes: the longest line read as a record
log = logging.getLogger(__name__)


def open_log(run_dir: Path) -> TextIO:
    """The run's metrics.jsonl open to append records (created, 0644 less the umask, if missing), never
    through a link or into a FIFO (core.common.safe_files.open_regular)."""
    return io.TextIOWrapper(open_regular(run_dir / METRICS_FILE, append=True, create=True), encoding="utf-8")


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


@dataclass
class Skipped:
    """The lines of a metrics file that were not records: how many, and the first one's number and reason."""

    lines: int = 0
    first: tuple[int, str] | None = None

    def add(self, number: int, reason: str) -> None:
        self.lines += 1
        if self.first is None:
            self.first = (number, reason)

    def __str__(self) -> str:
        """"line 67: holds JSON nested too deeply (...): skipped, and 2 more lines that are not records"."""
        if self.first is None:
            return "no line skipped"
        number, reason = self.first
        more = self.lines - 1
        rest = "" if not more else (", and 1 more line that is not a record" if more == 1 else
                                    f", and {more} more lines that are not records")
        return f"line {number}: {reason}: skipped{rest}"


def parse_record(line: bytes) -> dict[str, Any] | str:
    """One line of a metrics file (its newline included or not): the record, or why it is not one. The
    same rule everywhere (resume's trim, the Watch screen, curves, listings): a line longer than
    MAX_LINE bytes (a record is a few hundred), not UTF-8, not JSON, nested deeper than
    core.common.safe_files.MAX_DEPTH, or JSON that is not an object."""
    if len(line) > MAX_LINE:
        return f"longer than {MAX_LINE} bytes, not a record"
    try:
        record = parse_json(line)
    except BadJSON as error:
        return str(error).removeprefix("is ")
    return record if isinstance(record, dict) else f"{json_kind(record)}, not a record"


def records(path: Path, skipped: Skipped | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each record of a metrics file, read a line at a time with bounded
    memory. What is not a record (see `parse_record`) is skipped and counted in `skipped`, and one
    warning names the file and the first such line. UnsafeFile (an OSError) if the file is a link, a
    FIFO or anything but a regular file (core.common.safe_files.open_regular)."""
    with open_regular(path) as file:
        yield from _records(file, path, skipped if skipped is not None else Skipped())


def _records(file: IO[bytes], path: Path, skipped: Skipped) -> Iterator[tuple[int, dict[str, Any]]]:
    before = skipped.lines
    for number, line in enumerate(iter(lambda: file.readline(MAX_LINE + 1), b""), start=1):
        if len(line) > MAX_LINE:
            while line and not line.endswith(b"\n"):  # skip the rest of it, MAX_LINE bytes at a time
                line = file.readline(MAX_LINE)
            skipped.add(number, f"longer than {MAX_LINE} bytes, not a record")
            continue
        if not line.strip():
            continue
        record = parse_record(line)
        if isinstance(record, str):
            skipped.add(number, record)
            continue
        yield number, record
    if skipped.lines > before:
        log.warning("%s %s", path, skipped)


def trim(run_dir: Path, start_iter: int, last_eval: int | None) -> Skipped:
    """Drop the records of iterations a resumed run is about to redo: those from `start_iter` on (a failed
    session's, or a later checkpoint's), but for the eval at `last_eval`, the checkpoint's own. The file
    is rewritten atomically (core.common.disk.write_atomic) and keeps its permissions; what is not a
    record (see `records`) is dropped, and counted in the result. A metrics.jsonl that is not a regular
    file (a link, a FIFO) is replaced by an empty one, with a warning: nothing is read or written through it."""
    path = run_dir / METRICS_FILE
    skipped = Skipped()
    try:
        source = open_regular(path)
    except FileNotFoundError:
        return skipped
    except UnsafeFile as error:
        log.warning("%s; replacing it with an empty %s", error, METRICS_FILE)
        write_atomic(path, lambda file: None, mode=DEFAULT_MODE, what=f"replace {METRICS_FILE}")
        return skipped

    def write(file: IO[bytes]) -> None:
        for _, record in _records(source, path, skipped):
            it = record.get("iter")
            if isinstance(it, int) and (it < start_iter or (record.get("type") == "eval" and it == last_eval)):
                file.write((json.dumps(record) + "\n").encode("utf-8"))

    with source:
        write_atomic(path, write, what=f"rewrite {METRICS_FILE}")
    return skipped


def read_curves(run_dir: Path, skipped: Skipped | None = None) -> dict[str, list[list[float]]] | None:
    """A run's curves from its metrics.jsonl, or None when it has none (or it is not a regular file):
    `{"steps": [[iter, loss, tokens, seconds, lr], ...], "evals": [[iter, train_loss, val_loss], ...]}` (a
    checkpoint history's layout, plus the lr), and `"bpb": [[iter, train_bpb, val_bpb], ...]` for the evals
    that measured bits per byte. What `records` skips is counted in `skipped`; records missing a field or
    holding a value out of range are left out; null reads as NaN."""
    path = run_dir / METRICS_FILE
    steps: list[list[float]] = []
    evals: list[list[float]] = []
    bpb: list[list[float]] = []

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    try:
        for _, record in records(path, skipped):
            try:
                if record["type"] == "step":
                    steps.append([int(record["iter"]), number(record["loss"]), int(record["tokens_seen"]),
                                  number(record["elapsed_s"]), number(record["lr"])])
                elif record["type"] == "eval":
                    evals.append([int(record["iter"]), number(record["train_loss"]), number(record["val_loss"])])
                    if "val_bpb" in record:
                        bpb.append([int(record["iter"]), number(record.get("train_bpb")), number(record["val_bpb"])])
            except (ValueError, TypeError, KeyError, OverflowError):
                continue  # a record missing a field, or not one of ours (1e400 reads as inf: no whole number)
    except FileNotFoundError:
        return None
    except OSError as error:  # refused (UnsafeFile: a link, a FIFO...) or unreadable
        log.warning("%s", error if isinstance(error, UnsafeFile) else f"cannot read {path}: {error.strerror or error}")
        return None
    return {"steps": steps, "evals": evals, "bpb": bpb}
