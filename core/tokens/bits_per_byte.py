"""Bits per byte: a loss that does not depend on the tokenizer, as nanochat reports it (torch-free).

A model's loss is in nats per token, and a token is one character under one tokenizer and several under
another, so losses of runs with different tokenizers do not compare. Bits per byte spreads the loss over
the text instead: total nats / (ln 2 x total bytes of the target tokens), the UTF-8 bytes each predicted
token stands for. Special tokens (<|endoftext|>) stand for no bytes and are left out of both sums.

`token_byte_lengths` gives the bytes of every id; the sums are made where the losses are
(core.training.evaluation), and `bits_per_byte` turns them into the figure.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from core.common.lazy import lazy
from core.tokens.base import Tokenizer, TokenizerError

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")


def token_byte_lengths(tokenizer: Tokenizer) -> np.ndarray:
    """The UTF-8 bytes each id stands for (int64, one per id); 0 for special tokens and unused ids."""
    special = set(tokenizer.special_tokens.values())
    lengths = np.zeros(tokenizer.vocab_size, dtype=np.int64)
    for token_id in range(tokenizer.vocab_size):
        if token_id not in special:
            try:
                lengths[token_id] = len(tokenizer.token_bytes(token_id))
            except TokenizerError:
                pass  # an id the vocabulary skips (a hole): it is never a target
    return lengths


def bits_per_byte(nats: float, n_bytes: float) -> float:
    """Summed loss `nats` over targets that stand for `n_bytes` bytes, in bits per byte (NaN without bytes)."""
    return nats / (math.log(2) * n_bytes) if n_bytes > 0 else math.nan
