"""Loss estimates: the trainer's periodic eval and `nanogpt-tui eval`.

An estimate is the mean loss over `eval_iters` batches of `batch_size` windows drawn from a generator
seeded with `seed`, whatever the number of processes: under torchrun rank r measures batches r, r + N, ...
and the ranks add up their sums (core.training.distributed.total), so 1 process and N processes give the
same figure (to float rounding), and N processes take 1/N of the time.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import numpy as np
import torch

from core.common.devices import autocast_context
from core.dataset.batches import draw_starts, windows
from core.dataset.files import PASS_VOCABULARY
from core.dataset.format import DatasetInfo, open_split
from core.dataset.token_check import check_token_ids
from core.model.gpt import GPT
from core.settings.train_config import ConfigError
from core.training import distributed


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
    rank: int = 0,
    world: int = 1,
) -> dict[str, float]:
    """Mean loss over eval_iters batches of each split, drawn from a generator seeded with `seed`.

    With `world` > 1 this rank measures batches rank, rank + world, ... and the ranks' sums are added up
    (every rank gets the whole figure; see the module docstring).
    """
    was_training = model.training
    model.eval()
    sums = []
    for tokens in data.values():
        generator = torch.Generator().manual_seed(seed)
        loss_sum = torch.zeros((), device=device)
        for index in range(eval_iters):
            starts = draw_starts(tokens, block_size, batch_size, generator)  # every rank draws every batch
            if index % world != rank:
                continue
            x, y = windows(tokens, starts, block_size, device)
            with autocast or contextlib.nullcontext():
                _, loss = model(x, y)
            loss_sum += loss.float()
        sums.append(loss_sum.item())
    losses = {split: value / eval_iters for split, value in zip(data, distributed.total(sums), strict=True)}
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
            f"evaluate it on the dataset (tokenizer) it was trained with ({PASS_VOCABULARY})", "dataset"
        )
    if batch_size < 1 or eval_iters < 1:
        raise ConfigError("batch_size and eval_iters must be at least 1")
    block_size = model.config.block_size
    check_token_ids(info)  # an id past the vocabulary would crash the embedding lookup
    data = {split: open_split(info, split) for split in ("train", "val")}
    for split, tokens in data.items():
        if len(tokens) <= block_size:
            raise ConfigError(f"the {split} split of {info.name!r} has {len(tokens)} tokens, not more than "
                              f"the model's block_size ({block_size})", "dataset")
    return estimate_loss(model, data, block_size, batch_size, eval_iters, seed, device, autocast_context(device, dtype))
