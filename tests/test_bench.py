"""Benchmarks run end to end on tiny sizes (their figures are for people, so only their shape is checked)."""

from __future__ import annotations

from rich.console import Console

from core.bench import bench_sample


def test_bench_sample_fills_the_block_and_compares_like_with_like() -> None:
    result = bench_sample(n_tokens=4, console=Console(file=None, quiet=True))
    # Prompt + generated tokens fill the model's 256-token block; both paths chose the same tokens.
    assert result["prompt_tokens"] + result["new_tokens"] == 256
    assert result["same_tokens"]
    assert result["cached_tokens_per_s"] > 0 and result["uncached_tokens_per_s"] > 0
    assert abs(result["speedup"] - result["cached_tokens_per_s"] / result["uncached_tokens_per_s"]) < 1e-9
