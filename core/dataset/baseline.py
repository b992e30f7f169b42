"""Reference losses of a dataset: a uniform guess, a count-based bigram, and bits per byte (torch-free).

What a loss curve is measured against:

- `uniform` = ln(vocab_size): the loss of a model that spreads its bets evenly over the vocabulary,
  what a freshly initialised GPT gives;
- `bigram`: the val loss of the count-based bigram of the train split, P(b | a) from how often b
  follows a (makemore's first model, and what the ladder's neural bigram converges to). Pairs never
  seen in train get a pseudo-count of one spread by the unigram frequencies, so no val pair has
  probability 0: P(b | a) = (c(a, b) + u(b)) / (c(a) + 1), u(b) = (c(b) + 1) / (N + V);
- `bytes_per_token` of the val split, which turns a loss in nats per token into bits per byte
  (`bits_per_byte`), comparable across tokenizers.

Counting reads at most MAX_TRAIN_TOKENS of train and MAX_VAL_TOKENS of val, in a second or two on a
small CPU; the figures are cached in the cache folder (BASELINES), keyed by the files' sizes and change
times, so each dataset version is counted once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.common import paths
from core.common.disk import write_text_atomic
from core.common.safe_files import read_json
from core.dataset.format import DatasetError, DatasetInfo, open_split, tokenizer_of

MAX_TRAIN_TOKENS = 8 * 2**20  # train tokens counted (Tiny Shakespeare has 1M)
MAX_VAL_TOKENS = 2**20  # val tokens scored
DENSE_MAX_VOCAB = 4096  # up to this vocabulary the pair counts are a dense V x V table, above it sorted pairs
BASELINES = "baselines.json"  # in the cache folder
MAX_CACHED = 64  # datasets remembered (the newest)
MAX_CACHE_BYTES = 2**20


@dataclass(frozen=True)
class Baseline:
    """A dataset's reference losses (nats per token) and its val split's bytes per token."""

    vocab_size: int
    uniform: float  # ln(vocab_size)
    bigram: float  # the count-based bigram's val loss
    bytes_per_token: float  # UTF-8 bytes per val token (nan when the val split is empty)
    train_tokens: int  # tokens counted (at most MAX_TRAIN_TOKENS)
    val_tokens: int  # tokens scored (at most MAX_VAL_TOKENS)

    def bits_per_byte(self, loss: float) -> float:
        return bits_per_byte(loss, self.bytes_per_token)


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """A loss in nats per token as bits per byte of text: loss / ln 2 / bytes per token (nan if unknown)."""
    if not bytes_per_token or not math.isfinite(bytes_per_token):
        return math.nan
    return loss / math.log(2) / bytes_per_token


def bigram_loss(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """The val loss of the count-based bigram of `train` (see the module docstring); ids in [0, vocab_size)."""
    V = vocab_size
    a, b = train[:-1].astype(np.int64), train[1:].astype(np.int64)
    unigram = (np.bincount(train, minlength=V).astype(np.float64) + 1) / (len(train) + V)  # u(b)
    follows = np.bincount(a, minlength=V).astype(np.float64)  # c(a): pairs that start with a
    va, vb = val[:-1].astype(np.int64), val[1:].astype(np.int64)
    if V <= DENSE_MAX_VOCAB:
        pairs = np.bincount(a * V + b, minlength=V * V).astype(np.float64)
        seen = pairs[va * V + vb]
    else:  # V x V would not fit: count the distinct pairs, look each val pair up
        keys, counts = np.unique(a * V + b, return_counts=True)
        wanted = va * V + vb
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        seen = np.where(keys[at] == wanted, counts[at], 0).astype(np.float64)
    probs = (seen + unigram[vb]) / (follows[va] + 1)
    return float(-np.log(probs).mean())


def val_bytes_per_token(info: DatasetInfo, val: np.ndarray) -> float:
    """UTF-8 bytes per token of `val` (ids of info's tokenizer)."""
    if not len(val):
        return math.nan
    tokenizer = tokenizer_of(info)
    counts = np.bincount(val, minlength=info.vocab_size)
    used = np.flatnonzero(counts)
    lengths = np.array([len(tokenizer.token_bytes(int(i))) for i in used], dtype=np.float64)
    return float((counts[used] * lengths).sum() / len(val))


def compute_baseline(info: DatasetInfo) -> Baseline:
    """Count and score the dataset's splits (see the module docstring); DatasetError for a split too short."""
    train = np.asarray(open_split(info, "train")[:MAX_TRAIN_TOKENS])
    val = np.asarray(open_split(info, "val")[:MAX_VAL_TOKENS])
    if len(train) < 2 or len(val) < 2:
        raise DatasetError(f"dataset {info.name!r} has too few tokens for a bigram baseline")
    top = max(int(train.max()), int(val.max()))
    if top >= info.vocab_size:
        raise DatasetError(f"dataset {info.name!r} holds token id {top}, outside its vocabulary of {info.vocab_size}")
    return Baseline(info.vocab_size, math.log(info.vocab_size), bigram_loss(train, val, info.vocab_size),
                    val_bytes_per_token(info, val), len(train), len(val))


def baseline(info: DatasetInfo) -> Baseline:
    """The dataset's reference losses, from the cache when its files have not changed since they were counted."""
    key, stamp = str(info.path.resolve()), _stamp(info)
    cached = _read_cache()
    found = _from_json(cached.get(key), stamp)
    if found is not None:
        return found
    result = compute_baseline(info)
    cached.pop(key, None)  # to the end: the newest are kept
    cached[key] = {"stamp": stamp, **asdict(result)}
    try:
        write_text_atomic(paths.cache_dir() / BASELINES, json.dumps(dict(list(cached.items())[-MAX_CACHED:])))
    except OSError:
        pass  # a read-only or full disk: counted again next time, nothing worse
    return result


def _stamp(info: DatasetInfo) -> list[int]:
    """What identifies this version of the dataset: its split files' sizes and change times, and the vocabulary."""
    stamp = [info.vocab_size]
    for split in ("train", "val"):
        st = (info.path / f"{split}.bin").stat()
        stamp += [st.st_size, st.st_mtime_ns, st.st_ino]
    return stamp


def _read_cache() -> dict[str, Any]:
    try:
        data = read_json(paths.cache_dir() / BASELINES, MAX_CACHE_BYTES)
    except (OSError, ValueError):
        return {}  # none yet, unreadable or refused: counted again
    return data if isinstance(data, dict) else {}


def _from_json(entry: Any, stamp: list[int]) -> Baseline | None:
    """A cached entry for this stamp, checked field by field; None when it is stale or not what it should be."""
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    try:
        values = {name: entry[name] for name in Baseline.__dataclass_fields__}
    except KeyError:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        return None
    return Baseline(**values)
