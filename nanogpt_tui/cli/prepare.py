"""`nanogpt-tui prepare`: text into train.bin/val.bin with a progress bar."""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from nanogpt_tui.cli.common import console, err_console, error_line


def cmd_prepare(args: argparse.Namespace) -> int:
    from data.prepare import DatasetExists, DownloadFailed, shakespeare_name

    try:
        return prepare_with_progress(args)
    except DatasetExists as error:
        err_console.print(error_line(f"{error}: choose another --name, or pass --overwrite to replace it"))
    except DownloadFailed as error:
        err_console.print(
            f"[red]error:[/] {error}\nWorking offline? Save {error.url} on this machine as input.txt, then run:\n"
            f"  nanogpt-tui prepare input.txt --tokenizer {args.tokenizer} --name {shakespeare_name(args.tokenizer)}"
        )
    return 1


def prepare_with_progress(args: argparse.Namespace) -> int:
    from data.prepare import prepare

    extensions = tuple(args.ext) if args.ext else None
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.show_progress,  # piped: only the result lines
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="turn text into train.bin/val.bin (nanoGPT's format)")
    p.add_argument("source", help="'shakespeare', a text file, a folder of text files, or '-' for stdin")
    p.add_argument("--tokenizer", default="char", choices=["char", "gpt2", "cl100k_base"],
                   help="char: one id per character (nanoGPT's shakespeare_char); gpt2: GPT-2's BPE (works offline); "
                        "cl100k_base: GPT-4's BPE (needs tiktoken's download once) (default: char)")
    p.add_argument("--name", help="dataset name (default: from the source and tokenizer)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the text kept for validation")
    p.add_argument("--ext", action="append", help="file extension to take from a folder (repeatable)")
    p.add_argument("--block-size", type=int, default=64, help="val must hold more tokens than this")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name")
    p.set_defaults(func=cmd_prepare)
