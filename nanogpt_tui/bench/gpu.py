"""`nanogpt-tui bench gpu` (scripts/gpu_check.sh): nanoGPT's Shakespeare-char recipe on a CUDA GPU, timed.

Trains the `shakespeare-char` preset (6 layers, 384 wide, block 256, batch 64) with bfloat16 autocast
and torch.compile on Tiny Shakespeare with the real Trainer until val loss <= target (nanoGPT's
README: 1.4697 after its 5000 iterations, about 3 minutes on an A100), then times sampling from the
trained model with and without the KV cache.

MFU is nanoGPT's estimate_mfu: flops per token 6N + 12·L·H·Q·T (core.model.anatomy.flops_per_token) times
tokens per second, over the GPU's peak dense bfloat16 FLOPs (PEAK_TFLOPS, or $NANOGPT_TUI_PEAK_TFLOPS).
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from core.common import paths
from core.common.devices import DeviceError, list_devices
from core.model.anatomy import flops_per_token
from core.runs.events import Eval, Event, Failed, Started, Step
from core.settings.presets import from_preset
from core.training.trainer import Trainer
from nanogpt_tui.bench.figures import print_figures
from nanogpt_tui.bench.sample import timed_generation
from nanogpt_tui.bench.speedrun import write_char_dataset

TARGET = 1.47
PEAK_ENV = "NANOGPT_TUI_PEAK_TFLOPS"
# Peak dense bfloat16 tensor-core TFLOPS (no sparsity) by a part of the device's name; the longest part
# found in the name wins ("NVIDIA H100 PCIe" is the PCIe card, "NVIDIA H100 80GB HBM3" the SXM one).
PEAK_TFLOPS = {"A100": 312.0, "H100": 989.0, "H100 PCIe": 756.0, "H200": 989.0}
WARMUP_LOGS = 2  # logged steps left out of the timings: compilation and warm-up
SAMPLE_TOKENS = 500


@dataclass
class GpuCheck:
    device: str = ""
    peak_tflops: float | None = None
    iters: int = 0
    iter_ms: float = math.nan  # median over the logged steps after the warm-up
    tokens_per_s: float = math.nan
    mfu: float | None = None
    best_val: float = math.inf
    reached_at: tuple[int, float, float] | None = None  # iteration, wall seconds, training seconds
    wall_s: float = 0.0
    sample_tokens_per_s: dict[str, float] = field(default_factory=dict)  # "with KV cache", "without"
    sample: str = ""
    failure: str | None = None


def peak_tflops(device_name: str, environ: Mapping[str, str] = os.environ) -> float | None:
    """The GPU's peak bfloat16 TFLOPS: $NANOGPT_TUI_PEAK_TFLOPS, else PEAK_TFLOPS's, else None (unknown)."""
    override = environ.get(PEAK_ENV, "").strip()
    if override:
        try:
            value = float(override)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise DeviceError(f"{PEAK_ENV}={override!r}: give the GPU's peak bfloat16 TFLOPS as a positive number")
        return value
    found = [part for part in PEAK_TFLOPS if part.lower() in device_name.lower()]
    return PEAK_TFLOPS[max(found, key=len)] if found else None


def require_cuda() -> str:
    """The name of GPU 0; DeviceError saying why when there is no CUDA GPU here."""
    cuda = next(d for d in list_devices() if d.name == "cuda")
    if not cuda.available:
        raise DeviceError(f"no CUDA GPU here ({cuda.reason}): the GPU check needs an NVIDIA GPU and a CUDA "
                          "build of PyTorch")
    return torch.cuda.get_device_name(0)


def bench_gpu(text: Path, target: float = TARGET, max_iters: int | None = None,
              console: Console | None = None) -> GpuCheck:
    """Train the shakespeare-char recipe on `text` to val <= target on GPU 0; print and return the figures."""
    result = GpuCheck(device=require_cuda())
    result.peak_tflops = peak_tflops(result.device)
    body = text.read_text(encoding="utf-8")
    with paths.temporary_home("nanogpt-gpu-check-"):
        write_char_dataset("shakespeare-char", body)
        config = from_preset("shakespeare-char", dataset="shakespeare-char", run_name="gpu-check", device="cuda",
                             dtype="bfloat16", compile=True)
        if max_iters:
            config = dataclasses.replace(config, max_iters=max_iters)
        steps: list[Step] = []
        clock: dict[str, float] = {}
        trainer: Trainer

        def on_event(event: Event) -> None:
            if isinstance(event, Started):
                clock["start"] = time.perf_counter()
            elif isinstance(event, Step):
                steps.append(event)
            elif isinstance(event, Eval):
                result.best_val = event.best_val_loss
                if event.val_loss <= target and result.reached_at is None:
                    elapsed = steps[-1].elapsed_s if steps else 0.0
                    result.reached_at = (event.iter, time.perf_counter() - clock["start"], elapsed)
                    trainer.stop()
            elif isinstance(event, Failed):
                result.failure = event.message

        trainer = Trainer(config, on_event)
        trainer.run()
        result.wall_s = time.perf_counter() - clock.get("start", time.perf_counter())
        timed = steps[WARMUP_LOGS:] or steps
        if timed:
            result.iters = steps[-1].iter + 1
            result.iter_ms = statistics.median(s.iter_ms for s in timed)
            result.tokens_per_s = statistics.median(s.tokens_per_sec for s in timed)
            built = trainer.built
            assert built is not None
            per_token = flops_per_token(built.model.get_num_params(), dataclasses.asdict(built.model.config))
            if result.peak_tflops:
                result.mfu = result.tokens_per_s * per_token / (result.peak_tflops * 1e12)
        if result.failure is None and trainer.built is not None:
            _time_sampling(result, trainer)
    report(result, target, console)
    return result


def _time_sampling(result: GpuCheck, trainer: Trainer) -> None:
    """Tokens/s of the trained model's generation with and without the KV cache (after a short warm-up)."""
    built = trainer.built
    assert built is not None
    model = built.model.eval()
    for name, use_cache in (("with KV cache", True), ("without KV cache", False)):
        timed_generation(model, built.tokenizer, "\n", 2, built.device, use_cache)
        seconds, _, ids = timed_generation(model, built.tokenizer, "\n", SAMPLE_TOKENS, built.device, use_cache)
        result.sample_tokens_per_s[name] = len(ids) / seconds
        if use_cache:
            result.sample = built.tokenizer.decode(ids)


