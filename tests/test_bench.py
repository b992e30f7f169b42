"""Benchmarks run end to end on tiny sizes (their figures are for people, so only their shape is checked)."""

from __future__ import annotations

import math

from rich.console import Console

from core.bench import SHAKESPEARE_CHARS, bench_sample


def test_bench_sample_fills_the_block_and_compares_like_with_like() -> None:
    result = bench_sample(n_tokens=4, console=Console(file=None, quiet=True))
    # Prompt + generated tokens fill the model's 256-token block; both paths chose the same tokens.
    assert result["prompt_tokens"] + result["new_tokens"] == 256
    assert len(result["token_ids"]) == 4 and all(0 <= i < len(SHAKESPEARE_CHARS) for i in result["token_ids"])
    assert result["same_tokens"]
    for key in ("cached_tokens_per_s", "uncached_tokens_per_s", "params", "weight_mb"):
        assert math.isfinite(result[key]) and result[key] > 0
    # With a 252-token prompt, each uncached step re-reads the whole prompt: the cache must win.
    assert result["speedup"] > 1
