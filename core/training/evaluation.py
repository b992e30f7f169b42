"""Loss estimates: the trainer's periodic eval and `nanogpt-tui eval`, in nats per token and in bits per byte.

An estimate is the mean loss over `eval_iters` batches of `batch_size` windows drawn from a generator
seeded with `seed`, whatever the number of processes: under torchrun rank r measures batches r, r + N, ...
and the ranks add up their sums (core.training.distributed.total), so 1 process and N processes give the
same figure (to float rounding), and N processes take 1/N of the time.

Bits per byte (core.tokens.bits_per_byte) needs the loss of each target and the bytes it stands for:
`estimate_loss` sums both when given the tokenizer's byte lengths, `add_bits_per_byte` divides. The sums
are kept apart until then, so that ranks of a distributed run can add them up first.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import numpy as np
import torch
import torch.nn.functional as F

from core.common.devices import autocast_context
from core.dataset.batches import draw_starts, windows
from core.dataset.files import PASS_VOCABULARY
from core.dataset.format import DatasetInfo, open_split, tokenizer_of
from core.dataset.token_check import check_token_ids
from core.model.gpt import GPT
from core.settings.train_config import ConfigError
from core.tokens.bits_per_byte import bits_per_byte, token_byte_lengths
from core.tokens.tokenizers import Tokenizer
from core.training import distributed

SUMS = ("_nats", "_bytes")  # the keys estimate_loss adds per split for bits per byte


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
    token_bytes: torch.Tensor | None = None,
) -> dict[str, float]:
    """Mean loss over eval_iters batches of each split, drawn from a generator seeded with `seed`.

    With `world` > 1 this rank measures batches rank, rank + world, ... and the ranks' sums are added up
    (every rank gets the whole figure; see the module docstring).
    With `token_bytes` (the bytes of each id, on `device`), also "{split}_nats" and "{split}_bytes": the
    summed loss of the targets that stand for bytes, and their bytes (`add_bits_per_byte` makes bits per byte).
    """
    was_training = model.training
    model.eval()
    sums = []  # per split: the loss summed over this rank's batches, then its nats and bytes
    for tokens in data.values():
        generator = torch.Generator().manual_seed(seed)
        loss_sum = torch.zeros((), device=device)
        nats = torch.zeros((), dtype=torch.float64, device=device)
        n_bytes = torch.zeros((), dtype=torch.int64, device=device)
        for index in range(eval_iters):
            starts = draw_starts(tokens, block_size, batch_size, generator)  # every rank draws every batch
            if index % world != rank:
                continue
            x, y = windows(tokens, starts, block_size, device)
            with autocast or contextlib.nullcontext():
                logits, loss = model(x, y)
            loss_sum += loss.float()
            if token_bytes is not None:
                target_bytes = token_bytes[y].view(-1)
                each = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), reduction="none")
                nats += (each * (target_bytes > 0)).sum(dtype=torch.float64)
                n_bytes += target_bytes.sum()
        sums += [loss_sum.item(), nats.item(), float(n_bytes.item())]
    totals = distributed.total(sums)
    losses = {}
    for i, split in enumerate(data):
        loss_sum, nats, n_bytes = totals[3 * i : 3 * i + 3]
        losses[split] = loss_sum / eval_iters
        if token_bytes is not None:
            losses[split + SUMS[0]], losses[split + SUMS[1]] = nats, n_bytes
    model.train(was_training)
    return losses


def add_bits_per_byte(losses: dict[str, float]) -> dict[str, float]:
    """`losses` with "{split}_bpb" for each split whose sums estimate_loss made, those sums left out."""
    result = {key: value for key, value in losses.items() if not key.endswith(SUMS)}
    for key in losses:
        if key.endswith(SUMS[0]):
            split = key.removesuffix(SUMS[0])
            result[f"{split}_bpb"] = bits_per_byte(losses[key], losses[split + SUMS[1]])
    return result


def token_bytes_tensor(tokenizer: Tokenizer, device: torch.device) -> torch.Tensor:
    """core.tokens.bits_per_byte's byte lengths of `tokenizer`'s ids, on `device` (for estimate_loss)."""
    return torch.as_tensor(token_byte_lengths(tokenizer), device=device)


def evaluate(
    model: GPT, info: DatasetInfo, device: torch.device, batch_size: int = 16, eval_iters: int = 50,
    seed: int = 1337, dtype: str = "float32",
) -> dict[str, float]:
    """A trained model's mean train and val loss on a dataset (random windows of its block size), and
    both in bits per byte ("train_bpb", "val_bpb")."""
    if info.vocab_size > model.config.vocab_size:
        raise ConfigError(
            f"dataset {info.name!r} has {info.vocab_size} token ids but the model only {model.config.vocab_size}: "
            f"evaluate it on the dataset (tokenizer) it was trained with ({PASS_VOCABULARY})", "dataset"
        )
    check_token_ids(info)  # an id past the vocabulary would crash the embedding lookup
    data = {split: open_split(info, split) for split in ("train", "val")}
    return evaluate_tokens(model, data, tokenizer_of(info), device, batch_size, eval_iters, seed, dtype, info.name)


def evaluate_tokens(
    model: GPT, data: dict[str, np.ndarray], tokenizer: Tokenizer, device: torch.device, batch_size: int = 16,
    eval_iters: int = 50, seed: int = 1337, dtype: str = "float32", what: str = "the text",
) -> dict[str, float]:
    """Mean loss and bits per byte ("{split}_bpb") of each of `data`'s token arrays (made by `tokenizer`)."""
    if batch_size < 1 or eval_iters < 1:
        raise ConfigError("batch_size and eval_iters must be at least 1")
    block_size = model.config.block_size
    for split, tokens in data.items():
        if len(tokens) <= block_size:
            raise ConfigError(f"the {split} split of {what!r} has {len(tokens)} tokens, not more than "
                              f"the model's block_size ({block_size})", "dataset")
    token_bytes = token_bytes_tensor(tokenizer, device)
    losses = estimate_loss(model, data, block_size, batch_size, eval_iters, seed, device,
                           autocast_context(device, dtype), token_bytes=token_bytes)
    return add_bits_per_byte(losses)
