"""`nanogpt-tui ladder`: "Let's build GPT" as an experiment, each step trained and its val loss compared.

The steps (core.training.ladder's plan) train one after another in this process, each an ordinary run
(`ladder-STAMP-N-ARCH`) with a progress bar, then a table says what each step reached beside the
dataset's reference losses (core.dataset.baseline). Ctrl-C, SIGTERM or SIGHUP stop the step training
(it saves its checkpoint, as `train` does), skip the rest, print the table so far and end by the signal.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.training.stop_signals import end_by_signal
from nanogpt_tui.cli.common import Subcommands, console, err_console
from nanogpt_tui.cli.train import StopSignals

if TYPE_CHECKING:
    from core.dataset.baseline import Baseline
    from core.settings.train_config import TrainConfig
    from core.training.ladder import LadderResults


def cmd_ladder(args: argparse.Namespace) -> int:
    from core.dataset.baseline import baseline
    from core.dataset.format import load_dataset
    from core.settings.train_config import apply_overrides
    from core.training.ladder import DEFAULT_ITERS, LadderResults, ladder_plan

    iters = args.iters if args.iters is not None else DEFAULT_ITERS
    plan = [apply_overrides(config, args.set or []) for config in ladder_plan(args.dataset, iters, device=args.device or "auto")]
    for config in plan:
        config.validate()  # every out-of-range setting (iters, device name) before anything trains
    reference = baseline(load_dataset(args.dataset))
    results = LadderResults.of(plan)
    console.print(f"The ladder on [bold]{args.dataset}[/]: {len(plan)} steps of {iters:,} iterations each, "
                  f"batch {plan[0].batch_size} x block {plan[0].block_size}, seed {plan[0].seed}")
    with StopSignals() as stops:
        for index, config in enumerate(plan):
            try:
                train_step(index, config, results, stops)
            except KeyboardInterrupt:  # before the step's trainer started: nothing to save
                stops.received = stops.received or [2]
            if stops.received or results.steps[index].status == "failed":
                break
        print_results(results, reference)
        if stops.received:
            return end_by_signal(stops.received[0])
    return 1 if any(step.status == "failed" for step in results.steps) else 0


def train_step(index: int, config: TrainConfig, results: LadderResults, stops: StopSignals) -> None:
    """Train one step with a progress bar, recording its events in `results`; returns when it ended."""
    from core.runs.events import Eval, Failed, Started, Step
    from core.training.trainer import Trainer

    step = results.steps[index]
    started = time.perf_counter()
    label = f"{index + 1}/{len(results.steps)} {config.arch:<9}"
    with Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), TextColumn("{task.fields[figures]}"),
                  TimeElapsedColumn(), console=console,
                  disable=not console.show_progress) as bar:  # piped: the printed lines and the table alone
        task = bar.add_task(config.arch, total=config.max_iters, figures="starting…")

        def on_event(event: Any) -> None:  # the trainer's thread; rich's Progress is thread-safe
            results.record(index, event)
            if isinstance(event, Started):
                bar.console.print(f"[dim]{label} {step.adds}: {event.n_params:,} parameters, run {event.run_dir.name}[/]")
            elif isinstance(event, Step):
                val = f"  val {step.val_loss:.3f}" if math.isfinite(step.val_loss) else ""
                bar.update(task, completed=event.iter + 1, figures=f"loss {event.loss:.3f}{val}")
            elif isinstance(event, Eval):
                bar.update(task, figures=f"val {event.val_loss:.3f}")
            elif isinstance(event, Failed):
                with contextlib.suppress(OSError):
                    err_console.print(f"[red]step {config.arch} failed[/] at iteration {event.iter}: {event.message}")

        trainer = Trainer(config, on_event)
        stops.trainer = trainer
        try:
            trainer.run()  # in this thread: a signal only sets the trainer's stop flag (StopSignals)
        finally:
            stops.trainer = None
    step.seconds = time.perf_counter() - started
    if not console.show_progress and math.isfinite(step.val_loss):  # piped: what the bar would have ended on
        console.print(f"{label} val {step.val_loss:.4f} in {step.seconds:.0f} s")


def results_table(results: LadderResults, reference: Baseline | None) -> Table:
    """Each step's val loss, its change from the step before, bits per byte and parameters."""
    table = Table(title="val loss per step (nats per token; lower is better)", title_justify="left")
    for name, justify in (("step", "left"), ("adds", "left"), ("params", "right"), ("val loss", "right"),
                          ("change", "right"), ("bits/byte", "right"), ("time", "right"), ("run", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "adds")  # type: ignore[arg-type]
    for i, step in enumerate(results.steps):
        done = math.isfinite(step.val_loss)
        change = results.change(i)
        bpb = reference.bits_per_byte(step.val_loss) if reference is not None and done else math.nan
        table.add_row(
            f"{i + 1} {step.arch}", step.adds, f"{step.n_params:,}" if step.n_params else "",
            f"{step.val_loss:.4f}" if done else step.status,
            f"{change:+.4f}" if math.isfinite(change) else "",
            f"{bpb:.3f}" if math.isfinite(bpb) else "",
            f"{step.seconds:.0f} s" if step.seconds else "",
            step.run_dir.name if step.run_dir else "",
        )
    return table


def print_results(results: LadderResults, reference: Baseline) -> None:
    with contextlib.suppress(OSError):  # after a SIGHUP the terminal may be gone
        console.print_whole(results_table(results, reference))
        console.print(f"references: a uniform guess ln({reference.vocab_size:,}) = {reference.uniform:.4f}; "
                      f"the count-based bigram of train scores {reference.bigram:.4f} on val")
        total = sum(step.seconds for step in results.steps)
        console.print(f"{total:.0f} s in all. The runs are on the Checkpoints screen: mark them (space) and "
                      "press C to overlay their curves.")


def add_commands(sub: Subcommands) -> None:
    from core.training.ladder import DEFAULT_ITERS

    p = sub.add_parser("ladder", help="train the steps of \"Let's build GPT\" (bigram ... GPT) and compare their val loss",
                       description="Train each step of the lecture, from a bigram table to the full GPT, on the same "
                       "data, batch, block, iterations and seed, one run per step (ladder-STAMP-N-STEP), then print "
                       "the val loss each reached.")
    p.add_argument("--dataset", required=True, help="a prepared dataset's name or folder")
    p.add_argument("--iters", type=int, metavar="N", help=f"iterations per step (default {DEFAULT_ITERS})")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="change a setting of every step alike, e.g. batch_size=32 (repeatable)")
    p.set_defaults(func=cmd_ladder)
