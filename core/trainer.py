"""Training: TrainConfig (nanoGPT's knobs), presets, overrides, and a Trainer that reports events.

The Trainer runs in any thread. It reports typed events to a callback and takes pause, resume, stop,
"save now" and "sample now" requests between steps. Its run folder holds `ckpt.pt` (latest),
`best.pt` (lowest val loss) and `metrics.jsonl`.

Reproducibility: training batches come from a dedicated torch.Generator seeded from `seed`; eval batches
from a generator re-seeded at every eval (each eval measures the same batches, and evals never shift
the training batches); the sampler draws from its own generator. So a resumed run continues its curve
exactly: the checkpoint holds the batch generator's and torch's (dropout's) RNG states.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import tempfile
import threading
import time
import traceback
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ContextManager

import numpy as np
import torch

from core import paths
from core.checkpoint import (
    BEST,
    LATEST,
    VERSION,
    CheckpointError,
    build_model,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from core.dataset import DatasetError, DatasetInfo, check_name, check_token_ids, load_dataset, open_split, tokenizer_of
from core.devices import DeviceError, autocast_context, check_dtype, needs_grad_scaler, resolve_device, set_cpu_threads
from core.model import GPT, GPTConfig
from core.sampler import SamplingConfig, generate

METRICS_FILE = "metrics.jsonl"
MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "dropout")


class ConfigError(ValueError):
    """Training settings that cannot work, with every problem named."""


@dataclass
class TrainConfig:
    """nanoGPT's training knobs (same names); the defaults are nanoGPT's CPU recipe."""

    dataset: str = ""  # a dataset name or folder
    run_name: str | None = None  # None = dataset + timestamp
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    # batches: batch_size * gradient_accumulation_steps sequences of block_size tokens per iteration
    batch_size: int = 12
    gradient_accumulation_steps: int = 1
    # AdamW and the learning-rate schedule (linear warmup, cosine decay to min_lr)
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    decay_lr: bool = True
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 = off
    # schedule
    max_iters: int = 2000
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 1
    sample_interval: int = 0  # 0 = off
    sample_tokens: int = 200
    seed: int = 1337
    # system
    compile: bool = False
    device: str = "auto"
    dtype: str = "float32"
    leave_core_free: bool = True  # on CPU, keep one core for the UI

    @property
    def tokens_per_iter(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps * self.block_size

    def validate(self, train_tokens: int | None = None, val_tokens: int | None = None) -> torch.device:
        """Raise ConfigError naming every problem; return the device the run will use."""
        problems = []
        # NaN compares False with everything, so it would slip through every check below.
        for name, kind in _field_types().items():
            if kind is float and not math.isfinite(getattr(self, name)):
                problems.append(f"{name} must be a finite number (it is {getattr(self, name)})")
        if not self.dataset:
            problems.append("dataset is not set")
        if self.run_name is not None:
            try:
                check_name(self.run_name)
            except DatasetError:
                problems.append(f"bad run_name {self.run_name!r}: use letters, digits, '_', '.', '+' or '-'")
        for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "gradient_accumulation_steps",
                     "max_iters", "eval_interval", "eval_iters", "log_interval", "sample_tokens"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (it is {getattr(self, name)})")
        for name in ("warmup_iters", "lr_decay_iters", "sample_interval", "weight_decay", "grad_clip", "min_lr"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative (it is {getattr(self, name)})")
        if self.n_head >= 1 and self.n_embd % self.n_head:
            problems.append(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1) (it is {self.dropout})")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive (it is {self.learning_rate})")
        if self.min_lr > self.learning_rate:
            problems.append(f"min_lr ({self.min_lr}) must not exceed learning_rate ({self.learning_rate})")
        if self.decay_lr and self.lr_decay_iters <= self.warmup_iters:
            problems.append(f"lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters ({self.warmup_iters})")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1) (it is {getattr(self, name)})")
        for split, tokens in (("train", train_tokens), ("val", val_tokens)):
            if tokens is not None and tokens <= self.block_size:
                problems.append(
                    f"the {split} split has {tokens} tokens, not more than block_size ({self.block_size}): "
                    f"lower block_size or use more text"
                )
        device = torch.device("cpu")
        try:
            device = resolve_device(self.device)
        except DeviceError as error:
            problems.append(str(error))
        try:
            check_dtype(device, self.dtype)
        except DeviceError as error:
            problems.append(str(error))
        if problems:
            raise ConfigError("invalid training settings:\n  - " + "\n  - ".join(problems))
        return device


# Each preset sets the model and schedule; anything it leaves out keeps TrainConfig's default.
PRESETS: dict[str, dict[str, Any]] = {
    # nanoGPT's README recipe for a CPU (a MacBook): about 3 minutes to a recognisable Shakespeare.
    "cpu": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                max_iters=2000, lr_decay_iters=2000, eval_interval=250, eval_iters=20, log_interval=1),
    # Seconds on a laptop: for tests and quick demos.
    "tiny": dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, dropout=0.0,
                 max_iters=200, lr_decay_iters=200, warmup_iters=10, eval_interval=50, eval_iters=5,
                 log_interval=1),
    # nanoGPT's config/train_shakespeare_char.py, for a GPU.
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                             learning_rate=1e-3, min_lr=1e-4, max_iters=5000, lr_decay_iters=5000,
                             warmup_iters=100, eval_interval=250, eval_iters=200, log_interval=10),
}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _check_keys(keys: Iterable[str]) -> None:
    known = list(_field_types())
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; settings are: {', '.join(known)}"
            raise ConfigError(f"unknown setting {key!r}{hint}")


def from_preset(name: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a named preset, with some fields replaced."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    _check_keys(overrides)
    return TrainConfig(**{**PRESETS[name], **overrides})


def parse_value(key: str, text: str) -> Any:
    """`text` converted to the type of TrainConfig field `key`."""
    _check_keys([key])
    kind = _field_types()[key]
    text = text.strip()
    if kind == str | None:
        return None if text.lower() in ("", "none") else text
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}={text}: expected true or false")
    if kind is int:
        try:
            number = float(text)  # so 1e3 and 2_000 work too
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ConfigError(f"{key}={text}: expected a whole number")
        return int(number)
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{key}={text}: expected a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}={text}: expected a finite number")
        return number
    return text


def apply_overrides(config: TrainConfig, overrides: Iterable[str]) -> TrainConfig:
    """A copy of `config` with "key=value" settings applied, each parsed to the field's type."""
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad setting {item!r}: write key=value, e.g. learning_rate=3e-4")
        changes[key.strip()] = parse_value(key.strip(), value)
    return dataclasses.replace(config, **changes)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from a checkpoint's `config` (unknown keys, e.g. nanoGPT's own, are ignored)."""
    known = _field_types()
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def get_lr(it: int, config: TrainConfig) -> float:
    """nanoGPT's schedule: linear warmup, then cosine decay to min_lr at lr_decay_iters, then min_lr."""
    if not config.decay_lr:
        return config.learning_rate
    if it < config.warmup_iters:
        return config.learning_rate * (it + 1) / (config.warmup_iters + 1)
    if it > config.lr_decay_iters:
        return config.min_lr
    progress = (it - config.warmup_iters) / (config.lr_decay_iters - config.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


# ---- batches and loss estimates -----------------------------------------------------------------


def get_batch(
    data: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of `data` (offsets drawn from `generator`): inputs and next-token targets."""
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator).tolist()
    rows = torch.from_numpy(np.stack([data[i : i + block_size + 1] for i in starts]).astype(np.int64))
    x, y = rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
    if device.type == "cuda":  # pinned memory lets the copy overlap the GPU's work
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


@torch.no_grad()
def estimate_loss(
    model: torch.nn.Module,
    data: dict[str, np.ndarray],
    block_size: int,
    batch_size: int,
    eval_iters: int,
    seed: int,
    device: torch.device,
    autocast: ContextManager[object] | None = None,
) -> dict[str, float]:
    """Mean loss over eval_iters batches of each split, drawn from a generator seeded with `seed`."""
    was_training = model.training
    model.eval()
    losses = {}
    for split, tokens in data.items():
        generator = torch.Generator().manual_seed(seed)
        total = torch.zeros((), device=device)
        for _ in range(eval_iters):
            x, y = get_batch(tokens, block_size, batch_size, generator, device)
            with autocast or contextlib.nullcontext():
                _, loss = model(x, y)
            total += loss.float()
        losses[split] = total.item() / eval_iters
    model.train(was_training)
    return losses


def evaluate(
    model: GPT, info: DatasetInfo, device: torch.device, batch_size: int = 16, eval_iters: int = 50,
    seed: int = 1337, dtype: str = "float32",
) -> dict[str, float]:
    """A trained model's mean train and val loss on a dataset (random windows of its block size)."""
    if info.vocab_size > model.config.vocab_size:
        raise ConfigError(
            f"dataset {info.name!r} has {info.vocab_size} token ids but the model only {model.config.vocab_size}: "
            "evaluate it on the dataset (tokenizer) it was trained with"
        )
    if batch_size < 1 or eval_iters < 1:
        raise ConfigError("batch_size and eval_iters must be at least 1")
    block_size = model.config.block_size
    data = {split: open_split(info, split) for split in ("train", "val")}
    for split, tokens in data.items():
        if len(tokens) <= block_size:
            raise ConfigError(f"the {split} split of {info.name!r} has {len(tokens)} tokens, not more than "
                              f"the model's block_size ({block_size})")
    return estimate_loss(model, data, block_size, batch_size, eval_iters, seed, device, autocast_context(device, dtype))


# ---- events -------------------------------------------------------------------------------------


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
class Resumed:
    iter: int


@dataclass
class Finished:
    iter: int
    reason: str  # "completed" or "stopped"


@dataclass
class Failed:
    iter: int
    message: str
    kind: str  # "nan", "oom" or "error"
    details: str = field(default="", repr=False)  # the traceback, for a log


Event = Started | Step | Eval | Sample | CheckpointSaved | Paused | Resumed | Finished | Failed


class _NonFinite(Exception):
    """The loss, gradients or weights became NaN or infinite."""


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


# ---- the trainer --------------------------------------------------------------------------------


class Trainer:
    """Trains a GPT on a dataset, reporting events to `on_event`; see the module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        on_event: Callable[[Event], None],
        resume: str | os.PathLike[str] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.resume_from = resume
        self.cancel = cancel or threading.Event()
        self.run_dir: Path | None = None
        self.iter_num = 0
        self._cond = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._save_requested = False
        self._sample_requested = False

    # -- requests from other threads, handled between steps --

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()

    def save_now(self) -> None:
        with self._cond:
            self._save_requested = True
            self._cond.notify_all()

    def sample_now(self) -> None:
        with self._cond:
            self._sample_requested = True
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    # -- the run --

    def run(self) -> None:
        """Train until max_iters, stop or cancel. Never raises: a failure becomes a Failed event."""
        try:
            self._setup()
            self._train()
        except _NonFinite as error:
            self._fail(str(error), "nan")
        except Exception as error:
            if _is_oom(error):
                self._fail(
                    f"out of memory on {getattr(self, 'device', self.config.device)}: lower batch_size or block_size "
                    "(raise gradient_accumulation_steps to keep the batch), or train a smaller model",
                    "oom", error,
                )
            elif isinstance(error, (ConfigError, DatasetError, CheckpointError, DeviceError)):
                self._fail(str(error), "error")
            else:
                self._fail(f"{type(error).__name__}: {error}", "error", error)

    def _fail(self, message: str, kind: str, error: BaseException | None = None) -> None:
        details = "".join(traceback.format_exception(error)) if error else ""
        try:
            self.on_event(Failed(self.iter_num, message, kind, details))
        except Exception:
            pass  # the callback itself broke; there is no one left to tell

    def _setup(self) -> None:
        cfg = self.config
        ckpt = self._load_resume_checkpoint()
        if ckpt is not None:
            # The architecture is the checkpoint's; the dataset too unless another one is named.
            model_args = ckpt["model_args"]
            cfg = dataclasses.replace(cfg, **{k: model_args[k] for k in MODEL_KEYS if k in model_args})
            if not cfg.dataset:
                cfg = dataclasses.replace(cfg, dataset=str(ckpt["config"].get("dataset", "")))
            self.config = cfg
        if not cfg.dataset:
            raise ConfigError("invalid training settings:\n  - dataset is not set")
        self.info: DatasetInfo = load_dataset(cfg.dataset)
        check_token_ids(self.info)  # an id past the vocabulary would crash the embedding lookup
        self.data = {split: open_split(self.info, split) for split in ("train", "val")}
        self.device = cfg.validate(len(self.data["train"]), len(self.data["val"]))
        self.tokenizer = tokenizer_of(self.info)
        if self.device.type == "cpu":
            set_cpu_threads(cfg.leave_core_free)

        torch.manual_seed(cfg.seed)  # weights' initialisation and dropout
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)
        if ckpt is not None:
            self._check_same_tokenizer(ckpt)
            self.model = build_model(ckpt).to(self.device)
        else:
            model_args = {k: getattr(cfg, k) for k in MODEL_KEYS} | {"vocab_size": self.info.vocab_size}
            self.model = GPT(GPTConfig(**model_args)).to(self.device)
        self.model_args = dataclasses.asdict(self.model.config)
        self.optimizer = self.model.configure_optimizers(
            cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), self.device.type
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=needs_grad_scaler(self.device, cfg.dtype))
        self.history: dict[str, list[list[float]]] = {"steps": [], "evals": []}
        self.best_val_loss = float("inf")
        self.iter_num = self.start_iter = 0
        if ckpt is not None:
            self._restore(ckpt)
        self.forward_model = torch.compile(self.model) if cfg.compile else self.model
        self.autocast = autocast_context(self.device, cfg.dtype)
        self.run_dir = self._make_run_dir()
        self.on_event(Started(
            self.run_dir, self.model.get_num_params(), str(self.device), cfg.dtype, self.config,
            self.start_iter, cfg.max_iters, ckpt is not None, self.best_val_loss,
            {"steps": list(self.history["steps"]), "evals": list(self.history["evals"])},
        ))

    def _load_resume_checkpoint(self) -> dict[str, Any] | None:
        if self.resume_from is None:
            return None
        self.resume_path = resolve_checkpoint(self.resume_from)
        return load_checkpoint(self.resume_path)

    def _check_same_tokenizer(self, ckpt: dict[str, Any]) -> None:
        if ckpt["tokenizer"] != self.info.tokenizer:
            raise ConfigError(
                f"the checkpoint's tokenizer ({ckpt['tokenizer'].get('kind')}) differs from dataset "
                f"{self.info.name!r}'s: resume on the dataset it was trained on"
            )

    def _restore(self, ckpt: dict[str, Any]) -> None:
        """Continue where the checkpoint left off (the model already holds its weights)."""
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"the checkpoint's optimizer state does not fit this model: {error}") from None
        if ckpt["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        rng = ckpt["rng"] or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "batch" in rng:
            self.batch_gen.set_state(rng["batch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if "mps" in rng and self.device.type == "mps":
            torch.mps.set_rng_state(rng["mps"])
        self.iter_num = self.start_iter = ckpt["iter_num"]
        self.best_val_loss = ckpt["best_val_loss"]
        self.history = {"steps": list(ckpt["history"]["steps"]), "evals": list(ckpt["history"]["evals"])}

    def _make_run_dir(self) -> Path:
        """The run's folder: a resume of a run's latest checkpoint continues in that run's folder;
        anything else (a new run, a resume from best.pt or from elsewhere) gets a folder of its own."""
        runs = paths.runs_dir()
        own: Path | None = None
        if self.resume_from is not None and self.resume_path.resolve().parent.parent == runs.resolve():
            if self.resume_path.name == LATEST:
                own = self.resume_path.resolve().parent
            elif self.config.run_name == self.resume_path.parent.name:
                # The name came with the checkpoint's settings; that run keeps its folder, this one gets its own.
                self.config = dataclasses.replace(self.config, run_name=None)
        if self.config.run_name:
            run_dir = runs / self.config.run_name
        elif own is not None:
            run_dir = own
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = runs / f"{self.info.name}-{stamp}"
        if run_dir.resolve() != own and (run_dir / LATEST).exists():
            raise ConfigError(f"run {run_dir.name!r} already exists: choose another run_name or resume it")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _train(self) -> None:
        cfg = self.config
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        last_eval = self.history["evals"][-1][0] if self.history["evals"] else None
        self._trim_metrics(last_eval)
        self._metrics = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")
        try:
            # Training time of earlier sessions of this run, so elapsed_s continues across resumes.
            self._elapsed_before = self.history["steps"][-1][3] if self.history["steps"] else 0.0
            self._train_time = 0.0
            self._unlogged_time, self._unlogged_steps = 0.0, 0
            self._saved_iter: int | None = None
            reason = "completed"
            while True:
                it = self.iter_num
                if self._handle_requests():
                    reason = "stopped"
                    break
                if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and it != last_eval:
                    self._evaluate()
                    last_eval = it
                if cfg.sample_interval and it > self.start_iter and it % cfg.sample_interval == 0:
                    self._emit_sample()
                if it >= cfg.max_iters:
                    break
                self._step(it)
                self.iter_num = it + 1
            if self._saved_iter != self.iter_num:
                self._save(LATEST)
            self.on_event(Finished(self.iter_num, reason))
        finally:
            self._metrics.close()

    def _trim_metrics(self, last_eval: int | None) -> None:
        """Drop the metrics of iterations this run is about to redo: those after the checkpoint it resumes
        (a failed session's, or a later checkpoint's). The checkpoint's own eval, if any, stays."""
        path = self.run_dir / METRICS_FILE
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            it = record.get("iter") if isinstance(record, dict) else None
            if isinstance(it, int) and (it < self.start_iter or (record.get("type") == "eval" and it == last_eval)):
                kept.append(line + "\n")
        fd, tmp = tempfile.mkstemp(prefix=f".{METRICS_FILE}.", suffix=".tmp", dir=self.run_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.writelines(kept)
            os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _handle_requests(self) -> bool:
        """Serve save/sample requests and wait out a pause; True when the run should stop."""
        was_paused = False
        while True:
            with self._cond:
                stop = self._stop_requested or self.cancel.is_set()
                save, sample, paused = self._save_requested, self._sample_requested, self._paused
                self._save_requested = self._sample_requested = False
            if save:
                self._save(LATEST)
            if sample:
                self._emit_sample()
            if stop:
                return True
            if not paused:
                if was_paused:
                    self.on_event(Resumed(self.iter_num))
                return False
            if not was_paused:
                self.on_event(Paused(self.iter_num))
                was_paused = True
            with self._cond:
                if self._paused and not (self._stop_requested or self._save_requested or self._sample_requested):
                    # Requests notify the condition; an external cancel Event cannot, so look twice a second.
                    self._cond.wait(timeout=0.5)

    def _step(self, it: int) -> None:
        """One optimizer step over gradient_accumulation_steps micro-batches."""
        cfg = self.config
        log = it % cfg.log_interval == 0 or it == cfg.max_iters - 1
        started = time.perf_counter()
        lr = get_lr(it, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=self.device)
        for _ in range(cfg.gradient_accumulation_steps):
            x, y = get_batch(self.data["train"], cfg.block_size, cfg.batch_size, self.batch_gen, self.device)
            with self.autocast:
                _, loss = self.forward_model(x, y)
                loss = loss / cfg.gradient_accumulation_steps
            self.scaler.scale(loss).backward()
            loss_sum += loss.detach().float()
        # NaN detection without a sync per step: the flag is read when logging or saving.
        self._nonfinite |= ~torch.isfinite(loss_sum)
        grad_norm = None
        if cfg.grad_clip or log:
            self.scaler.unscale_(self.optimizer)
            # max_norm inf measures without clipping when clipping is off
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or math.inf)
            if not self.scaler.is_enabled():  # (with the scaler an inf norm is normal: it skips that step)
                self._nonfinite |= ~torch.isfinite(grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        loss_value = loss_sum.item() if log else 0.0  # the sync: the step's GPU work is done after it
        step_time = time.perf_counter() - started
        self._train_time += step_time
        self._unlogged_time += step_time
        self._unlogged_steps += 1
        if not log:
            return
        self._check_finite(it, loss_value)
        # The time since the last log covers every step since then, GPU work queued by unsynced steps too.
        interval, steps = self._unlogged_time, self._unlogged_steps
        self._unlogged_time, self._unlogged_steps = 0.0, 0
        tokens_seen = (it + 1) * cfg.tokens_per_iter
        elapsed = self._elapsed_before + self._train_time
        event = Step(
            iter=it, loss=loss_value, lr=lr, grad_norm=float(grad_norm), tokens_per_sec=steps * cfg.tokens_per_iter / max(interval, 1e-9),
            iter_ms=1000 * interval / steps, tokens_seen=tokens_seen, elapsed_s=elapsed,
        )
        self.history["steps"].append([it, loss_value, tokens_seen, elapsed])
        self._write_metrics({"type": "step", **dataclasses.asdict(event)})
        self.on_event(event)

    def _check_finite(self, it: int, *losses: float) -> None:
        """Raise _NonFinite if one of `losses`, or any training loss so far, was NaN or infinite."""
        if all(math.isfinite(v) for v in losses) and not bool(self._nonfinite):
            return
        kept = self.run_dir / LATEST
        last = f" The last good checkpoint is kept: {kept}" if kept.exists() else ""
        raise _NonFinite(
            f"the loss or the weights became NaN or infinite by iteration {it}: training diverged. "
            f"Lower learning_rate (now {self.config.learning_rate}) or use grad_clip.{last}"
        )

    def _evaluate(self) -> None:
        it = self.iter_num
        cfg = self.config
        # Re-seeded at every eval: each eval measures the same batches, and training's batches stay put.
        losses = estimate_loss(
            self.forward_model, self.data, cfg.block_size, cfg.batch_size, cfg.eval_iters, cfg.seed + 1,
            self.device, self.autocast,
        )
        self._check_finite(it, losses["train"], losses["val"])
        improved = losses["val"] < self.best_val_loss
        self.best_val_loss = min(self.best_val_loss, losses["val"])
        self.history["evals"].append([it, losses["train"], losses["val"]])
        event = Eval(it, losses["train"], losses["val"], self.best_val_loss)
        self._write_metrics({"type": "eval", **dataclasses.asdict(event)})
        self.on_event(event)
        if it > 0:  # an untrained model is not worth a file
            self._save(LATEST)
            if improved:
                self._save(BEST)

    def _emit_sample(self) -> None:
        """Generate sample_tokens tokens from an empty prompt (the sampler has its own RNG, not training's)."""
        config = SamplingConfig(max_new_tokens=self.config.sample_tokens, seed=self.config.seed + self.iter_num)
        text = "".join(piece.text for piece in generate(self.model, self.tokenizer, "", config, self.device))
        self.on_event(Sample(self.iter_num, text))

    def _save(self, filename: str) -> None:
        """Write a checkpoint of the current state, unless the weights may hold NaNs."""
        # Also look at the weights: a step whose gradients were not measured can still have broken them.
        self._nonfinite |= ~torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()
        self._check_finite(self.iter_num)
        cfg = self.config
        rng = {"torch": torch.get_rng_state(), "batch": self.batch_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.device.type == "mps":  # dropout on MPS draws from its own generator
            rng["mps"] = torch.mps.get_rng_state()
        ckpt = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "model_args": self.model_args,
            "iter_num": self.iter_num,
            "best_val_loss": self.best_val_loss,
            "config": dataclasses.asdict(cfg),
            "tokenizer": self.info.tokenizer,
            "dataset": self.info.to_json(),
            "history": self.history,
            "rng": rng,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "version": VERSION,
        }
        path = self.run_dir / filename
        save_checkpoint(path, ckpt)
        if filename == LATEST:
            self._saved_iter = self.iter_num
        self.on_event(CheckpointSaved(self.iter_num, path, "best" if filename == BEST else "latest"))

    def _write_metrics(self, record: dict[str, Any]) -> None:
        # Standard JSON has no NaN or Infinity (a float16 step the scaler skips has an inf grad_norm): null.
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
