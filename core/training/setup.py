"""Setting a run up for the Trainer (core.training.trainer): its folder, its checks, what it trains.

`setup_run` reads the dataset (and the checkpoint to resume, or the config.json of the GPT-2 folder to
start from), checks every setting, the device and the memory the run needs, for the shape that will be
built, before allocating anything, chooses and locks the run folder (`RunFolder`), then
builds the model, optimizer and batch stream, restoring a checkpoint's state when resuming. It returns
the two halves of a run: a `BuiltRun` (built once, never reassigned) and its `Progress` (the few values
that change as it trains). Under torchrun (core.training.distributed) rank 0 alone owns the folder;
every rank builds its own.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ContextManager

import numpy as np
import torch

from core.common import paths
from core.common.devices import DeviceError, autocast_context, check_dtype, needs_grad_scaler, use_all_cpu_cores
from core.common.folder_lock import FolderLock
from core.dataset.batches import BatchStream
from core.dataset.files import PASS_VOCABULARY
from core.dataset.format import DatasetInfo, load_dataset, open_split, tokenizer_of
from core.dataset.token_check import check_token_ids
from core.interop.gpt2_weights import init_from, init_from_shape
from core.model.arch import arch_of
from core.model.gpt import GPT, GPTConfig
from core.model.ladder import LadderModel, build
from core.runs.checkpoint import VERSION, CheckpointError, build_model, load_checkpoint, resolve_checkpoint
from core.runs.files import LATEST
from core.settings.memory import available_system_memory, check_fits
from core.settings.train_config import MODEL_KEYS, ConfigError, TrainConfig
from core.tokens.tokenizers import Tokenizer, tokenizer_name
from core.training import distributed
from core.training.distributed import Distributed
from core.training.evaluation import token_bytes_tensor
from core.training.optim import build_optimizer


@dataclass(frozen=True)
class BuiltRun:
    """What `setup_run` builds once for a run: its settings, data, model, optimizer and folder."""

    config: TrainConfig
    info: DatasetInfo
    data: dict[str, np.ndarray]  # "train" and "val" token arrays (memory-mapped)
    device: torch.device
    tokenizer: Tokenizer
    token_bytes: torch.Tensor  # the bytes of each id (core.tokens.bits_per_byte), on `device`, for evals
    model: GPT | LadderModel  # the GPT, or a step of the lecture's ladder (cfg.arch)
    forward_model: torch.nn.Module  # the model, or its torch.compile'd wrapper
    train_model: torch.nn.Module  # forward_model, in DDP when distributed
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: ContextManager[object]
    batches: BatchStream
    run_dir: Path
    dist: Distributed  # this process's rank in a torchrun job (a single process: Distributed())
    start_iter: int  # the iteration this session starts at (a resumed checkpoint's)
    elapsed_before: float  # training seconds of earlier sessions of this run


@dataclass
class Progress:
    """How far a run has got: what a checkpoint saves, and the step counters between logged steps."""

    iter_num: int
    best_val_loss: float = math.inf
    history: dict[str, list[list[float]]] = dataclasses.field(default_factory=lambda: {"steps": [], "evals": []})
    last_eval: int | None = None  # the iteration of the latest eval
    saved_iter: int | None = None  # the iteration of the latest ckpt.pt this session wrote
    train_time: float = 0.0  # training seconds of this session
    unlogged_time: float = 0.0  # seconds and steps since the last logged step
    unlogged_steps: int = 0
    # Set when a loss, gradient norm or weight was NaN or inf; read only when logging or saving,
    # so detecting it never costs a GPU sync per step.
    nonfinite: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros((), dtype=torch.bool))


class RunFolder:
    """The run's folder: chosen by `choose`, and locked from setup until `release` (the end of the run)."""

    def __init__(self) -> None:
        self.lock: FolderLock | None = None  # the run folder's, held from setup to the end of the run
        self.created = False  # whether this run created its folder

    def choose(
        self, config: TrainConfig, info: DatasetInfo, resume_path: Path | None, saved_name: str | None,
        take: bool = True,
    ) -> tuple[TrainConfig, Path]:
        """The run's folder, locked for this run when `take`: a resume of a run's latest checkpoint continues in
        that run's folder (whatever it is called now); anything else (a new run, a resume from best.pt or from
        elsewhere) gets a folder of its own. `saved_name` is the run_name in the checkpoint's settings.
        Returns the config (without a run_name that only repeats the checkpoint's) and the folder."""
        runs = paths.runs_dir()
        own: Path | None = None
        if resume_path is not None and resume_path.resolve().parent.parent == runs.resolve():
            if resume_path.name == LATEST:
                own = resume_path.resolve().parent
            # A name that came with the checkpoint's settings (the run may have been renamed since) is not
            # a new name: a latest checkpoint continues in its folder, a best.pt gets a folder of its own.
            if config.run_name in (saved_name, resume_path.parent.name):
                config = dataclasses.replace(config, run_name=None)
        if config.run_name:
            run_dir = runs / config.run_name
        elif own is not None:
            run_dir = own
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = runs / f"{info.name}-{stamp}"
        if not take:
            return config, run_dir
        lock = FolderLock(run_dir)
        self.created = not run_dir.exists()
        lock.acquire()  # RunInUse if another process trains there; checked before "exists", which it may be creating
        if run_dir.resolve() != own and (run_dir / LATEST).exists():
            lock.release()
            raise ConfigError(f"run {run_dir.name!r} already exists: choose another run_name or resume it", "run_name")
        self.lock = lock
        return config, run_dir

    def release(self, set_up: bool) -> None:
        """Give the run folder's lock up; a folder this run created and never wrote to (not `set_up`) goes too."""
        if self.lock is None:
            return
        if not set_up and self.created:  # setup failed after making the folder
            self.lock.remove_folder()
        else:
            self.lock.release()
        self.lock = None


