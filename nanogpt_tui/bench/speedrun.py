"""`nanogpt-tui bench speedrun`: presets raced to a validation loss on Tiny Shakespeare (char level).

Each preset trains with the real Trainer, in a throwaway data dir, until its val loss is at most the
target. Every `eval_every` iterations the race measures the val loss on the same fixed batches for
every preset (`eval_batches` windows of the block size, drawn from a generator seeded with
`EVAL_SEED`, `eval_batch_size` at a time), whatever the preset's own batch size; the trainer's own
evals are switched off. Once the val loss is within `NEAR` of the target it measures every
`eval_every // 5` iterations, so the crossing is caught closely without paying for close evals all
along (an eval of 640 windows costs about as much as 13 training steps of the cpu preset). A preset that has not reached the target by its `max_iters` (or `cap`) is
reported as "not reached". Evaluation time is shown apart and included in the wall time; setup
(dataset, model build) and the final checkpoint save are not. The goal (FAST_GOAL_S) is on `fast`'s
training time to the target: the wall time less the race's own evals, which measure and are no part of
the recipe (the preset's own evals are off in the race).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from core.common import paths
from core.dataset.format import DatasetWriter
from core.inference.sampler import SamplingConfig, generate
from core.runs.events import Event, Failed, Started, Step
from core.settings.presets import from_preset
from core.tokens.tokenizers import CharTokenizer
from core.training.evaluation import estimate_loss
from core.training.trainer import Trainer
from nanogpt_tui.bench.figures import print_figures

TARGET = 1.88  # nanoGPT's README: the CPU recipe's val loss after 2000 iterations
EVAL_SEED = 1338  # the trainer's eval seed (seed + 1) for the default seed
SAMPLE_SEED = 1337
NEAR = 0.03  # within this of the target, evaluate 5x as often
FAST_GOAL_S = 7.0  # fast's training time to the target, on the 2-core machine this was built on


@dataclass
class RaceResult:
    preset: str
    reached: bool = False
    iters: int = 0  # iterations trained (to the crossing, or all of them)
    val_loss: float = float("inf")  # the last measured
    seconds: float = 0.0  # training + evals
    eval_seconds: float = 0.0
    evals: list[tuple[int, float]] = field(default_factory=list)
    sample: str = ""
    failure: str | None = None

    @property
    def train_seconds(self) -> float:
        """The wall time less the race's evals."""
        return self.seconds - self.eval_seconds

    @property
    def iter_ms(self) -> float:
        return 1000 * self.train_seconds / max(1, self.iters)


def write_char_dataset(name: str, text: str, val_fraction: float = 0.1) -> None:
    """A character-level dataset split as `prepare` splits it (the first 90% train), in the current data dir."""
    tokenizer = CharTokenizer.from_text(text)
    split = int(len(text) * (1 - val_fraction))
    with DatasetWriter(name, tokenizer) as writer:
        writer.append("train", tokenizer.encode_array(text[:split]))
        writer.append("val", tokenizer.encode_array(text[split:]))
        writer.commit("tinyshakespeare", len(text), val_fraction)


