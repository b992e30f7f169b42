"""What went wrong in a training run, in the words a user can act on: `describe_failure` turns whatever a
run raised into the message and kind of its Failed event (core.runs.events: `nan`, `oom`, `in_use`,
`error`), and whether the traceback is worth keeping (an error nobody foresaw, an out-of-memory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.common import paths
from core.common.devices import DeviceError
from core.common.disk import DiskWriteError, disk_problem
from core.common.folder_lock import RunInUse
from core.common.safe_files import UnsafeFile
from core.dataset.format import DatasetError
from core.runs.checkpoint import CheckpointError
from core.settings.train_config import ConfigError
from core.training import distributed


class NonFinite(Exception):
    """The loss, gradients or weights became NaN or infinite."""


@dataclass(frozen=True)
class FailureReport:
    message: str
    kind: str  # a Failed event's kind
    path: str = ""  # the run folder another process holds (kind in_use)
    traceback: bool = False  # whether the error's traceback goes into the event's details


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


def describe_failure(error: Exception, device: object, run_dir: Path | None) -> FailureReport:
    """The Failed event a run that raised `error` on `device` reports."""
    if isinstance(error, NonFinite):
        return FailureReport(str(error), "nan")
    if distributed.is_peer_failure(error):
        return FailureReport("another process of this distributed run stopped (it failed or was killed: see "
                             "its message, or torchrun's report)", "error", traceback=True)
    if is_oom(error):
        return FailureReport(f"out of memory on {device}: lower batch_size or block_size "
                             "(raise gradient_accumulation_steps to keep the batch), or train a smaller model",
                             "oom", traceback=True)
    if isinstance(error, RunInUse):  # the app offers to watch that run instead
        return FailureReport(str(error), "in_use", path=str(error.run_dir))
    if isinstance(error, (ConfigError, DatasetError, CheckpointError, DeviceError, UnsafeFile, DiskWriteError)):
        return FailureReport(str(error), "error")
    if (problem := disk_problem(error, "write the run's files", run_dir or paths.runs_dir())) is not None:
        return FailureReport(str(problem), "error")
    return FailureReport(f"{type(error).__name__}: {error}", "error", traceback=True)
