"""`nanogpt-tui train`: a run in this process, its figures on a progress bar.

Ctrl-C, SIGTERM and SIGHUP (a closed terminal) all stop the run the same way: the trainer saves the
latest checkpoint, then the process ends by that signal (exit status 130, 143 or 129 in a shell), as
a program stopped by a signal should. More signals while it saves only wait for the save.

Under torchrun every process runs this command: rank 0 shows the run, the others only their failures.
`--nproc N` starts torchrun (torch.distributed.run) with N processes running the same command.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import threading
from typing import TYPE_CHECKING, Any, NoReturn

from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from core.common import paths
from core.settings.presets import PRESETS
from core.training.stop_signals import end_by_signal, flush_output
from nanogpt_tui.cli.common import Subcommands, console, err_console, error_line

if TYPE_CHECKING:
    from core.settings.train_config import TrainConfig
    from core.training.distributed import Distributed

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


def cmd_train(args: argparse.Namespace) -> int:
    from core.dataset.format import load_dataset
    from core.interop.gpt2_files import find_hf_folder
    from core.runs.events import Failed, Finished
    from core.settings.presets import from_preset
    from core.settings.train_config import apply_overrides, config_from_dict
    from core.training.distributed import from_env

    budget = None if args.budget is None else budget_seconds(args)  # its mistakes first: before reading a checkpoint
    if args.meta and not args.resume:
        err_console.print("[red]error:[/] --meta gives the vocabulary of a nanoGPT checkpoint to resume: use it with --resume")
        return 1
    if args.resume:
        # A resumed run keeps its own settings; flags and --set change what they name (e.g. max_iters).
        from core.runs.checkpoint import load_checkpoint, resolve_checkpoint

        base = config_from_dict(load_checkpoint(resolve_checkpoint(args.resume, args.meta), mmap=True, meta=args.meta)["config"])
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
    if args.init_from:
        overrides["init_from"] = args.init_from
    if args.resume:
        overrides["budget_s"] = 0.0  # a budget run's model trains on by iterations (its max_iters, or --set)
    if budget is not None:
        overrides["budget_s"] = budget
    config = apply_overrides(dataclasses.replace(base, **overrides), args.set or [])
    if not config.dataset:
        err_console.print(error_line("name a dataset with --dataset (see `nanogpt-tui prepare`)"))
        return 1
    if args.nproc is not None:
        return launch_torchrun(args, config)
    place = from_env()  # this process's rank when torchrun started it
    config.validate(world_size=place.world_size)  # every out-of-range setting as one `error:`, before torch loads
    load_dataset(config.dataset)  # a usage error (`no dataset called X; you have: ...`), not a failed run
    if config.init_from and not args.resume:
        found = find_hf_folder(config.init_from)
        if isinstance(found, str):
            err_console.print(error_line(found))
            return 1

    # The handlers stay until the process ends by the signal: a late Ctrl-C of a quick series, arriving
    # after the save, must not become a KeyboardInterrupt while the outcome is printed.
    with StopSignals() as stops:
        try:
            event = train_with_progress(config, args.resume, stops, place, args.meta)
        except KeyboardInterrupt:  # before the trainer started: nothing to save
            return end_by_signal(stops.received[0] if stops.received else signal.SIGINT)
        with contextlib.suppress(OSError):  # after a SIGHUP the terminal may be gone
            if isinstance(event, Failed):
                where = f" on rank {place.rank}" if place.enabled else ""
                err_console.print(f"[red]Training failed[/]{where} at iteration {event.iter}: {escape(event.message)}")
            elif isinstance(event, Finished) and place.is_main:
                console.print(f"[green]Finished[/] ({event.reason}) at iteration {event.iter}.")
        if stops.received:  # stopped by a signal: the checkpoint is saved, now end as that signal would have
            return end_by_signal(stops.received[0])
        status = 1 if isinstance(event, Failed) else 0
        if place.enabled:
            exit_rank(status)
    return status


def budget_seconds(args: argparse.Namespace) -> float:
    """--budget in seconds; ConfigError when it is no duration, or comes with settings the budget chooses."""
    from core.settings.budget import CHOSEN_KEYS, parse_duration
    from core.settings.train_config import ConfigError

    chosen = sorted({item.partition("=")[0].strip() for item in args.set or []} & CHOSEN_KEYS)
    if args.resume or args.init_from or chosen:
        given = "--resume" if args.resume else "--init-from" if args.init_from else f"--set {chosen[0]}"
        raise ConfigError(f"--budget chooses the model and its recipe: leave out {given}", "budget_s")
    return parse_duration(args.budget)


def exit_rank(status: int) -> NoReturn:
    """End a torchrun rank at once, without tearing torch down (the trainer has saved and closed its files).

    DDP's reducer is the last holder of the gloo process group, whose destructor then runs with the GIL
    held and waits for a worker thread that may need the GIL to free a finished all-reduce: a deadlock,
    seen here as a finished run whose ranks never exited (pytorch/pytorch#56297).
    """
    flush_output()
    os._exit(status)


def train_with_progress(
    config: TrainConfig, resume: str | None, stops: StopSignals, place: Distributed, meta: str | None = None,
) -> Any:
    """Train with figures on a progress bar (rank 0's) until the end or a stop signal (then the trainer
    stops, which saves); the Finished or Failed event."""
    from core.runs.events import (
        CheckpointSaved,
        Compiling,
        Eval,
        Failed,
        Finished,
        Paused,
        Sample,
        Started,
        Step,
        Unpaused,
    )
    from core.settings.budget import format_duration
    from core.training.trainer import Trainer

    outcome: dict[str, Any] = {}
    with Progress(
        TextColumn("[bold]iter {task.completed:>6.0f}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("{task.fields[figures]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not (place.is_main and console.show_progress),  # piped: the printed lines alone
    ) as bar:
        starting = (f"measuring this machine's speed for the budget of {format_duration(config.budget_s)}…"
                    if config.budget_s else "starting…")
        task = bar.add_task("train", total=config.max_iters, figures=starting)
        last: dict[str, str] = {"val": ""}

        def on_event(event: Any) -> None:
            # Runs in the trainer's thread; rich's Progress is thread-safe.
            if isinstance(event, (Finished, Failed)):
                outcome["event"] = event
            elif not place.is_main:
                return  # rank 0 shows the run
            elif isinstance(event, Started):
                verb = "Resuming" if event.resumed else "Training"
                bar.console.print(
                    f"{verb} [bold]{event.run_dir.name}[/]: {event.n_params / 1e6:.2f}M parameters on "
                    f"{event.device} ({event.dtype}), iterations {event.start_iter}..{event.max_iters}"
                )
                if event.config.init_from and not event.resumed:
                    bar.console.print(f"starting from the GPT-2 weights in {event.config.init_from}")
                if event.plan:
                    bar.console.print(event.plan)
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
            elif isinstance(event, (Paused, Unpaused)):  # asked for from the app's Watch screen (control.json)
                verb = "[yellow]paused[/] (the app's Watch screen unpauses it: u)" if isinstance(event, Paused) else "unpaused"
                bar.console.print(f"{verb} at iteration {event.iter}")

        trainer = Trainer(config, on_event, resume=resume, meta=meta)
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
                if place.is_main:
                    say(bar, "Still saving the checkpoint: one moment…" if told else "Stopping: saving the latest checkpoint…")
                told = len(stops.received)
    return outcome.get("event")


def say(bar: Progress, text: str) -> None:
    """Print above the bar, unless the terminal is gone (after a SIGHUP printing can fail)."""
    with contextlib.suppress(OSError):
        bar.console.print(text)


def torchrun_args(args: argparse.Namespace) -> list[str]:
    """torchrun's arguments for `--nproc N`: N processes on this machine, each running this train command."""
    flags = []
    for name in ("dataset", "preset", "device", "dtype", "name", "resume", "meta", "init_from", "budget"):
        if getattr(args, name) is not None:
            flags += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    for item in args.set or []:
        flags += ["--set", item]
    return ["--standalone", f"--nproc-per-node={args.nproc}", "--module", "nanogpt_tui.cli",
            "--home", str(paths.home()), "train", *flags]


def launch_torchrun(args: argparse.Namespace, config: TrainConfig) -> int:
    """Run torchrun in this process; when a rank fails, say which and how (torchrun stops the others)."""
    from core.dataset.format import load_dataset
    from core.training.distributed import Distributed, DistributedError, device_for, from_env

    if from_env().enabled:
        raise DistributedError("this process already runs under torchrun: leave out --nproc")
    if args.nproc < 1:
        raise DistributedError(f"--nproc must be at least 1 (it is {args.nproc})")
    # What every process would refuse alike is said once, here, before starting them.
    config.validate(world_size=args.nproc)  # e.g. gradient_accumulation_steps must divide
    load_dataset(config.dataset)
    last = args.nproc - 1  # the last process needs the highest GPU number
    device_for(Distributed(last, last, args.nproc, args.nproc, enabled=True), config.device)

    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from core.common.devices import cpu_count

    # torchrun gives each process 1 thread unless told; the trainer shares the cores out itself (CPU runs).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu_count() // args.nproc)))
    try:
        run(parse_args(torchrun_args(args)))
    except ChildFailedError as error:
        rank, failure = first_cause(error)
        how = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with status {failure.exitcode}")
        err_console.print(f"[red]error:[/] distributed training failed: rank {rank} (pid {failure.pid}) {how}, "
                          "so torchrun stopped the others; checkpoints already written are kept")
        return 1
    except SignalException as received:  # torchrun passed it on to the ranks, which saved
        err_console.print(f"Stopped by signal {received.sigval.name}.")
        return end_by_signal(received.sigval)
    return 0


def first_cause(error: Any) -> tuple[int, Any]:
    """The failed rank (and its ProcessFailure) of a torchrun ChildFailedError that most likely caused the
    others: one killed by a signal before those that then failed for want of it, else the earliest. (torchrun
    times failures to the second and may find them all in one look: its own "first" is then rank 0's.)"""
    return min(error.failures.items(), key=lambda item: (item[1].exitcode >= 0, item[1].timestamp))


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("train", help="train a model on a prepared dataset (on many GPUs: --nproc, or torchrun)",
                       description="Train a model on a prepared dataset. Under torchrun each process runs this "
                       "command (e.g. torchrun --standalone --nproc-per-node=8 -m nanogpt_tui.cli train ...): "
                       "DDP, rank 0 writes the run; gradient_accumulation_steps is split among the processes.")
    p.add_argument("--dataset", help="a dataset name or folder (default when resuming: the run's)")
    p.add_argument("--preset", default="cpu", help=f"starting settings: {', '.join(PRESETS)} (--set changes any)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (under torchrun: auto, cuda or cpu)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="training precision: bfloat16 or float16 autocast on GPUs, bfloat16 on CPU (default: the preset's)")
    p.add_argument("--name", help="run name (default: dataset and time)")
    p.add_argument("--resume", metavar="RUN", help="continue a run (name, folder or ckpt.pt; a nanoGPT out_dir too)")
    p.add_argument("--meta", metavar="FILE", help="with --resume: the meta.pkl of a nanoGPT character-level "
                   "checkpoint, when it is neither beside ckpt.pt nor in nanoGPT's data/DATASET/")
    p.add_argument("--init-from", metavar="PATH",
                   help="start from GPT-2's weights: a Hugging Face folder (config.json + model.safetensors), "
                        "or NAME for HOME/models/NAME (see download-gpt2)")
    p.add_argument("--budget", metavar="TIME",
                   help="train the best model this machine can in TIME (90s, 2m, 1h; evals and checkpoints included): "
                        "it measures a few model sizes, chooses one and its recipe, says why, and trains on the clock")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train with N processes on this machine (one per GPU, or CPU processes with gloo) "
                        "by starting torchrun --standalone; gradient_accumulation_steps must be a multiple of N")
    p.set_defaults(func=cmd_train)
