"""Benchmarks behind `nanogpt-tui bench train` (`bench sample` is nanogpt_tui.bench.sample): figures printed with rich and returned.

The Trainer and nanoGPT's bare loop run in PAIRS pairs, back to back, and each pair gives a ratio: the
median ratio says which is faster, its spread how much one pair strays (noise on a busy machine). A short
matmul probe in the same run gives this machine's peak, and the Trainer's tokens/s times nanoGPT's
FLOPs per token (core.model.anatomy.flops_per_token) its share of it; on a GPU, MFU as nanoGPT prints
it (the GPU's rated bfloat16 peak, nanogpt_tui.bench.gpu.peak_tflops).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import numpy as np
import torch
from rich.console import Console

from core.common import paths
from core.common.devices import autocast_context, needs_grad_scaler, resolve_device, use_all_cpu_cores
from core.dataset.batches import get_batch
from core.dataset.format import DatasetWriter, load_dataset, open_split
from core.model.anatomy import flops_per_token
from core.model.gpt import GPT, GPTConfig
from core.runs.events import Failed, Step
from core.settings.presets import from_preset
from core.settings.schedule import get_lr
from core.settings.train_config import TrainConfig
from core.tokens.tokenizers import CharTokenizer
from core.training.optim import build_optimizer, group_lr
from core.training.trainer import Trainer
from nanogpt_tui.bench.figures import print_figures, ratio_spread
from nanogpt_tui.bench.sample import SHAKESPEARE_CHARS

PAIRS = 5  # bench train alternates the Trainer and the bare loop in this many pairs
PEAK_SIZE = 1024  # the matmul probe's square matrices
PEAK_SECONDS = 1.0  # how long it multiplies


def make_random_dataset(name: str) -> None:
    """A dataset of random tokens over Tiny Shakespeare's characters, in the current data dir (for speed tests)."""
    tokenizer = CharTokenizer(SHAKESPEARE_CHARS)
    ids = np.random.default_rng(0).integers(0, tokenizer.vocab_size, 200_000)
    with DatasetWriter(name, tokenizer) as writer:
        writer.append("train", ids[:180_000])
        writer.append("val", ids[180_000:])
        writer.commit("random tokens", len(ids), 0.1)


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = PEAK_SECONDS,
                size: int = PEAK_SIZE) -> float:
    """This machine's matmul FLOP/s: the fastest of repeated size x size products on every core (what torch's
    kernels reach on big matrices; a training step's small ones reach less)."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    torch.mm(a, b)  # warm-up: the kernel's first call
    fastest, ends = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < ends:
        started = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        fastest = min(fastest, time.perf_counter() - started)
    return 2 * size**3 / fastest


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
        "flops_per_token": flops_per_token(trainer.built.model.get_num_params(),
                                           dataclasses.asdict(trainer.built.model.config)),
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
    pairs: int = PAIRS,
) -> dict[str, Any]:
    """Training tokens/sec of a preset's model on every core: the real Trainer, and side by side the bare
    loop of nanoGPT's train.py on the same settings (`_bare_loop`), in `pairs` pairs; their ratio per
    pair, its median and spread; the share of this machine's matmul peak the Trainer reaches.

    Without `dataset` the data is random tokens over Tiny Shakespeare's 65 characters (speed does not
    depend on the text). The run lives in a temporary data dir that is deleted afterwards; the first
    few steps (allocation, warm-up) are left out of the figures.
    """
    from nanogpt_tui.bench.gpu import peak_tflops

    if iters < 2:
        raise ValueError("bench train needs at least 2 iterations")
    if pairs < 1:
        raise ValueError("bench train needs at least 1 pair")
    dataset_path = load_dataset(dataset).path if dataset else None  # resolved in the real data dir
    warmup = min(3, iters - 1)
    with paths.temporary_home("nanogpt-bench-"):
        if dataset_path is None:
            make_random_dataset("random")
        config = from_preset(
            preset, dataset=str(dataset_path or "random"), run_name="bench", device=device, dtype=dtype,
            max_iters=iters, eval_interval=iters + 1, eval_iters=1, log_interval=1, sample_interval=0,
        )
        runs, bare_runs = [], []
        for pair in range(pairs):  # back to back: a busy moment slows both sides of a pair alike
            runs.append(_timed_training(dataclasses.replace(config, run_name=f"bench-{pair}"), warmup))
            bare_runs.append(_bare_loop(config, open_split(load_dataset(config.dataset), "train"),
                                        runs[-1]["vocab_size"], warmup))
    first = runs[0]
    target = torch.device(str(first["device"]))
    ratios = [run["tokens_per_s"] / bare["tokens_per_s"] for run, bare in zip(runs, bare_runs)]
    result = {key: first[key] for key in ("threads", "params", "timed_iters", "vocab_size", "flops_per_token")}
    result |= {
        "preset": preset, "dtype": dtype, "tokens_per_iter": config.tokens_per_iter, "device": str(target),
        "tokens_per_s": statistics.median(run["tokens_per_s"] for run in runs),
        "iter_ms": statistics.median(run["iter_ms"] for run in runs),
        "final_loss": runs[-1]["final_loss"],
        "bare_loop": {"tokens_per_s": statistics.median(bare["tokens_per_s"] for bare in bare_runs),
                      "iter_ms": statistics.median(bare["iter_ms"] for bare in bare_runs)},
        "ratios": ratios, "ratio": statistics.median(ratios),
    }
    achieved = result["tokens_per_s"] * result["flops_per_token"]
    if target.type == "cuda":  # MFU as nanoGPT prints it: against the GPU's rated peak
        peak = peak_tflops(torch.cuda.get_device_name(target))
        result["peak_flops"] = peak * 1e12 if peak else None
        peak_name = "the GPU's rated bfloat16 peak (MFU)"
    else:
        result["peak_flops"] = matmul_peak(target, torch.bfloat16 if dtype == "bfloat16" else torch.float32)
        peak_name = f"this machine's measured {PEAK_SIZE}x{PEAK_SIZE} {dtype} matmul peak"
    result["peak_share"] = achieved / result["peak_flops"] if result["peak_flops"] else None
    threads = f" ({result['threads']} threads)" if result["device"] == "cpu" else ""

    def rates(of: list[dict[str, Any]]) -> str:
        return ", ".join(f"{run['tokens_per_s']:,.0f}" for run in of)

    peak_text = (f"{result['peak_share']:.0%} of {result['peak_flops'] / 1e9:,.0f} GFLOP/s ({peak_name}); "
                 if result["peak_share"] is not None else "unknown peak: set NANOGPT_TUI_PEAK_TFLOPS; ")
    figures = {
        "device": result["device"] + threads,
        "dtype": dtype,
        "parameters": f"{result['params'] / 1e6:.2f} M",
        "tokens per iteration": str(config.tokens_per_iter),
        "iterations timed": f"{result['timed_iters']} (after {warmup} warm-up), in each of {pairs} pairs",
        "the Trainer (median)": f"{result['tokens_per_s']:,.0f} tokens/s, {result['iter_ms']:.1f} ms/iter (runs: {rates(runs)})",
        "nanoGPT's bare loop (median)": f"{result['bare_loop']['tokens_per_s']:,.0f} tokens/s, "
        f"{result['bare_loop']['iter_ms']:.1f} ms/iter (runs: {rates(bare_runs)})",
        "ratio Trainer / bare loop, per pair": ", ".join(f"{r:.3f}" for r in ratios),
        "ratio, median (goal >= 0.95)": f"{ratio_spread(ratios)} {'ok' if result['ratio'] >= 0.95 else 'missed'}",
        "share of the peak": f"{peak_text}{result['flops_per_token'] / 1e6:.2f} MFLOP per token "
        f"(6N + 12·L·H·Q·T), {achieved / 1e9:,.1f} GFLOP/s trained",
    }
    print_figures(
        f"bench train: preset {preset} ({config.n_layer} layers, {config.n_embd} wide, block {config.block_size}, "
        f"batch {config.batch_size}), {'dataset ' + dataset if dataset else 'random tokens'}",
        figures,
        console,
    )
    return result