def race(
    preset: str, target: float, eval_every: int, eval_batches: int, eval_batch_size: int,
    cap: int | None, sample_tokens: int, **overrides: Any,
) -> RaceResult:
    """Train `preset` on the "speedrun" dataset until val <= target (or its max_iters / cap)."""
    config = from_preset(preset, dataset="speedrun", run_name=preset, sample_interval=0, **overrides)
    if cap is not None:
        config.max_iters = min(config.max_iters, cap)
    # The trainer's evals off (only its first and last, on one batch): the race measures its own.
    config.eval_interval, config.eval_iters = config.max_iters + 1, 1
    result = RaceResult(preset)
    clock: dict[str, float] = {}
    trainer: Trainer

    def on_event(event: Event) -> None:
        if isinstance(event, Started):
            clock["start"] = time.perf_counter()
        elif isinstance(event, Failed):
            result.failure = event.message
        elif isinstance(event, Step):
            done = event.iter + 1  # the model has taken this many steps
            result.iters = done
            every = max(1, eval_every // 5) if result.val_loss <= target + NEAR else eval_every
            if done % every and done != config.max_iters:
                return
            started = time.perf_counter()
            built = trainer.built
            val = estimate_loss(built.model, {"val": built.data["val"]}, config.block_size, eval_batch_size,
                                eval_batches, EVAL_SEED, built.device, built.autocast)["val"]
            result.eval_seconds += time.perf_counter() - started
            result.evals.append((done, val))
            result.val_loss = val
            result.seconds = time.perf_counter() - clock["start"]
            if val <= target:
                result.reached = True
                trainer.stop()

    trainer = Trainer(config, on_event)
    trainer.run()
    if result.failure is None and trainer.built is not None and sample_tokens:
        settings = SamplingConfig(max_new_tokens=sample_tokens, temperature=0.8, seed=SAMPLE_SEED)
        model = trainer.built.model.eval()
        result.sample = "".join(p.text for p in generate(model, trainer.built.tokenizer, "\n", settings, trainer.built.device))
    return result


def speedrun(
    text: str | Path,
    presets: tuple[str, ...] = ("cpu", "fast"),
    target: float = TARGET,
    eval_every: int = 50,
    eval_batches: int = 10,
    eval_batch_size: int = 64,
    cap: int | None = None,
    sample_tokens: int = 200,
    console: Console | None = None,
    **overrides: Any,
) -> dict[str, RaceResult]:
    """Race `presets` to val loss <= target on `text` (a path or the text itself); print and return the results.

    `cap` limits every preset's iterations; `overrides` change every preset's settings (tests use both
    to make a smoke run of a few seconds).
    """
    body = Path(text).read_text(encoding="utf-8") if isinstance(text, Path) else text
    results: dict[str, RaceResult] = {}
    with paths.temporary_home("nanogpt-speedrun-"):
        write_char_dataset("speedrun", body)
        for preset in presets:
            results[preset] = race(preset, target, eval_every, eval_batches, eval_batch_size, cap, sample_tokens,
                                   **overrides)
    report(results, target, eval_every, eval_batches * eval_batch_size, console)
    return results


def report(results: dict[str, RaceResult], target: float, eval_every: int, eval_windows: int,
           console: Console | None = None) -> None:
    console = console or Console()
    figures = {"device": f"{'cuda' if torch.cuda.is_available() else 'cpu'} ({torch.get_num_threads()} torch threads)"}
    for name, r in results.items():
        if r.failure:
            figures[name] = f"failed: {r.failure}"
            continue
        outcome = f"val {r.val_loss:.3f} at iteration {r.iters}" if r.reached else \
            f"not reached: val {r.val_loss:.3f} after {r.iters} iterations"
        figures[name] = (f"{outcome}, {r.train_seconds:.1f} s of training ({r.seconds:.1f} s with the race's "
                         f"{r.eval_seconds:.1f} s of evals), {r.iter_ms:.1f} ms/iter")
        if name == "fast":
            ok = r.reached and r.train_seconds <= FAST_GOAL_S
            figures["fast: goal"] = f"{'ok' if ok else 'missed'} (goal: training time to the target <= {FAST_GOAL_S:g} s)"
    names = [n for n in results if not results[n].failure]
    if len(names) == 2:
        first, second = (results[n] for n in names)
        # A run that did not get there stopped early: its time is a lower bound, and so the ratio an upper one.
        bound = "" if first.reached else "at most "
        if second.reached:
            figures["time ratio"] = (f"{second.preset} / {first.preset} = {bound}{second.seconds / first.seconds:.2f} "
                                     f"(training alone: {bound}"
                                     f"{(second.seconds - second.eval_seconds) / (first.seconds - first.eval_seconds):.2f})")
            figures["iteration ratio"] = f"{second.preset} / {first.preset} = {bound}{second.iters / first.iters:.2f}"
    print_figures(f"bench speedrun: to val loss <= {target} (the same {eval_windows} val windows every "
                  f"{eval_every} iterations, every {max(1, eval_every // 5)} within {NEAR} of it)", figures, console)
    for name, r in results.items():
        if r.sample:
            console.rule(f"{name}: sample at val {r.val_loss:.3f}")
            console.print(r.sample, markup=False, highlight=False)
