"""`nanogpt-tui tokens` and `checkpoints`: tables of what a text and the runs folder hold."""

from __future__ import annotations

import argparse

from rich.table import Table

from core import paths
from nanogpt_tui.cli.common import console


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
    broken = []
    for s in summaries:
        if s.error:
            # The reason goes below the table, whole: in a cell it would be squeezed into a tall column.
            broken.append(f"[bold]{s.name}[/] ({s.kind}): {s.error.replace(str(s.path), s.path.name)}")
            table.add_row(s.name, s.kind, "[red]unreadable[/]", "", "", "", "", f"{s.size_bytes / 1e6:.1f} MB", "")
            continue
        table.add_row(
            s.name, s.kind, s.dataset, s.tokenizer, f"{s.n_params / 1e6:.2f}M", str(s.iter_num),
            f"{s.best_val_loss:.4f}", f"{s.size_bytes / 1e6:.1f} MB", f"{s.modified:%Y-%m-%d %H:%M}" if s.modified else "",
        )
    console.print(table)
    for line in broken:
        console.print(f"[red]unreadable[/] {line}", highlight=False)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokens", help="show how text splits into tokens")
    p.add_argument("text")
    p.add_argument("--tokenizer", default="gpt2", choices=["gpt2", "cl100k_base"])
    p.add_argument("--dataset", help="use this dataset's tokenizer (e.g. its char vocabulary)")
    p.add_argument("--special", action="store_true", help="encode <|endoftext|> as the special token")
    p.set_defaults(func=cmd_tokens)

    p = sub.add_parser("checkpoints", help="list runs and their checkpoints")
    p.set_defaults(func=cmd_checkpoints)
