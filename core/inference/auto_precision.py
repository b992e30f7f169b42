"""The `auto` precision: each of float32, bfloat16 and int8 timed on the loaded model, the fastest that holds.

Whether bfloat16 or int8 weights make generation faster depends on the CPU (its instructions, caches
and memory bandwidth) and on the model's size: bfloat16 measured 1.3-1.9x float32 on one CPU and
0.6-1.0x on another; int8, dequantized before each product (core.inference.quantize), is slower than
bfloat16 wherever bfloat16 is fast. So `auto` measures, on the model as it loads (`at_precision`):
- quality: each precision's loss on held-out tokens (windows of the checkpoint's val split when its
  dataset is here, else text the float32 model writes itself), against float32's;
- speed: cached decoding along those tokens for AUTO_SECONDS, the precisions alternating over
  AUTO_ROUNDS rounds, the best of each;
and keeps the fastest whose loss holds (core.settings.sampling.choose_precision: never one slower than
float32). `fast_instructions` says which CPU instructions each precision's kernels need.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from core.dataset.format import DatasetError, open_split
from core.inference.quantize import to_precision
from core.inference.sampler import SamplingConfig, generate
from core.model.gpt import GPT, ContextWindow
from core.runs.checkpoint import training_dataset
from core.settings.sampling import (
    AUTO,
    AUTO_CANDIDATES,
    PrecisionTrial,
    SamplerError,
    check_precision,
    choose_precision,
    describe_choice,
)
from core.tokens.tokenizers import Tokenizer

AUTO_SECONDS = 0.6  # of decoding, all precisions and rounds together
AUTO_ROUNDS = 3
QUALITY_WINDOWS = 4
PROMPT_TOKENS = 8  # prefilled before the timed decoding steps
# The CPU flags (/proc/cpuinfo) whose instructions make each precision's kernels fast.
# int8 multiplies in bfloat16 after dequantizing (torch has no public int8 kernel): the same instructions.
FAST_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "int8": ("avx512_bf16", "amx_bf16")}


def fast_instructions(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """Per low precision, whether this CPU has the instructions its kernels are fast with, in words
    ("yes (avx512_bf16)", "no (needs avx512_bf16 or amx_bf16)", or unknown where no flags can be read)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as file:
            line = next((line for line in file if line.startswith(("flags", "Features"))), "")
    except OSError:
        line = ""
    flags = set(line.partition(":")[2].split())
    found = {}
    for precision, wanted in FAST_FLAGS.items():
        present = [flag for flag in wanted if flag in flags]
        found[precision] = (f"yes ({', '.join(present)})" if present else
                            f"no (needs {' or '.join(wanted)})" if flags else "unknown (no CPU flags to read here)")
    return found


def held_out_tokens(model: GPT, tokenizer: Tokenizer, ckpt: dict[str, Any] | None, device: torch.device) -> torch.Tensor:
    """(windows, T + 1) token ids to measure on: the checkpoint's val split when its dataset is here, else
    a text the model writes itself (at temperature 1: what it takes for text)."""
    block = model.config.block_size
    if ckpt is not None:
        try:
            val = open_split(training_dataset(ckpt), "val")  # memory-mapped: only the windows are read
        except (DatasetError, KeyError, OSError):
            val = None
        if val is not None and len(val) > block + 1:
            starts = np.linspace(0, len(val) - block - 1, QUALITY_WINDOWS).astype(np.int64)
            windows = np.stack([np.asarray(val[s : s + block + 1], dtype=np.int64) for s in starts])
            if windows.max() < model.config.vocab_size:  # (else not this model's ids: its own text instead)
                return torch.from_numpy(windows).to(device)
    settings = SamplingConfig(max_new_tokens=min(block, 128), temperature=1.0, seed=0)
    ids = [piece.token_id for piece in generate(model, tokenizer, "", settings, device)]
    return torch.tensor([ids], device=device)


@torch.inference_mode()
def loss_on(model: GPT, tokens: torch.Tensor) -> float:
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    logits = model(inputs, targets=targets)[0].float()
    return float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1)))


@torch.inference_mode()
def decoding_speed(model: GPT, tokens: list[int], seconds: float) -> float:
    """Tokens/s of cached decoding steps along `tokens` (each step feeds the next one) for about `seconds`."""
    window = ContextWindow(model)
    window.next_logits(tokens[:PROMPT_TOKENS])  # the prefill is not timed
    steps, started = 0, time.perf_counter()
    for n in range(PROMPT_TOKENS + 1, len(tokens) + 1):
        window.next_logits(tokens[:n])
        steps += 1
        if time.perf_counter() - started >= seconds:
            break
    return steps / max(time.perf_counter() - started, 1e-9)


def auto_precision(model: GPT, tokens: torch.Tensor, seconds: float = AUTO_SECONDS,
                   rounds: int = AUTO_ROUNDS) -> tuple[GPT, list[PrecisionTrial]]:
    """The float32 `model` converted to the fastest precision whose loss on `tokens` holds, and every trial."""
    base = loss_on(model, tokens)
    models: dict[str, GPT] = {"float32": model}
    losses = {"float32": 0.0}
    for precision in AUTO_CANDIDATES[1:]:
        try:
            models[precision] = to_precision(copy.deepcopy(model), precision)
            losses[precision] = (loss_on(models[precision], tokens) - base) / base
        except (SamplerError, RuntimeError):  # this device cannot run it (bfloat16)
            models.pop(precision, None)
    stream = tokens[0, : model.config.block_size].tolist()  # within the block: no window jump to time
    speeds = {p: 0.0 for p in models}
    for precision, m in models.items():  # warm-up: first calls allocate and pick kernels
        decoding_speed(m, stream[: PROMPT_TOKENS + 2], 0.0)
    for _ in range(rounds):  # alternating: a busy moment slows no precision alone
        for precision, m in models.items():
            speeds[precision] = max(speeds[precision], decoding_speed(m, stream, seconds / rounds / len(models)))
    trials = [PrecisionTrial(p, speeds[p], losses[p]) for p in models]
    return models[choose_precision(trials)], trials


def at_precision(model: GPT, precision: str, tokenizer: Tokenizer, ckpt: dict[str, Any] | None,
                 device: torch.device) -> tuple[GPT, str, str]:
    """A loaded float32 model at `precision` (auto: chosen here); the precision it is in, and for auto a line
    saying what it chose and why ("" otherwise)."""
    if check_precision(precision) != AUTO:
        return to_precision(model, precision), precision, ""
    chosen, trials = auto_precision(model, held_out_tokens(model, tokenizer, ckpt, device))
    name = choose_precision(trials)
    return chosen, name, describe_choice(name, trials)
