"""`nanogpt-tui bench`: speed figures and ratios measured side by side in one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.common import paths
from nanogpt_tui.cli.common import Subcommands, console, err_console

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # beside the repository, where there is one


def shakespeare_text(given: str | None = None) -> Path | None:
    """Tiny Shakespeare for the benches: --text, the shared copy beside the repo, or the cached download."""
    from data.sources import SHAKESPEARE_FILE

    if given:
        return Path(given).expanduser()
    candidates = [SHARED_DATA / SHAKESPEARE_FILE, paths.cache_dir() / SHAKESPEARE_FILE]
    return next((c for c in candidates if c.is_file()), None)


def at_least_one(text: str) -> int:
    """argparse type: a whole number >= 1 (pairs, rounds), else a usage error."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return number


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "train":
        from nanogpt_tui.bench.train import bench_train

        bench_train(preset=args.preset, iters=args.iters or 30, device=args.device)
    elif args.what == "sample":
        from nanogpt_tui.bench.sample import bench_sample

        bench_sample(n_tokens=args.tokens, vocab=args.vocab, device=args.device, checkpoint=args.checkpoint,
                     text=shakespeare_text(args.text), threads=args.threads)
    elif args.what == "speedrun":
        return cmd_speedrun(args)
    elif args.what == "budget":
        return cmd_budget(args)
    elif args.what == "gpu":
        return cmd_gpu(args)
    elif args.what == "prepare":
        from nanogpt_tui.bench.prepare import bench_prepare

        bench_prepare(size_mb=args.size_mb, tokenizer=args.tokenizer, text=Path(args.text) if args.text else None,
                      pairs=args.pairs)
    else:
        from nanogpt_tui.bench.tui import bench_tui

        bench_tui(preset=args.preset, iters=args.iters or 300)
    return 0


def found_text(given: str | None) -> Path | None:
    """Tiny Shakespeare for speedrun and gpu (see shakespeare_text), or None after saying where to get it."""
    text = shakespeare_text(given)
    if text is None or not text.is_file():
        err_console.print(
            f"[red]error:[/] Tiny Shakespeare not found{f' at {text}' if text else ''}. Run `nanogpt-tui prepare "
            "shakespeare` once (it downloads the text into the cache), or pass --text FILE."
        )
        return None
    return text


def cmd_speedrun(args: argparse.Namespace) -> int:
    text = found_text(args.text)
    if text is None:
        return 1
    from nanogpt_tui.bench.speedrun import TARGET, speedrun

    target = TARGET if args.target is None else args.target
    speedrun(text, presets=tuple(args.presets.split(",")), target=target, cap=args.iters, console=console)
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from core.settings.budget import parse_duration

    budgets = tuple(parse_duration(item) for item in args.budgets.split(","))  # before the text: a typo fails at once
    text = found_text(args.text)
    if text is None:
        return 1
    from nanogpt_tui.bench.budget import bench_budget

    bench_budget(text, budgets=budgets, presets=tuple(args.presets.split(",")), console=console, rounds=args.pairs)
    return 0


def cmd_gpu(args: argparse.Namespace) -> int:
    from nanogpt_tui.bench.gpu import TARGET, bench_gpu, require_cuda

    require_cuda()  # before anything else: without a GPU there is nothing to check
    text = found_text(args.text)
    if text is None:
        return 1
    target = TARGET if args.target is None else args.target
    result = bench_gpu(text, target=target, max_iters=args.iters, console=console)
    return 1 if result.failure else 0


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("bench", help="measure speed (figures and ratios, side by side in one run)")
    p.add_argument("what", choices=["train", "sample", "prepare", "tui", "speedrun", "budget", "gpu"],
                   help="train: the Trainer vs a bare loop; sample: KV cache and precisions; prepare: tokenizing; "
                        "tui: training in the app vs headless, and screen switches; speedrun: presets raced to a "
                        "val loss; budget: time budgets vs the presets given the same time; gpu: nanoGPT's "
                        "shakespeare-char recipe on a CUDA GPU (ms/iter, MFU, time to "
                        "val loss, sampling)")
    p.add_argument("--preset", default="cpu", help="train/tui: the model and batch to time")
    p.add_argument("--iters", type=int, help="train/tui: iterations to time (default 30 / 300); "
                                             "speedrun: most iterations per preset (default: its max_iters); "
                                             "gpu: most iterations (default: the preset's 5000)")
    p.add_argument("--presets", default="cpu,fast", help="speedrun: the presets to race; budget: those to compare with")
    p.add_argument("--budgets", default="7s,15s,1m,5m", help="budget: the budgets to train (default %(default)s)")
    p.add_argument("--target", type=float, help="speedrun/gpu: the val loss to reach (default: nanoGPT's result "
                                                "with the recipe, on CPU for speedrun, on a GPU for gpu)")
    p.add_argument("--tokens", type=int, default=200, help="sample: tokens to generate")
    p.add_argument("--vocab", default="char", choices=["char", "gpt2"], help="sample: vocabulary of the model")
    p.add_argument("--size-mb", type=int, default=100, help="prepare: size of the generated text")
    p.add_argument("--tokenizer", default="gpt2", choices=["char", "gpt2"], help="prepare: tokenizer")
    p.add_argument("--pairs", type=at_least_one, default=3, help="prepare: prepare/bare pairs, in alternating order; budget: "
                   "rounds of each budget under a minute, the order alternating (default %(default)s)")
    p.add_argument("--text", metavar="FILE", help="prepare: repeat this text (default: cached Tiny Shakespeare, else generated words); "
                   "sample: train the quality model on it (default: ../shared/data or cached Tiny Shakespeare, else "
                   "generated text); speedrun/budget/gpu: Tiny Shakespeare (default: ../shared/data or the cache)")
    p.add_argument("--checkpoint", metavar="RUN", help="sample: measure precision quality on this model and its dataset")
    p.add_argument("--threads", type=int, help="sample: torch CPU threads for the timings (default: torch's)")
    p.add_argument("--device", default="cpu", help="train/sample: the device (default: %(default)s)")
    p.set_defaults(func=cmd_bench)
