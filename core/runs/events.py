"""What a Trainer reports while it runs (torch-free, and picklable: they also cross a process pipe)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from core.settings.train_config import TrainConfig


@dataclass
class Started:
    run_dir: Path
    n_params: int
    device: str
    dtype: str
    config: TrainConfig
    start_iter: int
    max_iters: int
    resumed: bool
    best_val_loss: float  # inf for a new run
    # A resumed run's history so far ({"steps": [...], "evals": [...]}, as in a checkpoint), so a UI
    # can draw the curve it continues; empty for a new run.
    history: dict[str, list[list[float]]]
    plan: str = ""  # a run on a time budget: the model it chose and why (core.settings.budget); else empty


@dataclass
class Compiling:
    """torch.compile is compiling the model (the first steps wait for it)."""

    iter: int


@dataclass
class Step:
    iter: int
    loss: float  # mean over the iteration's micro-batches
    lr: float
    grad_norm: float  # before clipping
    tokens_per_sec: float
    iter_ms: float
    tokens_seen: int
    elapsed_s: float  # time spent in training steps so far (not evals, not pauses), across resumes


@dataclass
class Eval:
    iter: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    seconds: float = 0.0  # how long the evaluation took
    # The same losses in bits per byte (core.tokens.bits_per_byte), comparable across tokenizers;
    # NaN where unknown (records written before they were measured).
    train_bpb: float = math.nan
    val_bpb: float = math.nan


@dataclass
class Sample:
    iter: int
    text: str


@dataclass
class CheckpointSaved:
    iter: int
    path: Path
    kind: str  # "latest" or "best"


@dataclass
class Paused:
    iter: int


@dataclass
class Unpaused:
    """Training goes on after a pause (metrics.jsonl calls it "resumed": FORMATS.md)."""

    iter: int


@dataclass
class DeviceReading:
    """What the training process holds on its device now: read at most once a second, between steps
    (core.training.readings), recorded in metrics.jsonl less often (type "device"). Sizes in bytes; None
    where the device does not tell."""

    iter: int
    device: str
    allocated: int | None = None  # torch's allocated memory on a GPU (CUDA's counter; MPS's)
    reserved: int | None = None  # held by torch's caching allocator (CUDA; MPS: the driver's)
    peak: int | None = None  # the most allocated since the run started (CUDA), else the process's peak RSS
    utilization: float | None = None  # percent of the GPU busy over the last moment (NVML, where it is)
    rss: int | None = None  # the training process's resident memory


@dataclass
class Finished:
    iter: int
    reason: str  # "completed" (max_iters reached) or "stopped" (a user's stop request or signal)


@dataclass
class Failed:
    iter: int
    message: str
    kind: str  # "nan", "oom", "in_use" (another process trains the run folder: `path`) or "error"
    details: str = field(default="", repr=False)  # the traceback, for a log
    path: str = ""  # in_use: the run folder another process is training


Event = (Started | Compiling | Step | Eval | Sample | CheckpointSaved | Paused | Unpaused | DeviceReading | Finished
         | Failed)
