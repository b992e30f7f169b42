"""`nanogpt-tui sample` and `eval`: a checkpoint's model at a chosen precision."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.settings.sampling import DEFAULT_PRECISION, PRECISIONS, check_precision, parse_stop_strings
from nanogpt_tui.cli.common import Subcommands, console, err_console


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=200, help="how many tokens to generate (default %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.8, help="randomness: 0 = greedy, 1 = the model's "
                        "own probabilities (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=None, help="keep only the k most likely tokens (default: all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="keep the fewest tokens whose probabilities add "
                        "up to p, in (0, 1] (default %(default)s: all)")
    parser.add_argument("--min-p", type=float, default=0.0, help="drop tokens less likely than min-p times the "
                        "most likely one, in [0, 1] (default %(default)s: none)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, help="> 1 makes tokens already in the "
                        "text less likely (default %(default)s: off)")
    parser.add_argument("--seed", type=int, default=None, help="the same seed gives the same text (default: "
                        "different every run)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="stop generating at this text (repeatable; as in Chat's settings: \\n is a newline, "
                             "commas separate several, \\, is a comma)")


def add_checkpoint_flags(parser: argparse.ArgumentParser, device: str = "auto") -> None:
    """--checkpoint, --meta and --device: which model to load, and where (sample, eval, inspect)."""
    parser.add_argument("--checkpoint", required=True, help="a run name, a ckpt.pt, or a nanoGPT out_dir")
    parser.add_argument("--meta", metavar="FILE", help="the meta.pkl of a character-level nanoGPT checkpoint, when it "
                        "is neither beside ckpt.pt nor in nanoGPT's data/DATASET/")
    parser.add_argument("--device", default=device, help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")


def add_precision_flag(parser: argparse.ArgumentParser, default: str = DEFAULT_PRECISION) -> None:
    parser.add_argument(
        "--precision", default=default, type=precision_name, metavar="|".join(PRECISIONS),
        help=(f"weights to run the model with (default {default}): "
              + "; ".join(f"{name}: {text}" for name, text in PRECISIONS.items())).replace("%", "%%"),  # argparse formats %
    )


def precision_name(text: str) -> str:
    """argparse type: a name from core.settings.sampling.PRECISIONS, else an error that lists them."""
    try:
        return check_precision(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_for_inference(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], Any, Path, str]:
    """The checkpoint's model at `--precision` on `--device`, its tokenizer, the checkpoint dict, device, path
    and the precision it is in (what auto chose, said on stderr: stdout may be a pipe of the text)."""
    from core.common.devices import resolve_device
    from core.inference.auto_precision import at_precision
    from core.runs.checkpoint import load_model, resolve_checkpoint

    device = resolve_device(args.device)
    path = resolve_checkpoint(args.checkpoint, meta=args.meta)
    model, tokenizer, ckpt = load_model(path, device, meta=args.meta)
    model, precision, note = at_precision(model, args.precision, tokenizer, ckpt, device)
    if note:
        err_console.print(f"[dim]{note}[/]")
    return model, tokenizer, ckpt, device, path, precision


def cmd_sample(args: argparse.Namespace) -> int:
    from core.inference.sampler import SamplingConfig, generate

    model, tokenizer, _, device, _, _ = load_for_inference(args)
    config = SamplingConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        stop=[stop for text in args.stop for stop in parse_stop_strings(text)],
    )
    # generate() checks the settings and the prompt when called: a bad one fails with nothing on stdout.
    pieces = generate(model, tokenizer, args.prompt, config, device=device)
    out = sys.stdout
    out.write(args.prompt)
    try:
        for piece in pieces:
            out.write(piece.text)
            out.flush()
    except KeyboardInterrupt:
        pass  # ctrl+c ends the reply (the generator with it); keep what was written
    finally:
        out.write("\n")  # the text ends its line, however it ended
        out.flush()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from core.dataset.format import DatasetError, load_dataset
    from core.runs.checkpoint import training_dataset
    from core.training.evaluation import evaluate, evaluate_tokens

    model, tokenizer, ckpt, device, path, precision = load_for_inference(args)
    settings = {"batch_size": args.batch_size, "eval_iters": args.eval_iters, "seed": args.seed}
    if args.text:  # any text, encoded with the checkpoint's own tokenizer: no dataset needed
        import numpy as np

        text = read_eval_text(args.text)
        data = {"text": np.array(tokenizer.encode(text), dtype=np.int64)}
        losses, where = evaluate_tokens(model, data, tokenizer, device, what=args.text, **settings), args.text
    else:
        try:
            info = load_dataset(args.dataset) if args.dataset else training_dataset(ckpt)
        except DatasetError as error:
            hint = "" if args.dataset else "; name one with --dataset NAME (or a dataset folder), or give --text FILE"
            raise DatasetError(f"{error}{hint}") from None
        losses, where = evaluate(model, info, device, **settings), info.name
    figures = ", ".join(f"{split} loss {losses[split]:.4f} ({losses[split + '_bpb']:.4f} bits/byte)"
                        for split in losses if not split.endswith("_bpb"))
    console.print(f"{path} ({precision}) on {where}: {figures}")
    return 0


MAX_EVAL_TEXT = 64 * 2**20  # bytes of an --text file read


def read_eval_text(name: str) -> str:
    """The text of `eval --text FILE` (a plain file, at most MAX_EVAL_TEXT bytes, UTF-8), or DatasetError."""
    from core.dataset.format import DatasetError

    path = Path(name).expanduser()
    if not path.is_file():
        raise DatasetError(f"--text {name}: no such file")
    with open(path, "rb") as file:
        data = file.read(MAX_EVAL_TEXT + 1)
    if len(data) > MAX_EVAL_TEXT:
        raise DatasetError(f"--text {name} is over {MAX_EVAL_TEXT // 2**20} MB: evaluate a part of it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"--text {name} is not UTF-8 text (byte {error.start})") from None


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("sample", help="generate text from a checkpoint")
    add_checkpoint_flags(p)
    p.add_argument("--prompt", default="", help="text to continue")
    add_precision_flag(p)
    add_sampling_flags(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="train and val loss of a checkpoint on a dataset, also in bits per byte")
    add_checkpoint_flags(p)
    p.add_argument("--dataset", help="default: the checkpoint's own dataset")
    p.add_argument("--text", metavar="FILE", help="evaluate on this text file instead, encoded with the "
                   "checkpoint's own tokenizer (no dataset needed)")
    p.add_argument("--eval-iters", type=int, default=50, help="batches measured per split (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="windows of the block size per batch (default %(default)s)")
    p.add_argument("--seed", type=int, default=1337, help="picks the windows: the same seed, the same ones")
    add_precision_flag(p, default="float32")
    p.set_defaults(func=cmd_eval)