def setup_run(
    cfg: TrainConfig, resume_from: str | os.PathLike[str] | None, folder: RunFolder, meta: str | None = None,
) -> tuple[BuiltRun, Progress]:
    """Everything a run needs to train, checked before anything is allocated; `folder` takes the run's folder.
    `meta`: the meta.pkl of a nanoGPT character-level checkpoint to resume (core.runs.checkpoint)."""
    resume_path, ckpt = None, None
    if resume_from is not None:
        resume_path = resolve_checkpoint(resume_from, meta)
        ckpt = load_checkpoint(resume_path, meta=meta)
        # The architecture is the checkpoint's; the dataset too unless another one is named.
        # (a knob nanoGPT's model_args lack is off, as in the model build_model makes of them; a ladder
        # step's model_args give the GPT of its shape, every knob off)
        saved = GPTConfig.from_args(ckpt["model_args"])
        cfg = dataclasses.replace(cfg, arch=arch_of(ckpt["model_args"]), **{k: getattr(saved, k) for k in MODEL_KEYS})
        if not cfg.dataset:
            cfg = dataclasses.replace(cfg, dataset=str(ckpt["config"].get("dataset", "")))
    if not cfg.dataset:
        raise ConfigError("dataset is not set", "dataset")
    info = load_dataset(cfg.dataset)
    data = {split: open_split(info, split) for split in ("train", "val")}
    model_vocab = info.vocab_size
    if ckpt is None and cfg.init_from:  # the shape is the folder's: checked, and sized, before it is built
        cfg, model_vocab = init_from_shape(cfg)
    dist = distributed.from_env()
    device = check_settings(cfg, len(data["train"]), len(data["val"]), dist)
    if ckpt is not None and ckpt["tokenizer"] != info.tokenizer:
        raise ConfigError(
            f"the checkpoint's tokenizer ({tokenizer_name(ckpt['tokenizer'])}) differs from dataset "
            f"{info.name!r}'s ({tokenizer_name(info.tokenizer)}): resume on the dataset it was trained on ({PASS_VOCABULARY})", "dataset"
        )
    check_memory(cfg, model_vocab, device)  # before allocating anything
    # An id past the vocabulary would crash the embedding lookup. After the quick checks: the first start
    # on a dataset reads it whole. Rank 0 alone writes (remembers the check).
    check_token_ids(info, remember=dist.is_main)
    saved_name = ckpt["config"].get("run_name") if ckpt is not None else None
    # Rank 0 alone owns the folder (its lock, its files); the others only need its path.
    cfg, run_dir = folder.choose(cfg, info, resume_path, saved_name, take=dist.is_main)  # may drop a run_name
    if dist.enabled:
        distributed.init(dist, device)
    if device.type == "cpu":
        use_all_cpu_cores(share=dist.local_world_size)  # torchrun's processes on a machine split its cores

    # Weights' initialisation and dropout; each rank its own dropout (DDP copies rank 0's initial weights).
    torch.manual_seed(cfg.seed + dist.rank)
    batch_gen = torch.Generator().manual_seed(cfg.seed)  # the same on every rank: each takes its own rows
    if ckpt is not None:
        model = build_model(ckpt).to(device)
    elif cfg.init_from:  # GPT-2's weights (a Hugging Face folder): the shape is the folder's
        model, cfg = init_from(cfg, info.tokenizer, info.vocab_size)
        model = model.to(device)
    else:
        model = build(dataclasses.asdict(cfg) | {"vocab_size": info.vocab_size}).to(device)  # cfg.arch's model
    optimizer = build_optimizer(model, cfg, device.type)  # AdamW, or Muon + AdamW with cfg.muon
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, cfg.dtype))
    forward_model = torch.compile(model) if cfg.compile else model
    batches = BatchStream(data["train"], cfg.block_size, cfg.batch_size, batch_gen, device, dist.rank, dist.world_size,
                          shuffle=cfg.shuffle)
    progress = Progress(0, nonfinite=torch.zeros((), dtype=torch.bool, device=device))
    if ckpt is not None:
        progress = restore(ckpt, cfg, optimizer, scaler, batches, device, dist)
    history = progress.history
    progress.last_eval = history["evals"][-1][0] if history["evals"] else None
    tokenizer = tokenizer_of(info)
    run = BuiltRun(
        config=cfg, info=info, data=data, device=device, tokenizer=tokenizer,
        token_bytes=token_bytes_tensor(tokenizer, device), model=model,
        forward_model=forward_model,
        train_model=distributed.wrap(forward_model, device) if dist.enabled else forward_model,
        optimizer=optimizer, scaler=scaler, autocast=autocast_context(device, cfg.dtype), batches=batches,
        run_dir=run_dir, dist=dist, start_iter=progress.iter_num,
        # Training time of earlier sessions of this run, so elapsed_s continues across resumes.
        elapsed_before=history["steps"][-1][3] if history["steps"] else 0.0,
    )
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    return run, progress


