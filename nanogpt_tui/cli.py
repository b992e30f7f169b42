"""The `nanogpt-tui` command: the app by default, or a headless subcommand.

Subcommands import the engine lazily, so `nanogpt-tui` alone opens the app without waiting for torch.
Engine errors meant for the user (a missing file, a corrupt checkpoint, an unavailable device, ...)
print as one clear line and exit with status 1; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from core import paths
from core.sampling import DEFAULT_PRECISION, PRECISIONS, check_precision

console = Console()
err_console = Console(stderr=True)

# Engine exceptions whose message is written for the user, by module. A module that was never imported
# cannot have raised its error, so checking sys.modules avoids importing torch just to catch one.
USER_ERRORS = {
    "core.tokenizers": "TokenizerError",
    "core.dataset": "DatasetError",
    "core.model": "ModelError",
    "core.devices": "DeviceError",
    "core.checkpoint": "CheckpointError",
    "core.inspect_model": "InspectError",
    "core.sampler": "SamplerError",
    "core.sampling": "SamplerError",
    "core.train_config": "ConfigError",
    "data.sources": "SourceError",
    "data.prepare": "PrepareError",
}


def is_user_error(error: BaseException) -> bool:
    for module_name, class_name in USER_ERRORS.items():
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module else None
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError))


# ---------------------------------------------------------------------------------------------------
# prepare


def cmd_prepare(args: argparse.Namespace) -> int:
    from data.prepare import prepare

    extensions = tuple(args.ext) if args.ext else None
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def on_progress(p: Any) -> None:
            bar.update(task, description=p.stage, completed=p.done, total=p.total or None)

        # Ctrl-C interrupts prepare() itself; its staging folder is removed, nothing is left behind.
        info = prepare(
            args.source,
            tokenizer=args.tokenizer,
            name=args.name,
            val_fraction=args.val_fraction,
            block_size=args.block_size,
            overwrite=args.overwrite,
            progress=on_progress,
            **({"extensions": extensions} if extensions else {}),
        )
    console.print(f"[green]Prepared[/] {info.name} in {info.path}")
    console.print(
        f"  {info.chars:,} characters -> {info.train_tokens:,} train + {info.val_tokens:,} val tokens, "
        f"vocabulary {info.vocab_size:,}, {info.chars_per_token:.2f} chars/token, {info.dtype}"
    )
    return 0


# ---------------------------------------------------------------------------------------------------
# train


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
    from core.train_events import CheckpointSaved, Compiling, Eval, Failed, Finished, Sample, Started, Step
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


# ---------------------------------------------------------------------------------------------------
# sample and eval


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--min-p", type=float, default=0.0)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")


def add_precision_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision", default=DEFAULT_PRECISION, type=precision_name, metavar="|".join(PRECISIONS),
        help="weights to run the model with: " + "; ".join(f"{name}: {text}" for name, text in PRECISIONS.items()),
    )


def precision_name(text: str) -> str:
    """argparse type: a name from core.sampling.PRECISIONS, else an error that lists them."""
    try:
        return check_precision(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_for_inference(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], Any, Path]:
    """The checkpoint's model at `--precision` on `--device`, its tokenizer, the checkpoint dict, device and path."""
    from core.checkpoint import load_model, resolve_checkpoint
    from core.devices import resolve_device
    from core.quantize import to_precision

    device = resolve_device(args.device)
    path = resolve_checkpoint(args.checkpoint, meta=args.meta)
    model, tokenizer, ckpt = load_model(path, device, meta=args.meta)
    return to_precision(model, args.precision), tokenizer, ckpt, device, path


