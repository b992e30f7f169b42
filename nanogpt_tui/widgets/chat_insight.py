"""What the model sees in Chat: how much of its block the conversation fills, and what it weighed at a token.

`context_line`: the tokens the next reply will read (the conversation and the prompt being typed) against
the model's block_size, as a meter; past the block, that only the latest tokens are in view (the sampler's
window, core.model.gpt.ContextWindow, keeps the last three quarters of the block, then fills it up again).
`token_choices`: for the token under the transcript's cursor, the likeliest tokens the model weighed at
that place (core.inference.sampler.TokenPiece.alternatives), as a small table, the chosen one marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from core.inference.sampler import TokenPiece

METER = 20  # cells of the context meter
COLUMN = 9  # characters per alternative in the choices table


def context_line(tokens: int, block_size: int) -> Text:
    """`tokens` the model will read next, against its block."""
    shown = min(tokens, block_size)
    filled = round(METER * shown / block_size) if block_size else 0
    text = Text.assemble(("context ", "dim"), (f"{tokens:,}", "bold"), (f" of {block_size:,} tokens ", "dim"),
                         ("█" * filled, "green" if tokens <= block_size else "yellow"), ("░" * (METER - filled), "dim"))
    if tokens <= block_size:
        text.append("  the model sees all of it", "dim")
    else:
        text.append(f"  longer than its block: the model sees at most the latest {block_size:,}; "
                    f"the first {tokens - block_size:,} are out of its view", "yellow")
    return text


def token_choices(piece: TokenPiece) -> Text:
    """The token at the cursor and the likeliest tokens the model weighed there (the chosen one reversed)."""
    text = Text.assemble(("token ", "dim"), (f"{piece.token_id} {piece.text!r}", "bold"), f" p={piece.prob:.1%}",
                         ("  ·  what the model weighed at this place (likeliest first):\n", "dim"))
    if not piece.alternatives:
        text.append("  -")
        return text
    cells = [(repr(t)[: COLUMN - 1], f"{p:.1%}", i == piece.token_id) for i, t, p in piece.alternatives]
    for row in (0, 1):
        text.append("  ")
        for cell in cells:
            text.append(cell[row].rjust(COLUMN - 1) + " ", "reverse bold" if cell[2] else ("" if row == 0 else "dim"))
        text.append("\n")
    text.rstrip()
    return text
