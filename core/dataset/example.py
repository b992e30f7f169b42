"""One training example as the model sees it (torch-free): what `get_batch` (core.dataset.batches) draws.

A window of `block_size` token ids starts at a random place in train: `x` is the window, `y` the same
tokens shifted one to the right, so at each position t the model reads x[0..t] and is scored on
predicting y[t] = x[t + 1]. One window holds block_size examples of growing context; a batch stacks
batch_size windows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.dataset.format import DatasetError, DatasetInfo, open_split, tokenizer_of


@dataclass(frozen=True)
class Example:
    start: int  # where the window starts in train.bin
    block_size: int
    x: list[int]  # the input ids, data[start : start + block_size]
    y: list[int]  # the targets, data[start + 1 : start + block_size + 1]
    x_text: list[str]  # each input token's text (undecodable bytes replaced)
    y_text: list[str]


def training_example(info: DatasetInfo, block_size: int, seed: int | None = None, shown: int | None = None) -> Example:
    """A random window of train as get_batch draws one; only its first `shown` tokens are read (a long block)."""
    data = open_split(info, "train")
    if len(data) <= block_size:
        raise DatasetError(f"dataset {info.name!r} has {len(data)} train tokens, not more than the block ({block_size})")
    start = random.Random(seed).randrange(len(data) - block_size)  # as torch.randint(len(data) - block_size)
    count = block_size if shown is None else min(shown, block_size)
    window = [int(i) for i in data[start : start + count + 1]]
    tokenizer = tokenizer_of(info)
    texts = [tokenizer.token_bytes(i).decode("utf-8", "replace") for i in window]
    return Example(start, block_size, window[:-1], window[1:], texts[:-1], texts[1:])
