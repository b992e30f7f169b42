"""metrics.jsonl: one JSON record per logged step and per eval, appended as a run trains (torch-free).

Records are `{"type": "step", ...Step's fields}` and `{"type": "eval", ...Eval's fields}`. Standard
JSON has no NaN or Infinity, so a non-finite number (an inf grad_norm of a float16 step the gradient
scaler skips) is written as null.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

METRICS_FILE = "metrics.jsonl"


def write_record(file: TextIO, record: dict[str, Any]) -> None:
    """Append one record, flushed so a crash keeps it (non-finite numbers as null)."""
    record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    file.write(json.dumps(record) + "\n")
    file.flush()


def trim(run_dir: Path, start_iter: int, last_eval: int | None) -> None:
    """Drop the records of iterations a resumed run is about to redo: those from `start_iter` on (a failed
    session's, or a later checkpoint's), but for the eval at `last_eval`, the checkpoint's own."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        it = record.get("iter") if isinstance(record, dict) else None
        if isinstance(it, int) and (it < start_iter or (record.get("type") == "eval" and it == last_eval)):
            kept.append(line + "\n")
    fd, tmp = tempfile.mkstemp(prefix=f".{METRICS_FILE}.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.writelines(kept)
        os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_curves(run_dir: Path) -> dict[str, list[list[float]]] | None:
    """A run's curves from its metrics.jsonl, or None when it has none: `{"steps": [[iter, loss, tokens,
    seconds, lr], ...], "evals": [[iter, train_loss, val_loss], ...]}` (a checkpoint history's layout, plus
    the lr). Lines cut short by a crash, and records missing a field, are skipped; null reads as NaN."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    steps: list[list[float]] = []
    evals: list[list[float]] = []

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            if record["type"] == "step":
                steps.append([int(record["iter"]), number(record["loss"]), int(record["tokens_seen"]),
                              number(record["elapsed_s"]), number(record["lr"])])
            elif record["type"] == "eval":
                evals.append([int(record["iter"]), number(record["train_loss"]), number(record["val_loss"])])
        except (ValueError, TypeError, KeyError):
            continue  # a line cut short by a crash, or not a record of ours
    return {"steps": steps, "evals": evals}
