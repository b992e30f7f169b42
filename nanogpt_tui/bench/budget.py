"""`nanogpt-tui bench budget`: training to a time budget against the presets given the same wall time.

For each budget, on Tiny Shakespeare (char) in a throwaway data dir, one after another:
- a run with that `budget_s` (it measures candidates, chooses, trains on the clock and ends by itself);
- each preset (`fast`, `cpu`) as shipped, its own evals and samples included, stopped when the same
  wall time has passed (or at its own end, if sooner).
Wall time runs from the Trainer's start to its end (setup, measuring, evals and checkpoints included).
A budget under ROUNDS_BELOW_S runs `rounds` times (the budget first, then the presets; the next round the
other way round): in seconds a busy moment of a shared machine decides, so each side's median run is
shown, with the others' val losses beside it. Longer budgets run once (a 5-minute round takes 15 minutes).
Every model is then measured on the same fixed val windows (speedrun's: 640 windows drawn with
EVAL_SEED), outside the timed part. torch's one-off imports are done before the first run.
Goals (GOALS): the budget's val loss is lower than every preset's in the same time, and within
7 s at most 1.88 (nanoGPT's CPU recipe's result), within 60 s at most 1.60.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from core.common import paths
from core.runs.events import Event, Failed, Finished, Started
from core.settings.budget import format_duration
from core.settings.presets import from_preset
from core.settings.train_config import TrainConfig
from core.training.budget import load_lazily_imported
from core.training.evaluation import estimate_loss
from core.training.trainer import Trainer
from nanogpt_tui.bench.figures import print_figures
from nanogpt_tui.bench.speedrun import EVAL_SEED, write_char_dataset

BUDGETS = (7.0, 15.0, 60.0, 300.0)
PRESETS = ("fast", "cpu")
GOALS = {7.0: 1.88, 60.0: 1.60}  # budget seconds -> the val loss to reach within it
EVAL_BATCHES, EVAL_BATCH_SIZE = 10, 64
ROUNDS_BELOW_S = 60.0  # budgets shorter than this run `rounds` times
DATASET = "budget"


@dataclass
class TimedRun:
    """One run's outcome: wall seconds, iterations, val loss on the fixed windows, and what it was."""

    name: str
    wall_s: float = 0.0
    iters: int = 0
    val_loss: float = float("inf")
    what: str = ""  # a budget's choice, a preset's shape
    failure: str | None = None
    others: list[float] = field(default_factory=list)  # the val losses of the other rounds, when there were some


def median_run(runs: list[TimedRun]) -> TimedRun:
    """The run with the median val loss (the lower middle one of an even count), holding the others' losses;
    the first failure if any run failed (a failure is not noise)."""
    failed = [run for run in runs if run.failure]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda run: run.val_loss)
    middle = ordered[(len(ordered) - 1) // 2]
    middle.others = [run.val_loss for run in ordered if run is not middle]
    return middle


def timed_run(name: str, config: TrainConfig, stop_after: float | None) -> TimedRun:
    """Train `config`, stopping it `stop_after` seconds after its start when given; measure its val loss."""
    result = TimedRun(name)

    def on_event(event: Event) -> None:
        if isinstance(event, Started):
            result.what = (event.plan.splitlines()[0].removeprefix("budget: chose ").split(":")[0] if event.plan else
                           f"{event.config.n_layer}x{event.config.n_embd}, batch {event.config.batch_size}")
        elif isinstance(event, Finished):
            result.iters = event.iter
        elif isinstance(event, Failed):
            result.failure = event.message

    trainer = Trainer(config, on_event)
    timer = threading.Timer(stop_after, trainer.stop) if stop_after is not None else None
    started = time.perf_counter()
    if timer is not None:
        timer.start()
    trainer.run()
    result.wall_s = time.perf_counter() - started
    if timer is not None:
        timer.cancel()
    if result.failure is None and trainer.built is not None:
        built = trainer.built
        result.val_loss = estimate_loss(built.model, {"val": built.data["val"]}, built.config.block_size,
                                        EVAL_BATCH_SIZE, EVAL_BATCHES, EVAL_SEED, built.device, built.autocast)["val"]
    return result


def bench_budget(text: Path, budgets: tuple[float, ...] = BUDGETS, presets: tuple[str, ...] = PRESETS,
                 console: Console | None = None, rounds: int = 3) -> dict[float, list[TimedRun]]:
    """Each budget's run and each preset's in the same wall time, the short budgets `rounds` times (module
    docstring); print and return each side's median run, the budget's first."""
    if rounds < 1:
        raise ValueError(f"bench budget needs at least 1 round (got {rounds})")
    load_lazily_imported()
    results: dict[float, list[TimedRun]] = {}
    with paths.temporary_home("nanogpt-bench-budget-"):
        write_char_dataset(DATASET, text.read_text(encoding="utf-8"))
        for budget in budgets:
            sides = [f"budget {format_duration(budget)}", *presets]
            done: dict[str, list[TimedRun]] = {side: [] for side in sides}
            for round_ in range(rounds if budget < ROUNDS_BELOW_S else 1):
                for side in sides if round_ % 2 == 0 else sides[::-1]:
                    name = f"{side.split()[0]}-{budget:g}-{round_}"
                    if side in presets:
                        config = from_preset(side, dataset=DATASET, run_name=name, device="cpu")
                        done[side].append(timed_run(side, config, budget))
                    else:
                        config = TrainConfig(dataset=DATASET, budget_s=budget, run_name=name, device="cpu")
                        done[side].append(timed_run(side, config, None))
            results[budget] = [median_run(done[side]) for side in sides]
    report(results, console)
    return results


def verdict(budget: float, runs: list[TimedRun]) -> str:
    """Whether the budget's run beat every preset, and reached its GOALS value if it has one."""
    own, others = runs[0], runs[1:]
    beaten = all(own.val_loss < other.val_loss for other in others)
    parts = [f"{'ok' if beaten else 'missed'} (goal: lower than {', '.join(o.name for o in others)})"] if others else []
    if budget in GOALS:
        parts.append(f"{'ok' if own.val_loss <= GOALS[budget] else 'missed'} (goal <= {GOALS[budget]})")
    return "; ".join(parts)


def report(results: dict[float, list[TimedRun]], console: Console | None = None) -> None:
    figures = {"device": f"cpu ({torch.get_num_threads()} torch threads)"}
    for budget, runs in results.items():
        for run in runs:
            if run.failure:
                figures[f"{format_duration(budget)}: {run.name}"] = f"failed: {run.failure}"
                continue
            others = f" (median; the other rounds {', '.join(f'{v:.3f}' for v in run.others)})" if run.others else ""
            figures[f"{format_duration(budget)}: {run.name}"] = (
                f"val {run.val_loss:.3f}{others}, {run.iters:,} iterations, {run.wall_s:.1f} s wall ({run.what})")
        figures[f"{format_duration(budget)}: verdict"] = verdict(budget, runs)
    print_figures(f"bench budget: Tiny Shakespeare (char), val loss on {EVAL_BATCHES * EVAL_BATCH_SIZE} fixed windows "
                  "after a budget run and after each preset stopped at the same wall time", figures, console)