def report(result: GpuCheck, target: float, console: Console | None = None) -> None:
    console = console or Console()
    peak = (f"{result.peak_tflops:g} TFLOPS bf16" if result.peak_tflops
            else f"unknown: set {PEAK_ENV} to the GPU's peak bfloat16 TFLOPS for MFU")
    figures = {"device": f"{result.device} (torch {torch.__version__}; peak {peak})"}
    if result.failure:
        figures["failed"] = result.failure
    figures["ms/iter"] = f"{result.iter_ms:.1f} (median of logged steps after the first {WARMUP_LOGS})"
    figures["tokens/s"] = f"{result.tokens_per_s:,.0f}"
    figures["MFU"] = f"{100 * result.mfu:.1f}%" if result.mfu is not None else "unknown (no peak FLOPs)"
    if result.reached_at:
        it, wall, train = result.reached_at
        figures[f"val <= {target}"] = (f"at iteration {it}: {wall:.0f} s wall time (compile and evals included), "
                                       f"{train:.0f} s of training steps")
    else:
        figures[f"val <= {target}"] = f"not reached in {result.iters} iterations (best val {result.best_val:.4f})"
    for name, rate in result.sample_tokens_per_s.items():
        figures[f"sampling {name}"] = f"{rate:,.0f} tokens/s ({SAMPLE_TOKENS} tokens)"
    print_figures("bench gpu: nanoGPT's shakespeare-char recipe (6 x 384, block 256, batch 64), bfloat16 + "
                  "torch.compile", figures, console)
    if result.sample:
        console.rule("sample (with the KV cache)")
        console.print(result.sample, markup=False, highlight=False)
