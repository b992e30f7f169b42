"""A dataset's reference losses: the count-based bigram, bits per byte, and their cache."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core.common import paths
from core.dataset import baseline as baseline_module
from core.dataset.baseline import BASELINES, baseline, bigram_loss, bits_per_byte, compute_baseline


def by_hand(train: list[int], val: list[int], V: int) -> float:
    """The bigram's val loss written out pair by pair (the module docstring's formula)."""
    pairs = Counter(zip(train, train[1:]))
    starts = Counter(train[:-1])
    unigram = Counter(train)
    total = 0.0
    for a, b in zip(val, val[1:]):
        u = (unigram[b] + 1) / (len(train) + V)
        total -= math.log((pairs[(a, b)] + u) / (starts[a] + 1))
    return total / (len(val) - 1)


def test_the_bigram_loss_is_the_formula_in_both_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 12, 500)
    val = rng.integers(0, 12, 80)
    expected = by_hand(train.tolist(), val.tolist(), 12)
    assert bigram_loss(train, val, 12) == pytest.approx(expected, rel=1e-12)
    monkeypatch.setattr(baseline_module, "DENSE_MAX_VOCAB", 4)  # the sorted-pairs layout of large vocabularies
    assert bigram_loss(train, val, 12) == pytest.approx(expected, rel=1e-12)


def test_a_predictable_text_scores_far_below_a_uniform_guess(tmp_path: Path) -> None:
    from data.prepare import prepare

    text = tmp_path / "t.txt"
    text.write_text("abcé" * 3000, encoding="utf-8")
    info = prepare(str(text), tokenizer="char", name="cycle")
    found = compute_baseline(info)
    assert found.uniform == pytest.approx(math.log(4))
    assert found.bigram < 0.01  # each character says which comes next
    assert found.bytes_per_token == pytest.approx(5 / 4, rel=1e-3)  # é is two bytes in UTF-8
    assert found.bits_per_byte(found.uniform) == pytest.approx(2 / 1.25)
    assert math.isnan(bits_per_byte(1.0, math.nan))


def test_counted_once_per_version_of_the_files(char_dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    first = baseline(char_dataset)
    assert (paths.cache_dir() / BASELINES).is_file()
    counted: list[str] = []
    real = baseline_module.compute_baseline
    monkeypatch.setattr(baseline_module, "compute_baseline", lambda info: counted.append(info.name) or real(info))
    assert baseline(char_dataset) == first and counted == []
    val = char_dataset.path / "val.bin"
    stat = val.stat()
    os.utime(val, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new version of the file
    assert baseline(char_dataset) == first and counted == [char_dataset.name]


@pytest.mark.parametrize("content", ["not json", json.dumps([1, 2]), "{\"x\": 1}"])
def test_a_damaged_cache_is_counted_again(char_dataset, content: str) -> None:
    expected = compute_baseline(char_dataset)
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    (paths.cache_dir() / BASELINES).write_text(content)
    assert baseline(char_dataset) == expected
    cache = paths.cache_dir() / BASELINES
    entry = json.loads(cache.read_text())[str(char_dataset.path.resolve())]
    entry["bigram"] = "low"  # a wrong type under the right stamp
    cache.write_text(json.dumps({str(char_dataset.path.resolve()): entry}))
    assert baseline(char_dataset) == expected


def test_a_cache_that_is_a_link_is_not_followed(char_dataset, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    (paths.cache_dir() / BASELINES).symlink_to(elsewhere)
    assert baseline(char_dataset) == compute_baseline(char_dataset)
    assert elsewhere.read_text() == "{}"  # replaced beside, never written through
