"""Checkpoint listing: every run's checkpoints summarized (figures and settings, kept small), newest first.

What the CLI's `list checkpoints` and the app's listings show. Reading a checkpoint goes through
core.runs.checkpoint.load_checkpoint (memory-mapped: a summary needs only a few figures, not every weight).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.common.folder_lock import holder
from core.model.gpt import GPTConfig
from core.runs.checkpoint import CheckpointError, load_checkpoint
from core.runs.files import LATEST, run_files
from core.settings.train_config import incompatible_knobs
from core.tokens.tokenizers import tokenizer_name

if TYPE_CHECKING:
    import torch

SETTINGS_LIMIT = 200  # settings a summary keeps: TrainConfig has about 40, nanoGPT's config about 30
TEXT_LIMIT = 300  # characters of a setting's text (a path, say) a summary keeps


def summary_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's settings as its summary keeps them, small whatever the file holds: plain values only
    (all TrainConfig and nanoGPT's config have), long texts cut, at most SETTINGS_LIMIT of them."""
    kept: dict[str, Any] = {}
    for key, value in config.items():
        if len(kept) == SETTINGS_LIMIT:
            break
        if not isinstance(key, str) or len(key) > TEXT_LIMIT:
            continue
        if isinstance(value, str) and len(value) > TEXT_LIMIT:
            value = value[: TEXT_LIMIT - 1] + "…"
        elif not isinstance(value, (str, bool, int, float, type(None))):
            continue
        kept[key] = value
    return kept


@dataclass
class CheckpointSummary:
    name: str  # the run's folder name
    path: Path
    run_dir: Path
    dataset: str = ""
    tokenizer: str = ""
    tokenizer_kind: str = ""  # its spec's kind: "char", "tiktoken" or "bpe" (learned)
    n_params: int = 0
    iter_num: int = 0
    best_val_loss: float = float("inf")
    size_bytes: int = 0
    modified: datetime | None = None
    kind: str = "latest"  # "latest", "best", "nanogpt", or "none" for a run folder without a checkpoint
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # its settings (summary_settings)
    recipe_knobs: list[str] = field(default_factory=list)  # those its model uses that nanoGPT's lacks


def count_params(state: dict[str, torch.Tensor], tied: bool = True) -> int:
    """Parameters in a state dict, counted like GPT.get_num_params(): a tied head once, no positions.

    `tied` is False for a model with `untie_head`: its lm_head.weight is a parameter of its own."""
    # (positions: the GPT's wpe, a ladder step's position_embedding_table)
    total = sum(t.numel() for key, t in state.items() if key not in ("transformer.wpe.weight", "position_embedding_table.weight"))
    head, wte = state.get("lm_head.weight"), state.get("transformer.wte.weight")
    if tied and head is not None and wte is not None and head.shape == wte.shape:
        total -= head.numel()
    return total


def summarize(path: Path, kind: str) -> CheckpointSummary:
    """One checkpoint's summary; a file that cannot be read gives a summary with `error` set."""
    summary = CheckpointSummary(name=path.parent.name, path=path, run_dir=path.parent, kind=kind)
    try:
        stat = path.stat()
        summary.size_bytes, summary.modified = stat.st_size, datetime.fromtimestamp(stat.st_mtime)
    except OSError as error:  # deleted or renamed since it was listed
        summary.error = f"cannot read {path}: {error.strerror}"
        return summary
    try:
        # mmap reads only what the summary needs, not every weight
        ckpt = load_checkpoint(path, mmap=True)
    except CheckpointError as error:
        summary.error = str(error)
        return summary
    summary.dataset = str(ckpt["dataset"].get("name", ""))
    summary.tokenizer = tokenizer_name(ckpt["tokenizer"])
    summary.tokenizer_kind = str(ckpt["tokenizer"].get("kind", ""))
    summary.n_params = count_params(ckpt["model"], tied=not GPTConfig.from_args(ckpt["model_args"]).untie_head)
    summary.iter_num = ckpt["iter_num"]
    summary.best_val_loss = ckpt["best_val_loss"]
    summary.config = summary_settings(ckpt["config"])
    summary.recipe_knobs = incompatible_knobs(ckpt["model_args"])
    if ckpt["version"] == 0:
        summary.kind = "nanogpt"
    return summary


def unsaved_run(run_dir: Path) -> CheckpointSummary:
    """The summary of a run folder without a checkpoint: training stopped (or is still) before its first save."""
    pid = holder(run_dir)
    why = (f"no checkpoint yet: process {pid} is training it" if pid else
           f"no checkpoint: training stopped before its first save. Start it again with "
           f"`nanogpt-tui train --name {run_dir.name}` (or from the Train screen), or delete the folder")
    modified = datetime.fromtimestamp(run_dir.stat().st_mtime) if run_dir.exists() else None
    return CheckpointSummary(name=run_dir.name, path=run_dir / LATEST, run_dir=run_dir, kind="none",
                             modified=modified, error=why)


def list_checkpoints(runs_root: str | os.PathLike[str] | None = None) -> list[CheckpointSummary]:
    """Every run's latest and best checkpoints (or that a started run has none), newest first; never
    raises for one bad file."""
    summaries = [unsaved_run(path.parent) if kind == "none" else summarize(path, kind) for path, kind in run_files(runs_root)]
    return sorted(summaries, key=lambda s: s.modified or datetime.min, reverse=True)