def check_settings(cfg: TrainConfig, train_tokens: int, val_tokens: int, dist: Distributed) -> torch.device:
    """Every problem of the settings, device and dtype included, as one ConfigError; else the device."""
    problems = cfg.problems(train_tokens, val_tokens, dist.world_size)
    device = torch.device("cpu")
    try:
        device = distributed.device_for(dist, cfg.device)
    except DeviceError as error:
        problems.append(("device", str(error)))
    try:
        check_dtype(device, cfg.dtype)
    except DeviceError as error:
        problems.append(("dtype", str(error)))
    if problems:
        raise ConfigError(problems)
    return device


def check_memory(cfg: TrainConfig, vocab_size: int, device: torch.device) -> None:
    """ConfigError with figures when the run cannot fit in the device's free memory (unless forced)."""
    if cfg.force:
        return
    if device.type == "cuda":
        available: int | None = torch.cuda.mem_get_info(device)[0]
    else:  # the CPU, and MPS's unified memory
        available = available_system_memory()
    problem = check_fits(cfg, vocab_size, available, str(device))
    if problem:
        raise ConfigError(problem, "force")


def restore(
    ckpt: dict[str, Any], cfg: TrainConfig, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    batches: BatchStream, device: torch.device, dist: Distributed,
) -> Progress:
    """Continue where the checkpoint left off (the model already holds its weights): the optimizer's, the
    scaler's and the random generators' states restored, and the checkpoint's progress."""
    saved_muon = any(group.get("muon") for group in (ckpt.get("optimizer") or {}).get("param_groups", []))
    if saved_muon != cfg.muon:
        raise ConfigError(f"the checkpoint was trained with muon={saved_muon}: resume it with that setting", "muon")
    # torch restores each group's settings (betas, momentum, weight decay) with its state; the run's own,
    # as built from its config, win, so a --set on resume counts.
    settings = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's optimizer state does not fit this model: {error}") from None
    for group, own in zip(optimizer.param_groups, settings):
        group.update(own)
    if ckpt["scaler"] and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    rng = ckpt["rng"] or {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "batch" in rng:
        batches.restore(rng["batch"], rng.get("batch_used", 0))  # absent: saved before shuffle existed
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    if "mps" in rng and device.type == "mps":
        torch.mps.set_rng_state(rng["mps"])
    if dist.rank:  # the checkpoint holds rank 0's dropout states: the others get a seed of their own
        torch.manual_seed(cfg.seed + dist.rank + dist.world_size * ckpt["iter_num"])
    return Progress(
        ckpt["iter_num"], ckpt["best_val_loss"],
        {"steps": list(ckpt["history"]["steps"]), "evals": list(ckpt["history"]["evals"])},
        nonfinite=torch.zeros((), dtype=torch.bool, device=device),
    )


def checkpoint_state(run: BuiltRun, progress: Progress) -> dict[str, Any]:
    """What a checkpoint holds (FORMATS.md): nanoGPT's keys, then ours (tokenizer, dataset, history, RNG
    states, the gradient scaler, the format's version)."""
    batch_state, batch_used = run.batches.state()
    rng = {"torch": torch.get_rng_state(), "batch": batch_state, "batch_used": batch_used}
    if run.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run.device)
    if run.device.type == "mps":  # dropout on MPS draws from its own generator
        rng["mps"] = torch.mps.get_rng_state()
    return {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "model_args": dataclasses.asdict(run.model.config),
        "iter_num": progress.iter_num,
        "best_val_loss": progress.best_val_loss,
        "config": dataclasses.asdict(run.config),
        "tokenizer": run.info.tokenizer,
        "dataset": run.info.to_json(),
        "history": progress.history,
        "rng": rng,
        "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
        "version": VERSION,
    }
