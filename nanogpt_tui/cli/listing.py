"""`nanogpt-tui tokens` and `checkpoints`: tables of what a text and the runs folder hold."""

from __future__ import annotations

import argparse

from rich.cells import cell_len
from rich.table import Table

from core.common import paths
from core.common.formatting import human_count, human_size
from nanogpt_tui.cli.common import Subcommands, console


def cmd_tokens(args: argparse.Namespace) -> int:
    """One row per token; characters a dataset's vocabulary lacks show as `?`, as on the Tokens screen."""
    from core.dataset.format import load_dataset, tokenizer_of
    from core.tokens.spans import count_tokens, count_unknown, split_tokens
    from core.tokens.tokenizers import CharTokenizer, get_tokenizer

    if args.dataset:
        tokenizer = tokenizer_of(load_dataset(args.dataset))
    elif args.tokenizer == "char":  # a char vocabulary is a text's own: this one's (a dataset's: --dataset)
        tokenizer = CharTokenizer.from_text(args.text)
    else:
        tokenizer = get_tokenizer(args.tokenizer)
    spans = split_tokens(tokenizer, args.text, allow_special=args.special)
    tokens, unknown = count_tokens(spans), count_unknown(spans)
    title = f"{tokens} tokens ({tokenizer.name}, vocabulary {tokenizer.vocab_size:,})"
    table = Table(title=title, min_width=cell_len(title))  # a title wider than the columns stays on one line
    table.add_column("#", justify="right")
    table.add_column("id", justify="right")
    table.add_column("token")
    row = 0
    for span in spans:
        if not span.ids:  # characters the vocabulary lacks: one `?` each
            for char in span.text:
                table.add_row(str(row), "[bold red]?[/]", repr(char))
                row += 1
            continue
        for token_id in span.ids:
            table.add_row(str(row), str(token_id), repr(tokenizer.token_bytes(token_id).decode("utf-8", "replace")))
            row += 1
    console.print(table)
    console.print(f"{len(args.text)} characters, {tokens} tokens, {len(args.text) / max(1, tokens):.2f} chars/token")
    if args.tokenizer == "char" and not args.dataset:
        console.print(f"char: the vocabulary is this text's {tokenizer.vocab_size} characters "
                      "(a dataset's own vocabulary: --dataset NAME)")
    if unknown:
        console.print(f"[yellow]warning:[/] {unknown} characters are not in the {tokenizer.name} vocabulary (shown as ?): "
                      "a model with this vocabulary cannot read them")
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from core.runs.listing import list_checkpoints

    summaries = list_checkpoints()
    if not summaries:
        console.print(f"No checkpoints yet under {paths.runs_dir()}. Train one with `nanogpt-tui train`.")
        return 0
    table = Table(title=f"Checkpoints in {paths.runs_dir()}")
    # In a terminal, names and dates stay whole while other columns wrap; piped, nothing is cut.
    table.add_column("run", no_wrap=True)
    for column in ("kind", "dataset", "tokenizer", "params", "iters", "best val", "size"):
        table.add_column(column)
    table.add_column("modified", no_wrap=True)
    broken = []
    for s in summaries:
        size = human_size(s.size_bytes)
        if s.error:
            # The reason goes below the table, whole: in a cell it would be squeezed into a tall column.
            broken.append(f"[bold]{s.name}[/] ({s.kind}): {s.error.replace(str(s.path), s.path.name)}")
            table.add_row(s.name, s.kind, "[red]unreadable[/]", "", "", "", "", size, "")
            continue
        table.add_row(
            s.name, s.kind, s.dataset, s.tokenizer, human_count(s.n_params), f"{s.iter_num:,}",
            f"{s.best_val_loss:.4f}", size, f"{s.modified:%Y-%m-%d %H:%M}" if s.modified else "",
        )
    console.print_whole(table)
    for line in broken:
        console.print(f"[red]unreadable[/] {line}", highlight=False)
    return 0


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("tokens", help="show how text splits into tokens")
    p.add_argument("text", help="the text to split")
    p.add_argument("--tokenizer", default="gpt2", choices=["char", "gpt2", "cl100k_base"],
                   help="the tokenizer when --dataset is not given: a BPE, or char for a vocabulary of the text's "
                        "own characters (default: gpt2)")
    p.add_argument("--dataset", help="use this dataset's tokenizer (e.g. its char vocabulary)")
    p.add_argument("--special", action="store_true", help="encode <|endoftext|> as the special token")
    p.set_defaults(func=cmd_tokens)

    p = sub.add_parser("checkpoints", help="list runs and their checkpoints")
    p.set_defaults(func=cmd_checkpoints)
