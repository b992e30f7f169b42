"""`nanogpt-tui train`: a run in this process, its figures on a progress bar; Ctrl-C saves and stops."""

from __future__ import annotations

import argparse
import dataclasses
import threading
from typing import Any, Callable

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from nanogpt_tui.cli.common import console, err_console


def wait_for_event(event: threading.Event, on_interrupt: Callable[[], None] | None = None) -> None:
    """Wait until `event` is set. Ctrl-C raises KeyboardInterrupt, unless `on_interrupt` is given: then
    it is called and the wait goes on."""
    while True:
        try:
            while not event.wait(0.2):
                pass
            return
        except KeyboardInterrupt:
            if on_interrupt is None:
                raise
            on_interrupt()


def cmd_train(args: argparse.Namespace) -> int:
    from core.presets import from_preset
    from core.train_config import apply_overrides, config_from_dict
    from core.train_events import CheckpointSaved, Compiling, Eval, Failed, Finished, Paused, Resumed, Sample, Started, Step
    from core.trainer import Trainer

    if args.resume:
        # A resumed run keeps its own settings; flags and --set change what they name (e.g. max_iters).
        from core.checkpoint import load_checkpoint, resolve_checkpoint

        base = config_from_dict(load_checkpoint(resolve_checkpoint(args.resume), mmap=True)["config"])
    else:
        base = from_preset(args.preset)
    overrides: dict[str, Any] = {}
    if args.dataset:
        overrides["dataset"] = args.dataset
    if args.device:
        overrides["device"] = args.device
    if args.dtype:
        overrides["dtype"] = args.dtype
    if args.name:
        overrides["run_name"] = args.name
    config = apply_overrides(dataclasses.replace(base, **overrides), args.set or [])
    if not config.dataset:
        err_console.print("[red]error:[/] name a dataset with --dataset (see `nanogpt-tui prepare`)")
        return 1

    outcome: dict[str, Any] = {}
    with Progress(
        TextColumn("[bold]iter {task.completed:>6.0f}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("{task.fields[figures]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=config.max_iters, figures="starting…")
        last: dict[str, str] = {"val": ""}

        def on_event(event: Any) -> None:
            # Runs in the trainer's thread; rich's Progress is thread-safe.
            if isinstance(event, Started):
                verb = "Resuming" if event.resumed else "Training"
                bar.console.print(
                    f"{verb} [bold]{event.run_dir.name}[/]: {event.n_params / 1e6:.2f}M parameters on "
                    f"{event.device} ({event.dtype}), iterations {event.start_iter}..{event.max_iters}"
                )
                bar.update(task, completed=event.start_iter, total=event.max_iters)
                incompatible = event.config.nanogpt_incompatible()
                if incompatible:
                    bar.console.print(f"[dim]uses {', '.join(incompatible)}: nanoGPT's model.py cannot load this run's checkpoints[/]")
            elif isinstance(event, Compiling):
                bar.update(task, figures="compiling the model (torch.compile)…")
            elif isinstance(event, Step):
                figures = (
                    f"loss {event.loss:.4f}{last['val']}  {event.tokens_per_sec:,.0f} tok/s  "
                    f"{event.iter_ms:.0f} ms  lr {event.lr:.2e}"
                )
                bar.update(task, completed=event.iter, figures=figures)
            elif isinstance(event, Eval):
                last["val"] = f"  val {event.val_loss:.4f}"
                bar.console.print(
                    f"step {event.iter}: train loss {event.train_loss:.4f}, val loss {event.val_loss:.4f} "
                    f"(best {event.best_val_loss:.4f})"
                )
            elif isinstance(event, Sample):
                bar.console.print(f"[dim]--- sample at step {event.iter} ---[/]\n{event.text}\n[dim]---[/]")
            elif isinstance(event, CheckpointSaved):
                bar.console.print(f"[dim]saved {event.kind} checkpoint {event.path}[/]")
            elif isinstance(event, (Paused, Resumed)):  # asked for from the app's Watch screen (control.json)
                verb = "[yellow]paused[/] (the app's Watch screen resumes it)" if isinstance(event, Paused) else "resumed"
                bar.console.print(f"{verb} at iteration {event.iter}")
            elif isinstance(event, (Finished, Failed)):
                outcome["event"] = event

        trainer = Trainer(config, on_event, resume=args.resume)
        # The main thread waits on an Event, not Thread.join(timeout): a Ctrl-C that interrupts join()
        # can leave it reporting the thread finished while it still runs (and is then killed mid-save).
        done = threading.Event()

        def run() -> None:
            try:
                trainer.run()
            finally:
                done.set()

        threading.Thread(target=run, name="trainer", daemon=True).start()
        try:
            wait_for_event(done)
        except KeyboardInterrupt:
            bar.console.print("Stopping: saving the latest checkpoint…")
            trainer.stop()
            # The trainer thread is a daemon: leaving now would kill it mid-save, so more Ctrl-Cs only wait.
            wait_for_event(done, lambda: bar.console.print("Still saving the checkpoint: one moment…"))

    event = outcome.get("event")
    if isinstance(event, Failed):
        err_console.print(f"[red]Training failed[/] at iteration {event.iter}: {event.message}")
        return 1
    if isinstance(event, Finished):
        console.print(f"[green]Finished[/] ({event.reason}) at iteration {event.iter}.")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a prepared dataset")
    p.add_argument("--dataset", help="a dataset name or folder (default when resuming: the run's)")
    p.add_argument("--preset", default="cpu", help="starting settings: cpu, fast, tiny, shakespeare-char (--set changes any)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--name", help="run name (default: dataset and time)")
    p.add_argument("--resume", metavar="RUN", help="continue a run (name, folder or ckpt.pt)")
    p.set_defaults(func=cmd_train)
