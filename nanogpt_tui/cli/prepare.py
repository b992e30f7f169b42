"""`nanogpt-tui prepare`: text or records into train.bin/val.bin with a progress bar (MB/s and time left)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from core.tokens.bpe import DEFAULT_PATTERN, MAX_VOCAB, MIN_VOCAB, SPLIT_PATTERNS
from data.learn_bpe import BPE, DEFAULT_VOCAB

from nanogpt_tui.cli.common import Subcommands, console, err_console, error_line


def cmd_prepare(args: argparse.Namespace) -> int:
    from data.learn_bpe import tokenizer_label
    from data.prepare import DatasetExists, DownloadFailed, shakespeare_name
    from data.sources import SHAKESPEARE_FILE

    try:
        return prepare_with_progress(args)
    except DatasetExists as error:
        err_console.print(error_line(f"{error}: choose another --name, or pass --overwrite to replace it"))
    except DownloadFailed as error:
        err_console.print(
            f"[red]error:[/] {error}\nWorking offline? Save {error.url} on this machine as {SHAKESPEARE_FILE}, then run:\n"
            f"  nanogpt-tui prepare {SHAKESPEARE_FILE} --tokenizer {args.tokenizer}"
            + (f" --vocab-size {args.vocab_size}" if args.vocab_size else "")
            + f"\n(it is named {shakespeare_name(tokenizer_label(args.tokenizer, args.vocab_size))}, as the download would be)"
        )
    return 1


def prepare_with_progress(args: argparse.Namespace) -> int:
    from data.prepare import prepare

    extensions = tuple(args.ext) if args.ext else None
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        AmountColumn(DownloadColumn()),
        AmountColumn(TransferSpeedColumn()),
        TimeRemainingColumn(),
        console=console,
        disable=not console.show_progress,  # piped: only the result lines
    ) as bar:
        task = bar.add_task("starting", total=None)

        def on_progress(p: Any) -> None:
            bar.update(task, description=p.stage, completed=p.done, total=p.total or None, unit=p.unit)

        # Ctrl-C interrupts prepare() itself; its staging folder is removed, nothing is left behind.
        info = prepare(
            args.source,
            tokenizer=args.tokenizer,
            name=args.name,
            val_fraction=args.val_fraction,
            block_size=args.block_size,
            overwrite=args.overwrite,
            progress=on_progress,
            text_field=args.text_field,
            special_tokens=args.special,
            vocab_size=args.vocab_size,
            split_pattern=args.split_pattern,
            **({"extensions": extensions} if extensions else {}),
        )
    console.print(f"[green]Prepared[/] {info.name} in {info.path}")
    console.print(
        f"  {info.chars:,} characters -> {info.train_tokens:,} train + {info.val_tokens:,} val tokens, "
        f"vocabulary {info.vocab_size:,}, {info.chars_per_token:.2f} chars/token, "
        f"{info.bytes_per_token:.2f} bytes/token, {info.dtype}"
    )
    if args.tokenizer == BPE and args.vocab_size and info.vocab_size < args.vocab_size:
        console.print(f"  [yellow]note:[/] the text has too few distinct pairs for {args.vocab_size:,} ids: "
                      f"learned {info.vocab_size:,}")
    return 0


class AmountColumn(ProgressColumn):
    """Shows `column` (an amount of bytes) for a stage counted in bytes, else "done/total unit"."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        unit = task.fields.get("unit", "bytes")
        if unit == "bytes":
            return self.column.render(task)
        if isinstance(self.column, TransferSpeedColumn):
            return Text("")
        return Text(f"{int(task.completed):,}/{int(task.total or 0):,} {unit}", style="progress.download")


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("prepare", help="turn text into train.bin/val.bin (nanoGPT's format)")
    p.add_argument("source", help="'shakespeare', a file (text, .jsonl, .jsonl.gz or .parquet), a folder of them "
                   "(Parquet shards, say), '-' for stdin, or hf:NAME[:CONFIG] to stream a Hugging Face dataset's "
                   "train split (needs pip install datasets, and network)")
    p.add_argument("--tokenizer", default="char", choices=["char", BPE, "gpt2", "cl100k_base"],
                   help="char: one id per character (nanoGPT's shakespeare_char); bpe: a byte-level BPE learned "
                        "from the text's train split (--vocab-size, --split-pattern); gpt2: GPT-2's BPE (works "
                        "offline); cl100k_base: GPT-4's BPE (needs tiktoken's download once) (default: char)")
    p.add_argument("--vocab-size", type=int, metavar="N",
                   help=f"bpe: the vocabulary to learn, {MIN_VOCAB} to {MAX_VOCAB:,}: the 256 bytes, N - 257 "
                        f"merges and <|endoftext|> (default {DEFAULT_VOCAB})")
    p.add_argument("--split-pattern", choices=list(SPLIT_PATTERNS), default=DEFAULT_PATTERN,
                   help="bpe: the regex that splits text into pieces before merging: GPT-2's or GPT-4's "
                        "(default %(default)s)")
    p.add_argument("--name", help="dataset name (default: from the source and tokenizer)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the text kept for validation")
    p.add_argument("--ext", action="append", help="file extension to take from a folder (repeatable; default: "
                   ".txt .md .jsonl .jsonl.gz .parquet)")
    p.add_argument("--text-field", default="text", metavar="NAME", help="the field (column) of JSON lines, Parquet "
                   "and Hugging Face records that holds the text; each record is a document, followed by "
                   "<|endoftext|> for BPE tokenizers (default: %(default)s)")
    p.add_argument("--special", action="store_true", help="BPE: <|endoftext|> in a text file is the end-of-text "
                   "token (documents separated as in TinyStories' .txt), not plain text as in nanoGPT's prepare")
    p.add_argument("--block-size", type=int, default=64, help="val must hold more tokens than this")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name")
    p.set_defaults(func=cmd_prepare)
