"""Loss estimates: the trainer's periodic eval and `nanogpt-tui eval`."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import numpy as np
import torch

from core.common.devices import autocast_context
from core.dataset.batches import get_batch
from core.dataset.format import DatasetInfo, open_split
from core.dataset.token_check import check_token_ids
from core.model.gpt import GPT
from core.settings.train_config import ConfigError


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

    With `world` > 1 this rank's rows of each batch (core.dataset.batches): the ranks' mean is the whole batches'.
    """
    was_training = model.training
    model.eval()
    losses = {}
    for split, tokens in data.items():
        generator = torch.Generator().manual_seed(seed)
        total = torch.zeros((), device=device)
        for _ in range(eval_iters):
            x, y = get_batch(tokens, block_size, batch_size, generator, device, rank, world)
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
            "evaluate it on the dataset (tokenizer) it was trained with", "dataset"
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
