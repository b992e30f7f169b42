"""Benchmarks behind `nanogpt-tui bench train` (`bench sample` is nanogpt_tui.bench.sample): figures printed with rich and returned."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from rich.console import Console

from core.common import paths
from core.common.devices import autocast_context, needs_grad_scaler, resolve_device, use_all_cpu_cores
from core.dataset.batches import get_batch
from core.dataset.format import DatasetWriter, load_dataset, open_split
from core.model.gpt import GPT, GPTConfig
from core.runs.events import Failed, Step
from core.settings.presets import from_preset
from core.settings.schedule import get_lr
from core.settings.train_config import TrainConfig
from core.tokens.tokenizers import CharTokenizer
from core.training.optim import build_optimizer, group_lr
from core.training.trainer import Trainer
from nanogpt_tui.bench.figures import print_figures
from nanogpt_tui.bench.sample import SHAKESPEARE_CHARS

ROUNDS = 2  # bench train alternates the Trainer and the bare loop this many times


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
        "device": trainer.built.device,
        "threads": torch.get_num_threads(),
        "params": trainer.built.model.get_num_params(),
        "timed_iters": len(timed),
        "tokens_per_s": len(timed) * config.tokens_per_iter / seconds,
        "iter_ms": 1000 * seconds / len(timed),
        "final_loss": steps[-1].loss,
        "vocab_size": trainer.built.model.config.vocab_size,
    }


def _bare_loop(config: TrainConfig, data: np.ndarray, vocab_size: int, warmup: int) -> dict[str, Any]:
    """nanoGPT's train.py loop on the same model, optimizer, schedule and batches, and nothing else: no
    events, metrics file, NaN checks or requests. What the Trainer costs on top is the gap to this."""
    device = resolve_device(config.device)
    if device.type == "cpu":
        use_all_cpu_cores()
    torch.manual_seed(config.seed)
    model = GPT(GPTConfig.from_args(dataclasses.asdict(config) | {"vocab_size": vocab_size})).to(device)
    optimizer = build_optimizer(model, config, device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, config.dtype))
    autocast = autocast_context(device, config.dtype)
    generator = torch.Generator().manual_seed(config.seed)
    x, y = get_batch(data, config.block_size, config.batch_size, generator, device)
    started = 0.0
    for it in range(config.max_iters):
        if it == warmup:
            started = time.perf_counter()
        lr = get_lr(it, config)
        for group in optimizer.param_groups:
            group["lr"] = group_lr(group, lr, config)
        for _ in range(config.gradient_accumulation_steps):
            with autocast:
                _, loss = model(x, y)
                loss = loss / config.gradient_accumulation_steps
            x, y = get_batch(data, config.block_size, config.batch_size, generator, device)  # as nanoGPT: ahead
            scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # nanoGPT reads the loss at every log_interval (1 here), which waits for the step
    seconds = time.perf_counter() - started
    timed = config.max_iters - warmup
    return {"tokens_per_s": timed * config.tokens_per_iter / seconds, "iter_ms": 1000 * seconds / timed}


def bench_train(
    preset: str = "cpu",
    iters: int = 30,
    device: str = "auto",
    dataset: str | None = None,
    dtype: str = "float32",
    console: Console | None = None,
) -> dict[str, Any]:
    """Training tokens/sec of a preset's model on every core: the real Trainer, and side by side the bare
    loop of nanoGPT's train.py on the same settings (`_bare_loop`), and their ratio.

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
        # Alternated, best of each: other load on the machine only ever slows a run down.
        runs, bare_runs = [], []
        for round_ in range(ROUNDS):
            runs.append(_timed_training(dataclasses.replace(config, run_name=f"bench-{round_}"), warmup))
            bare_runs.append(_bare_loop(config, open_split(load_dataset(config.dataset), "train"),
                                        runs[-1]["vocab_size"], warmup))
        result = max(runs, key=lambda run: run["tokens_per_s"])
        bare = max(bare_runs, key=lambda run: run["tokens_per_s"])
    result["bare_loop"] = bare
    result["ratio"] = result["tokens_per_s"] / bare["tokens_per_s"]
    result |= {"preset": preset, "dtype": dtype, "tokens_per_iter": config.tokens_per_iter, "device": str(result["device"])}
    threads = f" ({result['threads']} threads)" if result["device"] == "cpu" else ""

    def rates(of: list[dict[str, Any]]) -> str:
        return ", ".join(f"{run['tokens_per_s']:,.0f}" for run in of)

    figures = {
        "device": result["device"] + threads,
        "dtype": dtype,
        "parameters": f"{result['params'] / 1e6:.2f} M",
        "tokens per iteration": str(config.tokens_per_iter),
        "iterations timed": f"{result['timed_iters']} (after {warmup} warm-up)",
        f"the Trainer (best of {ROUNDS})": f"{result['tokens_per_s']:,.0f} tokens/s, {result['iter_ms']:.1f} ms/iter "
        f"(runs: {rates(runs)})",
        f"nanoGPT's bare loop (best of {ROUNDS})": f"{bare['tokens_per_s']:,.0f} tokens/s, {bare['iter_ms']:.1f} ms/iter "
        f"(runs: {rates(bare_runs)})",
        "ratio (Trainer / bare loop)": f"{result['ratio']:.3f}",
    }
    print_figures(
        f"bench train: preset {preset} ({config.n_layer} layers, {config.n_embd} wide, block {config.block_size}, "
        f"batch {config.batch_size}), {'dataset ' + dataset if dataset else 'random tokens'}",
        figures,
        console,
    )
    return result
