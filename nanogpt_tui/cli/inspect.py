"""`nanogpt-tui inspect`: the Model screen's views as text."""

from __future__ import annotations

import argparse

from nanogpt_tui.cli.common import Subcommands, console
from nanogpt_tui.cli.inference import add_checkpoint_flags


def cmd_inspect(args: argparse.Namespace) -> int:
    """The model's anatomy; with --attention, --lens or --nearest, what it does with a text."""
    from core.common.devices import resolve_device
    from core.inference.inspect_model import (
        attention_weights,
        check_layer_head,
        check_position,
        encode,
        logit_lens,
        model_config,
        nearest_tokens,
        param_infos,
        token_text,
    )
    from core.model.anatomy import build_anatomy
    from core.runs.checkpoint import load_model, resolve_checkpoint
    from nanogpt_tui import model_views as views

    path = resolve_checkpoint(args.checkpoint, args.meta)
    device = resolve_device(args.device)
    model, tokenizer, ckpt = load_model(path, device, meta=args.meta)
    config = model_config(model)
    anatomy = build_anatomy(param_infos(model), config)
    if args.attention is None and args.lens is None and args.nearest is None:
        console.print(f"[bold]{path}[/] ({ckpt['iter_num']:,} iters, vocabulary {config['vocab_size']:,})")
        console.print_whole(views.rich_tree(anatomy))
        console.print_whole(views.counts_table(anatomy))
        console.print_whole(views.shapes_table(config))
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


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("inspect", help="look inside a model: parameters, attention, per-layer predictions")
    add_checkpoint_flags(p, device="cpu")
    p.add_argument("--attention", metavar="TEXT", help="show the attention weights of one head on this text")
    p.add_argument("--layer", type=int, default=0, help="--attention: the layer (from 0)")
    p.add_argument("--head", type=int, default=0, help="--attention: the head (from 0)")
    p.add_argument("--lens", metavar="TEXT", help="what each layer predicts next (logit lens) in this text")
    p.add_argument("--position", type=int, default=-1, help="--lens: the token position (default: the last)")
    p.add_argument("--nearest", metavar="TOKEN", help="the tokens nearest this one in the token embedding")
    p.add_argument("-k", type=int, default=10, help="--nearest: how many")
    p.set_defaults(func=cmd_inspect)
