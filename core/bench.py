"""Benchmarks behind `nanogpt-tui bench train` (`bench sample` is core.bench_sample): figures printed with rich and returned."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rich.console import Console

from core import paths
from core.bench_sample import SHAKESPEARE_CHARS
from core.dataset import DatasetWriter, load_dataset
from core.figures import print_figures
from core.presets import from_preset
from core.tokenizers import CharTokenizer
from core.train_config import TrainConfig
from core.train_events import Failed, Step
from core.trainer import Trainer


def make_random_dataset(name: str) -> None:
    """A dataset of random tokens over Tiny Shakespeare's characters, in the current data dir (for speed tests)."""
    tokenizer = CharTokenizer(SHAKESPEARE_CHARS)
    ids = np.random.default_rng(0).integers(0, tokenizer.vocab_size, 200_000)
    with DatasetWriter(name, tokenizer) as writer:
        writer.append("train", ids[:180_000])
        writer.append("val", ids[180_000:])
        writer.commit("random tokens", len(ids), 0.1)


def _timed_training(config: TrainConfig, warmup: int) -> dict[str, Any]:
    """Train `config` with the real Trainer; tokens/sec and ms per iteration after `warmup` steps."""
    steps: list[Step] = []
    failures: list[Failed] = []
    trainer = Trainer(config, lambda e: steps.append(e) if isinstance(e, Step) else
                      failures.append(e) if isinstance(e, Failed) else None)
    trainer.run()
    if failures:
        raise RuntimeError(f"bench train failed: {failures[0].message}")
    timed = steps[warmup:]
    seconds = sum(s.iter_ms for s in timed) / 1000
    return {
        "device": trainer.state.device,
        "threads": torch.get_num_threads(),
        "params": trainer.state.model.get_num_params(),
        "timed_iters": len(timed),
        "tokens_per_s": len(timed) * config.tokens_per_iter / seconds,
        "iter_ms": 1000 * seconds / len(timed),
        "final_loss": steps[-1].loss,
    }


def bench_train(
    preset: str = "cpu",
    iters: int = 30,
    device: str = "auto",
    dataset: str | None = None,
    dtype: str = "float32",
    console: Console | None = None,
) -> dict[str, Any]:
    """Training tokens/sec of a preset's model, measured by the real Trainer on every core.

    Without `dataset` the data is random tokens over Tiny Shakespeare's 65 characters (speed does not
    depend on the text). The run lives in a temporary data dir that is deleted afterwards; the first
    few steps (allocation, warm-up) are left out of the figures.
    """
    if iters < 2:
        raise ValueError("bench train needs at least 2 iterations")
    dataset_path = load_dataset(dataset).path if dataset else None  # resolved in the real data dir
    warmup = min(3, iters - 1)
    with paths.temporary_home("nanogpt-bench-"):
        if dataset_path is None:
            make_random_dataset("random")
        config = from_preset(
            preset, dataset=str(dataset_path or "random"), run_name="bench", device=device, dtype=dtype,
            max_iters=iters, eval_interval=iters + 1, eval_iters=1, log_interval=1, sample_interval=0,
        )
        result = _timed_training(config, warmup)
    result |= {"preset": preset, "dtype": dtype, "tokens_per_iter": config.tokens_per_iter, "device": str(result["device"])}
    threads = f" ({result['threads']} threads)" if result["device"] == "cpu" else ""
    figures = {
        "device": result["device"] + threads,
        "dtype": dtype,
        "parameters": f"{result['params'] / 1e6:.2f} M",
        "tokens per iteration": str(config.tokens_per_iter),
        "iterations timed": f"{result['timed_iters']} (after {warmup} warm-up)",
        "speed": f"{result['tokens_per_s']:,.0f} tokens/s, {result['iter_ms']:.1f} ms/iter",
    }
    print_figures(
        f"bench train: preset {preset} ({config.n_layer} layers, {config.n_embd} wide, block {config.block_size}, "
        f"batch {config.batch_size}), {'dataset ' + dataset if dataset else 'random tokens'}",
        figures,
        console,
    )
    return result