def cmd_sample(args: argparse.Namespace) -> int:
    from core.sampler import SamplingConfig, generate

    model, tokenizer, _, device, _ = load_for_inference(args)
    config = SamplingConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        stop=args.stop,
    )
    out = sys.stdout
    out.write(args.prompt)
    try:
        for piece in generate(model, tokenizer, args.prompt, config, device=device):
            out.write(piece.text)
            out.flush()
    except KeyboardInterrupt:
        pass  # ctrl+c ends the reply (the generator with it); keep what was written
    out.write("\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from core.dataset import load_dataset
    from core.evaluation import evaluate

    model, _, ckpt, device, path = load_for_inference(args)
    dataset_name = args.dataset or ckpt.get("dataset", {}).get("name")
    if not dataset_name:
        err_console.print("[red]error:[/] this checkpoint does not name its dataset; pass --dataset")
        return 1
    info = load_dataset(dataset_name)
    losses = evaluate(model, info, device, batch_size=args.batch_size, eval_iters=args.eval_iters, seed=args.seed)
    console.print(f"{path} ({args.precision}) on {info.name}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    return 0


# ---------------------------------------------------------------------------------------------------
# tokens and checkpoints


def cmd_tokens(args: argparse.Namespace) -> int:
    from core.dataset import load_dataset, tokenizer_of
    from core.tokenizers import get_tokenizer

    tokenizer = tokenizer_of(load_dataset(args.dataset)) if args.dataset else get_tokenizer(args.tokenizer)
    ids = tokenizer.encode(args.text, allow_special=args.special)
    table = Table(title=f"{len(ids)} tokens ({tokenizer.name}, vocabulary {tokenizer.vocab_size:,})")
    table.add_column("#", justify="right")
    table.add_column("id", justify="right")
    table.add_column("token")
    for i, token_id in enumerate(ids):
        table.add_row(str(i), str(token_id), repr(tokenizer.token_bytes(token_id).decode("utf-8", "replace")))
    console.print(table)
    console.print(f"{len(args.text)} characters, {len(ids)} tokens, {len(args.text) / max(1, len(ids)):.2f} chars/token")
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from core.checkpoint import list_checkpoints

    summaries = list_checkpoints()
    if not summaries:
        console.print(f"No checkpoints yet under {paths.runs_dir()}. Train one with `nanogpt-tui train`.")
        return 0
    table = Table(title=f"Checkpoints in {paths.runs_dir()}")
    for column in ("run", "kind", "dataset", "tokenizer", "params", "iters", "best val", "size", "modified"):
        table.add_column(column)
    for s in summaries:
        if s.error:
            table.add_row(s.name, s.kind, f"[red]{s.error}[/]", "", "", "", "", f"{s.size_bytes / 1e6:.1f} MB", "")
            continue
        table.add_row(
            s.name, s.kind, s.dataset, s.tokenizer, f"{s.n_params / 1e6:.2f}M", str(s.iter_num),
            f"{s.best_val_loss:.4f}", f"{s.size_bytes / 1e6:.1f} MB", f"{s.modified:%Y-%m-%d %H:%M}" if s.modified else "",
        )
    console.print(table)
    return 0


# ---------------------------------------------------------------------------------------------------
# inspect


def cmd_inspect(args: argparse.Namespace) -> int:
    """The model's anatomy; with --attention, --lens or --nearest, what it does with a text."""
    from core.anatomy import build_anatomy
    from core.checkpoint import load_model, resolve_checkpoint
    from core.devices import resolve_device
    from core.inspect_model import (
        attention_weights, check_layer_head, check_position, encode, logit_lens, model_config, nearest_tokens,
        param_infos, token_text,
    )
    from nanogpt_tui import model_views as views

    path = resolve_checkpoint(args.checkpoint, args.meta)
    device = resolve_device(args.device)
    model, tokenizer, ckpt = load_model(path, device, meta=args.meta)
    config = model_config(model)
    anatomy = build_anatomy(param_infos(model), config)
    if args.attention is None and args.lens is None and args.nearest is None:
        console.print(f"[bold]{path}[/] ({ckpt['iter_num']:,} iters, vocabulary {config['vocab_size']:,})")
        console.print(views.rich_tree(anatomy))
        console.print(views.counts_table(anatomy))
        console.print(views.shapes_table(config))
    if args.attention is not None:
        import torch

        check_layer_head(model, args.layer, args.head)
        tokens = encode(tokenizer, args.attention, model.config.block_size)
        if tokens.cut:
            console.print(f"[yellow]the text has {tokens.total} tokens; the block holds {len(tokens.ids)}: "
                          f"only the first {len(tokens.ids)} are shown[/]")
        if tokens.dropped:
            console.print(f"[yellow]left out (not in the vocabulary): {tokens.dropped!r}[/]")
        weights = attention_weights(model, torch.tensor([tokens.ids], device=device))[args.layer, 0, args.head]
        console.print(f"[bold]attention, layer {args.layer}, head {args.head}[/] (row: query token, column: the "
                      "token it looks at; the future is masked)")
        console.print(views.render_heatmap(tokens.texts, weights.tolist()))
        last = len(tokens.ids) - 1
        console.print(views.render_attends(tokens.texts, weights[last].tolist(), last))
    if args.lens is not None:
        tokens = encode(tokenizer, args.lens, model.config.block_size)
        if tokens.cut:
            console.print(f"[yellow]the text was cut to the block's {len(tokens.ids)} tokens[/]")
        position = check_position(tokens, args.position)
        rows = logit_lens(model, tokenizer, tokens.ids, position)
        console.print(views.render_lens(rows, tokens.texts[position], position))
    if args.nearest is not None:
        ids = encode(tokenizer, args.nearest, model.config.block_size).ids
        token_id = ids[0]
        near = nearest_tokens(model, token_id, k=args.k, vocab_size=tokenizer.vocab_size)
        rows = [(token_text(tokenizer, i), i, sim) for i, sim in near]
        if len(ids) > 1:
            console.print(f"[yellow]{args.nearest!r} is {len(ids)} tokens: using the first[/]")
        console.print(views.render_nearest(token_text(tokenizer, token_id), token_id, rows))
    return 0


# ---------------------------------------------------------------------------------------------------
# bench


def shakespeare_text(given: str | None = None) -> Path | None:
    """Tiny Shakespeare for the benches: --text, the shared copy beside the repo, or the cached download."""
    from data.sources import SHAKESPEARE_FILE

    if given:
        return Path(given).expanduser()
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data" / SHAKESPEARE_FILE,
                  paths.cache_dir() / SHAKESPEARE_FILE]
    return next((c for c in candidates if c.is_file()), None)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "train":
        from core.bench import bench_train

        bench_train(preset=args.preset, iters=args.iters or 30, device=args.device)
    elif args.what == "sample":
        from core.bench_sample import bench_sample

        bench_sample(n_tokens=args.tokens, vocab=args.vocab, device=args.device, checkpoint=args.checkpoint,
                     text=shakespeare_text(args.text), threads=args.threads)
    elif args.what == "speedrun":
        return cmd_speedrun(args)
    elif args.what == "prepare":
        from data.bench import bench_prepare

        bench_prepare(size_mb=args.size_mb, tokenizer=args.tokenizer, text=Path(args.text) if args.text else None)
    else:
        from nanogpt_tui.bench import bench_tui

        bench_tui(preset=args.preset, iters=args.iters or 300)
    return 0


def cmd_speedrun(args: argparse.Namespace) -> int:
    text = shakespeare_text(args.text)
    if text is None or not text.is_file():
        err_console.print(
            f"[red]Tiny Shakespeare not found{f' at {text}' if text else ''}.[/] Run `nanogpt-tui prepare shakespeare` "
            "once (it downloads the text into the cache), or pass --text FILE."
        )
        return 1
    from core.speedrun import speedrun

    speedrun(text, presets=tuple(args.presets.split(",")), target=args.target, cap=args.iters, console=console)
    return 0


# ---------------------------------------------------------------------------------------------------


def run_app(args: argparse.Namespace) -> int:
    from nanogpt_tui.app import NanoGPTApp

    NanoGPTApp().run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanogpt-tui", description="Learn, train and play with small GPTs.")
    parser.add_argument("--home", metavar="DIR", help=f"data folder (default: ${paths.HOME_ENV} or the user data dir)")
    parser.set_defaults(func=run_app)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("prepare", help="turn text into train.bin/val.bin (nanoGPT's format)")
    p.add_argument("source", help="'shakespeare', a text file, a folder of text files, or '-' for stdin")
    p.add_argument("--tokenizer", default="char", choices=["char", "gpt2", "cl100k_base"])
    p.add_argument("--name", help="dataset name (default: from the source and tokenizer)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the text kept for validation")
    p.add_argument("--ext", action="append", help="file extension to take from a folder (repeatable)")
    p.add_argument("--block-size", type=int, default=64, help="val must hold more tokens than this")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model on a prepared dataset")
    p.add_argument("--dataset", help="a dataset name or folder (default when resuming: the run's)")
    p.add_argument("--preset", default="cpu", help="starting settings: cpu, fast, tiny, shakespeare-char (--set changes any)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--name", help="run name (default: dataset and time)")
    p.add_argument("--resume", metavar="RUN", help="continue a run (name, folder or ckpt.pt)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate text from a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a run name, a ckpt.pt, or a nanoGPT out_dir")
    p.add_argument("--meta", help="a nanoGPT meta.pkl for a char-level nanoGPT checkpoint")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--device", default="auto")
    add_precision_flag(p)
    add_sampling_flags(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="train and val loss of a checkpoint on a dataset")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--meta")
    p.add_argument("--dataset", help="default: the checkpoint's own dataset")
    p.add_argument("--eval-iters", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto")
    add_precision_flag(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("tokens", help="show how text splits into tokens")
    p.add_argument("text")
    p.add_argument("--tokenizer", default="gpt2", choices=["gpt2", "cl100k_base"])
    p.add_argument("--dataset", help="use this dataset's tokenizer (e.g. its char vocabulary)")
    p.add_argument("--special", action="store_true", help="encode <|endoftext|> as the special token")
    p.set_defaults(func=cmd_tokens)

    p = sub.add_parser("checkpoints", help="list runs and their checkpoints")
    p.set_defaults(func=cmd_checkpoints)

    p = sub.add_parser("inspect", help="look inside a model: parameters, attention, per-layer predictions")
    p.add_argument("--checkpoint", required=True, help="a run name, a ckpt.pt, or a nanoGPT out_dir")
    p.add_argument("--meta", help="a nanoGPT meta.pkl for a char-level nanoGPT checkpoint")
    p.add_argument("--attention", metavar="TEXT", help="show the attention weights of one head on this text")
    p.add_argument("--layer", type=int, default=0, help="--attention: the layer (from 0)")
    p.add_argument("--head", type=int, default=0, help="--attention: the head (from 0)")
    p.add_argument("--lens", metavar="TEXT", help="what each layer predicts next (logit lens) in this text")
    p.add_argument("--position", type=int, default=-1, help="--lens: the token position (default: the last)")
    p.add_argument("--nearest", metavar="TOKEN", help="the tokens nearest this one in the token embedding")
    p.add_argument("-k", type=int, default=10, help="--nearest: how many")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("bench", help="measure speed (figures and ratios, side by side in one run)")
    p.add_argument("what", choices=["train", "sample", "prepare", "tui", "speedrun"])
    p.add_argument("--preset", default="cpu", help="train/tui: the model and batch to time")
    p.add_argument("--iters", type=int, help="train/tui: iterations to time (default 30 / 300); "
                                             "speedrun: most iterations per preset (default: its max_iters)")
    p.add_argument("--presets", default="cpu,fast", help="speedrun: the presets to race")
    p.add_argument("--target", type=float, default=1.88, help="speedrun: the val loss to reach")
    p.add_argument("--tokens", type=int, default=200, help="sample: tokens to generate")
    p.add_argument("--vocab", default="char", choices=["char", "gpt2"], help="sample: vocabulary of the model")
    p.add_argument("--size-mb", type=int, default=100, help="prepare: size of the generated text")
    p.add_argument("--tokenizer", default="gpt2", choices=["char", "gpt2"], help="prepare: tokenizer")
    p.add_argument("--text", metavar="FILE", help="prepare: repeat this text (default: cached Tiny Shakespeare, else generated words); "
                   "sample: train the quality model on it (default: ../shared/data or cached Tiny Shakespeare, else "
                   "generated text); speedrun: Tiny Shakespeare (default: ../shared/data or the cache)")
    p.add_argument("--checkpoint", metavar="RUN", help="sample: measure precision quality on this model and its dataset")
    p.add_argument("--threads", type=int, help="sample: torch CPU threads for the timings (default: torch's)")
    p.add_argument("--device", default="cpu", help="train/sample: device")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home:
        paths.set_home(args.home)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        return 130
    except Exception as error:  # noqa: BLE001 - user errors print cleanly, bugs re-raise
        if not is_user_error(error):
            raise
        err_console.print(f"[red]error:[/] {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
