"""A learned BPE's merges in the order learned, and what each did to the train split (torch-free).

- `merge_pairs`: the two tokens that make each merged token: its bytes encoded with the ranks before
  its own, as tiktoken's rank-order BPE does (it gives exactly two parts for a token tiktoken can form;
  one it never forms has None).
- `merge_counts`: how often each merge was applied in the train split, from the split's token counts
  (token_counts.npy) alone, no encoding: a token is made once for each time it is left in the text, plus
  once for each time a later merge used it up. Counted back from the last merge to the first, each count
  is final before it is handed down. For the 256 byte tokens the same sum gives how often each byte
  occurs, so the text's bytes come out too.
- `tokens_by_vocab`: how many tokens the train split would take if learning had stopped after k merges
  (every application of a later merge joined two tokens into one): the chars-per-token curve as the
  vocabulary grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.common.lazy import lazy
from core.tokens.bpe import BpeTokenizer

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")


@dataclass
class MergeTable:
    """Everything the merges view shows, for the ranks 256.. of one learned BPE on its train split."""

    pairs: list[tuple[int, int] | None]  # index r - 256: the two ids merged into token r
    applied: np.ndarray  # per id (ranks only): times made in train (a byte token: times its byte occurs)
    tokens: np.ndarray  # index k: train tokens with only the first k merges (k = 0 .. n_merges)

    @property
    def train_bytes(self) -> int:
        return int(self.applied[:256].sum())


def merge_pairs(tokenizer: BpeTokenizer) -> list[tuple[int, int] | None]:
    """For each merged token (ids 256 ..), the ids of its two parts, or None if tiktoken never forms it."""
    ranks = tokenizer.ranks
    rank_of: dict[bytes, int] = {}
    for rank, token in enumerate(ranks):
        rank_of.setdefault(token, rank)
    pairs: list[tuple[int, int] | None] = []
    for rank in range(256, len(ranks)):
        parts = _bpe(ranks[rank], rank_of, rank)
        pairs.append((rank_of[parts[0]], rank_of[parts[1]]) if len(parts) == 2 else None)
    return pairs


def _bpe(token: bytes, rank_of: dict[bytes, int], below: int) -> list[bytes]:
    """`token` split as tiktoken's BPE splits it using only the ranks below `below`."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best, best_rank = -1, below
        for i in range(len(parts) - 1):
            rank = rank_of.get(parts[i] + parts[i + 1], below)
            if rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


def merge_table(tokenizer: BpeTokenizer, counts: np.ndarray) -> MergeTable:
    """The merges of `tokenizer` and their counts on a train split whose token counts are `counts`."""
    pairs = merge_pairs(tokenizer)
    n_ranks = len(tokenizer.ranks)
    applied = np.asarray(counts[:n_ranks], dtype=np.int64).copy()
    for rank in range(n_ranks - 1, 255, -1):
        pair = pairs[rank - 256]
        if pair is not None:
            applied[pair[0]] += applied[rank]
            applied[pair[1]] += applied[rank]
    # With k merges, the merges from 256 + k on are undone: each application of one is one token more.
    later = np.concatenate([np.cumsum(applied[256:][::-1])[::-1], [0]])
    tokens = int(np.asarray(counts).sum()) + later
    return MergeTable(pairs, applied, tokens)
