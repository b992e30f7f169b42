"""`nanogpt-tui bench sample`: generation speed with and without the KV cache, and per weight precision.

Three tables, each measured side by side in one run:

1. KV cache: cached vs uncached generation, float32, on a 6-layer, 384-wide, block-256 GPT (nanoGPT's
   shakespeare_char shape), prompt + generated tokens filling the block.
2. Precision speed: cached tokens/sec at each precision (core.inference.quantize) against float32, on that model
   and on a GPT-2-sized one (124M: 12 layers, 768 wide, 50304 ids, block 1024). Random weights: speed
   does not depend on them. Goal: >= 2x float32. Beside each, whether this CPU has the instructions that
   make it fast (core.inference.auto_precision.fast_instructions), and what `auto` chooses on each model
   (its own short timing) with the speed of its choice in this table. Goal: auto >= 1.0x float32.
3. Precision quality: a trained model's greedy next-token agreement with float32 and its val-loss change
   on held-out text (goal: within 1%). The model is `checkpoint` when given (held-out text: its
   dataset's val split), else a small model trained briefly on `text` (Tiny Shakespeare when the CLI
   finds it), else on generated text.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch.nn import functional as F

from core.common import paths
from core.common.devices import resolve_device
from core.dataset.format import DatasetWriter, load_dataset, open_split
from core.inference.auto_precision import auto_precision, fast_instructions
from core.inference.quantize import to_precision, weight_bytes
from core.inference.sampler import SamplingConfig, generate
from core.model.gpt import GPT, GPTConfig
from core.settings.sampling import AUTO_CANDIDATES, choose_precision
from core.tokens.tokenizers import CharTokenizer, Tokenizer, get_tokenizer
from nanogpt_tui.bench.figures import print_figures

ROUNDS = 3  # each timed path runs this many times, alternating; its best run counts
BENCH_PROMPT = "To be, or not to be, that is the question:"
# The 65 characters of Tiny Shakespeare: with them the bench model is nanoGPT's shakespeare_char model.
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
GPT2_SIZED = GPTConfig(block_size=1024, vocab_size=50304, n_layer=12, n_head=12, n_embd=768, dropout=0.0)
SPEED_GOAL = 2.0  # x float32's cached tokens/sec
AUTO_GOAL = 1.0  # auto's choice against float32: never slower
LOSS_GOAL = 0.01  # relative val-loss change
QUALITY_WINDOWS = 16  # held-out windows of the block size the quality figures average over


def _bench_prompt(tokenizer: Tokenizer, block_size: int, n_tokens: int, most: int | None = None) -> str:
    """The bench prompt repeated and cut so that prompt + n_tokens fill the block (at most `most` tokens)."""
    ids = tokenizer.encode(BENCH_PROMPT * (block_size // 8 + 1))[: min(most or block_size, max(1, block_size - n_tokens))]
    return tokenizer.decode(ids)


Run = tuple[float, float, list[int]]  # seconds in all, seconds after the first token, token ids


def timed_generation(model: GPT, tokenizer: Tokenizer, prompt: str, n_tokens: int, device: torch.device,
                     use_cache: bool = True) -> Run:
    settings = SamplingConfig(max_new_tokens=n_tokens, temperature=0.8, seed=0)
    start = time.perf_counter()
    first = None
    ids = []
    for piece in generate(model, tokenizer, prompt, settings, device, use_cache=use_cache):
        ids.append(piece.token_id)
        first = first or time.perf_counter()  # the first token comes after the prompt's prefill
    end = time.perf_counter()
    return end - start, end - (first or end), ids


def _race(paths_: dict[str, Any], rounds: int) -> dict[str, list[Run]]:
    """Run each timed path (a function of the token count) `rounds` times, alternating, so a busy moment
    hurts none alone, after a short warm-up (one-off allocations and kernel selection are not timed)."""
    for run in paths_.values():
        run(2)
    runs: dict[str, list[Run]] = {name: [] for name in paths_}
    for _ in range(rounds):
        for name, run in paths_.items():
            runs[name].append(run(None))
    return runs


def _rates(runs: list[Run], n_tokens: int) -> str:
    return ", ".join(f"{n_tokens / t:.1f}" for t, _, _ in runs)


def _decode_rates(runs: list[Run], n_tokens: int) -> str:
    return ", ".join(f"{(n_tokens - 1) / t:.1f}" for _, t, _ in runs)


def _converted(model: GPT, precisions: list[str]) -> dict[str, GPT]:
    return {p: model if p == "float32" else to_precision(copy.deepcopy(model), p) for p in precisions}


def _speed(name: str, config: GPTConfig, tokenizer: Tokenizer, n_tokens: int, device: torch.device,
           precisions: list[str], rounds: int, with_uncached: bool, prompt_most: int | None = None) -> dict[str, Any]:
    """Cached tokens/sec per precision (and uncached float32 when asked) of a random-weight model: in all
    (prefill included) and decoding (the tokens after the first, each one cached step)."""
    torch.manual_seed(0)
    models = _converted(GPT(config).to(device).eval(), precisions)
    prompt = _bench_prompt(tokenizer, config.block_size, n_tokens, prompt_most)
    races = {p: (lambda n, m=m: timed_generation(m, tokenizer, prompt, n or n_tokens, device)) for p, m in models.items()}
    if with_uncached:
        races["float32 uncached"] = lambda n: timed_generation(models["float32"], tokenizer, prompt, n or n_tokens, device, False)
    runs = _race(races, rounds)
    best = {key: min(r) for key, r in runs.items()}
    torch.manual_seed(0)  # the same weights again, float32, for auto to convert itself
    reference = GPT(config).to(device).eval()
    stream = torch.tensor([tokenizer.encode(BENCH_PROMPT * (config.block_size // 8 + 1))[: config.block_size + 1]],
                          device=device)
    auto_model, trials = auto_precision(reference, stream)
    return {
        "name": name,
        "auto": choose_precision(trials),
        "auto_trials": trials,
        "params": models["float32"].get_num_params(),
        "prompt_tokens": len(tokenizer.encode(prompt)),
        "runs": runs,
        "tokens_per_s": {key: n_tokens / t for key, (t, _, _) in best.items()},
        "decode_tokens_per_s": {key: (n_tokens - 1) / min(d for _, d, _ in r) for key, r in runs.items()},
        "token_ids": {key: ids for key, (_, _, ids) in best.items()},
        "weight_mb": {p: weight_bytes(m) / 2**20 for p, m in models.items()},
    }


# -- quality ---------------------------------------------------------------------------------------


def _generated_text(size: int = 400_000) -> str:
    """Pseudo-English from a fixed set of words in a fixed order with noise: something a model can learn."""
    rng = np.random.default_rng(0)
    words = ["the", "king", "and", "queen", "of", "rome", "shall", "speak", "to", "thee", "my", "lord", "now"]
    chosen = rng.integers(0, len(words), size // 4)
    return " ".join(words[i] for i in chosen)[:size]


def _trained_model(text: str, iters: int, preset: str, device: str) -> tuple[GPT, np.ndarray]:
    """A model of `preset` trained `iters` steps on `text` (char-level, 90/10 split), in a throwaway data dir."""
    # The trainer only when a model is trained.
    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer

    tokenizer = CharTokenizer(sorted(set(text)))
    split = int(len(text) * 0.9)
    with paths.temporary_home("nanogpt-bench-quality-"):
        with DatasetWriter("quality", tokenizer) as writer:
            writer.append("train", np.asarray(tokenizer.encode(text[:split])))
            writer.append("val", np.asarray(tokenizer.encode(text[split:])))
            writer.commit("bench text", len(text), 0.1)
        config = from_preset(preset, dataset="quality", run_name="quality", device=device, max_iters=iters,
                             eval_interval=iters + 1, eval_iters=1, log_interval=iters, sample_interval=0)
        failures: list[Failed] = []
        trainer = Trainer(config, lambda e: failures.append(e) if isinstance(e, Failed) else None)
        trainer.run()
        if failures:
            raise RuntimeError(f"bench sample could not train its quality model: {failures[0].message}")
        val = np.asarray(open_split(load_dataset("quality"), "val"), dtype=np.int64)
        return trainer.built.model.eval(), val


def _checkpoint_model(checkpoint: str, device: torch.device) -> tuple[GPT, np.ndarray]:
    from core.runs.checkpoint import load_model, resolve_checkpoint

    model, _, ckpt = load_model(resolve_checkpoint(checkpoint), device)
    name = (ckpt.get("dataset") or {}).get("name")
    if not name:
        raise ValueError(f"checkpoint {checkpoint!r} does not name its dataset: no held-out text to measure on")
    return model, np.asarray(open_split(load_dataset(name), "val"), dtype=np.int64)


def _quality(model: GPT, val: np.ndarray, precisions: list[str], device: torch.device) -> dict[str, dict[str, float]]:
    """Per precision: top-1 agreement with float32 and val loss, on QUALITY_WINDOWS evenly spaced windows."""
    block = min(model.config.block_size, len(val) - 1)
    if block < 2:
        raise ValueError("the held-out text is too short to measure quality on")
    starts = np.linspace(0, len(val) - block - 1, QUALITY_WINDOWS).astype(np.int64)
    x = torch.from_numpy(np.stack([val[s : s + block] for s in starts])).to(device)
    y = torch.from_numpy(np.stack([val[s + 1 : s + block + 1] for s in starts])).to(device)
    results: dict[str, dict[str, float]] = {}
    reference = None
    with torch.inference_mode():
        for precision, converted in _converted(model, precisions).items():
            logits = converted(x, targets=y)[0].float()  # (B, T, V)
            loss = float(F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)))
            top1 = logits.argmax(-1)
            reference = top1 if reference is None else reference
            results[precision] = {"val_loss": loss, "agreement": float((top1 == reference).float().mean())}
    base = results["float32"]["val_loss"]
    for r in results.values():
        r["loss_change"] = (r["val_loss"] - base) / base
    return results


def bench_sample(
    n_tokens: int = 200,
    vocab: str = "char",
    device: str = "cpu",
    console: Console | None = None,
    *,
    precisions: list[str] | None = None,
    big: GPTConfig | None = GPT2_SIZED,
    big_tokens: int = 16,
    checkpoint: str | None = None,
    text: Path | None = None,
    quality_iters: int = 300,
    quality_preset: str = "cpu",
    rounds: int = ROUNDS,
    threads: int | None = None,
) -> dict[str, Any]:
    """The three tables of the module docstring; returns their figures.

    `vocab` is the 6-layer model's: "char" (Tiny Shakespeare's 65 characters) or "gpt2" (50304 padded
    ids). `big` is the GPT-2-sized model (None skips it); it generates `big_tokens` after a prompt
    of 32 tokens, so its slow float32 runs stay short. `precisions` default to all that auto chooses among.
    `threads` sets torch's CPU threads for the speed tables (on a machine shared with other busy
    processes, one thread is steadier than several waiting for each other); the default keeps torch's.
    """
    if vocab not in ("char", "gpt2"):
        raise ValueError(f"unknown vocabulary {vocab!r} for bench sample: use char or gpt2")
    if min(n_tokens, big_tokens) < 2:
        raise ValueError("bench sample needs at least 2 generated tokens to time decoding")
    precisions = ["float32", *[p for p in (precisions or AUTO_CANDIDATES) if p != "float32"]]
    for p in precisions:
        if p not in AUTO_CANDIDATES:
            raise ValueError(f"unknown precision {p!r}: use one of {', '.join(AUTO_CANDIDATES)}")
    if threads is not None and threads < 1:
        raise ValueError("threads must be at least 1")
    target = resolve_device(device)
    tokenizer: Tokenizer = get_tokenizer("gpt2") if vocab == "gpt2" else CharTokenizer(SHAKESPEARE_CHARS)
    vocab_size = 50304 if vocab == "gpt2" else tokenizer.vocab_size
    small = GPTConfig(block_size=256, vocab_size=vocab_size, n_layer=6, n_head=6, n_embd=384, dropout=0.0)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")  # busy machines skew timings

    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads or saved_threads)
    try:
        speed = [_speed(f"6 layers, 384 wide, {vocab}", small, tokenizer, n_tokens, target, precisions, rounds, True)]
        if big is not None:
            name = f"{big.n_layer} layers, {big.n_embd} wide, {big.vocab_size} ids"
            speed.append(_speed(name, big, get_tokenizer("gpt2"), big_tokens, target, precisions, rounds, False, 32))
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(saved_threads)
    first = speed[0]

    cached, uncached = first["tokens_per_s"]["float32"], first["tokens_per_s"]["float32 uncached"]
    result: dict[str, Any] = {
        "device": str(target), "threads": used_threads, "load_average": load_before,
        "vocab_size": vocab_size, "params": first["params"], "weight_mb": first["weight_mb"]["float32"],
        "prompt_tokens": first["prompt_tokens"], "new_tokens": n_tokens,
        "cached_tokens_per_s": cached, "uncached_tokens_per_s": uncached, "speedup": cached / uncached,
        "same_tokens": first["token_ids"]["float32"] == first["token_ids"]["float32 uncached"],
        "token_ids": first["token_ids"]["float32"], "speed": speed,
    }
    print_figures(
        f"bench sample: KV cache, 6 layers, 6 heads, 384 wide, block 256, random weights, {vocab} vocabulary",
        {
            "device": f"{result['device']} ({result['threads']} torch threads)",
            "load average before": f"{load_before:.2f}",
            "parameters": f"{result['params'] / 1e6:.1f} M",
            "tokens": f"{result['prompt_tokens']} prompt + {n_tokens} generated",
            "with KV cache (best)": f"{cached:.1f} tokens/s  (runs: {_rates(first['runs']['float32'], n_tokens)})",
            "without KV cache (best)": f"{uncached:.1f} tokens/s  "
            f"(runs: {_rates(first['runs']['float32 uncached'], n_tokens)})",
            # A cached step reads every weight once: at this rate, the memory traffic it implies.
            "weights read per cached token": f"{result['weight_mb']:.0f} MB, "
            f"{result['weight_mb'] * cached / 1024:.1f} GB/s at the cached rate",
            "speedup": f"{result['speedup']:.1f}x (goal >= 5x)",
            "same tokens": "yes" if result["same_tokens"] else "no (float rounding differs)",
        },
        console,
    )
    figures: dict[str, str] = {}
    instructions = fast_instructions() if target.type == "cpu" else {}
    figures["CPU instructions"] = f"torch uses {torch.backends.cpu.get_cpu_capability()}" + "".join(
        f"; {p} fast: {found}" for p, found in instructions.items())
    for s, tokens in zip(speed, [n_tokens, big_tokens]):
        base = s["decode_tokens_per_s"]["float32"]
        for p in precisions:
            rate = s["decode_tokens_per_s"][p]
            goal = "" if p == "float32" else f", {'ok' if rate >= SPEED_GOAL * base else 'missed'} (goal >= {SPEED_GOAL:g}x)"
            fast = f"; fast instructions: {instructions[p]}" if p in instructions else ""
            figures[f"{s['name']}: {p}"] = (
                f"{rate:.1f} tokens/s, {rate / base:.2f}x{goal}; {s['weight_mb'][p]:.0f} MB; "
                f"runs {_decode_rates(s['runs'][p], tokens)}; with prefill {s['tokens_per_s'][p]:.1f}{fast}"
            )
        chosen = s["auto"]
        best = max(precisions, key=lambda p: s["decode_tokens_per_s"][p])
        if chosen in s["decode_tokens_per_s"]:
            ratio = s["decode_tokens_per_s"][chosen] / base
            verdict = f"{ratio:.2f}x float32 here, {'ok' if ratio >= AUTO_GOAL else 'missed'} (goal >= {AUTO_GOAL:g}x)"
        else:
            verdict = "not timed in this table"
        figures[f"{s['name']}: auto"] = (
            f"chose {chosen}: {verdict}; the best here: {best} {s['decode_tokens_per_s'][best] / base:.2f}x")
    print_figures(f"bench sample: cached decoding tokens/s per precision (after the first token; prompt + new: "
                  f"{speed[0]['prompt_tokens']} + {n_tokens}" + (f", GPT-2-sized 32 + {big_tokens}" if big is not None else "")
                  + "), random weights", figures, console)

    if checkpoint:
        model, val = _checkpoint_model(checkpoint, target)
        source = f"checkpoint {checkpoint}, its dataset's val split"
    else:
        body = text.read_text(encoding="utf-8") if text is not None else _generated_text()
        model, val = _trained_model(body, quality_iters, quality_preset, str(target))
        source = (f"preset {quality_preset} trained {quality_iters} steps on "
                  + (f"{text.name}" if text is not None else "generated text (no Tiny Shakespeare found)")
                  + ", its last 10% held out")
    quality = _quality(model, val, precisions, target)
    result["quality"] = quality | {"source": source}
    figures = {"model": source, "held-out tokens": f"{QUALITY_WINDOWS} windows of {min(model.config.block_size, len(val) - 1)}"}
    for p, q in quality.items():
        goal = "" if p == "float32" else f" {'ok' if abs(q['loss_change']) <= LOSS_GOAL else 'missed'} (goal within {LOSS_GOAL:.0%})"
        figures[p] = f"val loss {q['val_loss']:.4f} ({q['loss_change']:+.3%}){goal}; top-1 agreement {q['agreement']:.1%}"
    print_figures("bench sample: quality per precision against float32", figures, console)
    return result
