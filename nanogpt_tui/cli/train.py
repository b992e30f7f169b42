"""`nanogpt-tui train`: a run in this process, its figures on a progress bar.

Ctrl-C, SIGTERM and SIGHUP (a closed terminal) all stop the run the same way: the trainer saves the
latest checkpoint, then the process ends by that signal (exit status 130, 143 or 129 in a shell), as
a program stopped by a signal should. More signals while it saves only wait for the save.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from nanogpt_tui.cli.common import console, err_console


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignals:
    """While installed (a context manager): Ctrl-C, SIGTERM and SIGHUP stop `trainer` once it is set,
    and are recorded in `received`; before that there is nothing to save, and they raise KeyboardInterrupt.

    The handler never raises while a trainer runs: an exception from a second quick Ctrl-C could land
    anywhere in the main thread, even in the code that waits for the save, and end the process mid-save.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.trainer: Any = None
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        if self.trainer is None:
            raise KeyboardInterrupt
        self.trainer.stop()  # a flag under the trainer's lock, which the main thread never holds

    def __enter__(self) -> StopSignals:
        self._previous = {signum: signal.signal(signum, self.handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def end_by_signal(signum: int) -> int:
    """End this process by `signum` with its default action (so a shell sees 128 + signum and a script
    running us stops too); where that is impossible, the status a shell would show."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return 128 + signum


def cmd_train(args: argparse.Namespace) -> int:
    from core.presets import from_preset
    from core.train_config import apply_overrides, config_from_dict
    from core.train_events import Failed, Finished

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
    config.validate()  # every out-of-range setting as one `error:`, before torch loads

    stops = StopSignals()
    try:
        with stops:
            event = train_with_progress(config, args.resume, stops)
    except KeyboardInterrupt:  # before the trainer started: nothing to save
        return end_by_signal(stops.received[0] if stops.received else signal.SIGINT)
    with contextlib.suppress(OSError):  # after a SIGHUP the terminal may be gone
        if isinstance(event, Failed):
            err_console.print(f"[red]Training failed[/] at iteration {event.iter}: {event.message}")
        elif isinstance(event, Finished):
            console.print(f"[green]Finished[/] ({event.reason}) at iteration {event.iter}.")
    if stops.received:  # stopped by a signal: the checkpoint is saved, now end as that signal would have
        return end_by_signal(stops.received[0])
    return 1 if isinstance(event, Failed) else 0


def train_with_progress(config: Any, resume: str | None, stops: StopSignals) -> Any:
    """Train with figures on a progress bar until the end or a stop signal (then the trainer stops,
    which saves); the Finished or Failed event."""
    from core.train_events import CheckpointSaved, Compiling, Eval, Failed, Finished, Sample, Started, Step
    from core.trainer import Trainer

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
            elif isinstance(event, (Finished, Failed)):
                outcome["event"] = event

        trainer = Trainer(config, on_event, resume=resume)
        done = threading.Event()

        def run() -> None:
            try:
                trainer.run()
            finally:
                done.set()

        stops.trainer = trainer
        threading.Thread(target=run, name="trainer", daemon=True).start()
        # The trainer thread is a daemon: leaving before it is done would kill it mid-save.
        told = 0
        while not done.wait(0.2):
            if len(stops.received) > told:
                say(bar, "Still saving the checkpoint: one moment…" if told else "Stopping: saving the latest checkpoint…")
                told = len(stops.received)
    return outcome.get("event")


def say(bar: Progress, text: str) -> None:
    """Print above the bar, unless the terminal is gone (after a SIGHUP printing can fail)."""
    with contextlib.suppress(OSError):
        bar.console.print(text)


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
