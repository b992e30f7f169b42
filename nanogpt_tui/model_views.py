"""Rich renderings of a model's insides, shared by the Model screen and `nanogpt-tui inspect` (no torch).

Attention heatmaps are rich Text with background colours: rows are query tokens, columns the tokens
they may look at; the masked upper triangle (the future) is left blank.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from core.common.formatting import human_count, human_size
from core.model.anatomy import (
    INIT_LOSS_WHY,
    Anatomy,
    Node,
    flops_per_token,
    init_loss_expected,
    memory_table,
)
from core.model.forward_pass import forward_steps
from nanogpt_tui.token_views import VISIBLE_WHITESPACE

LOW, HIGH = (24, 26, 48), (255, 214, 10)  # attention 0 -> dark blue-grey, 1 -> bright yellow
CELL = 2  # characters per heatmap cell
LABEL = 7  # characters for a row's token label
MAX_HEADER = 4  # rows of column labels (each token written downwards)


def visible(text: str) -> str:
    return text.translate(VISIBLE_WHITESPACE) or "∅"


def heat(weight: float) -> str:
    """A background colour for an attention weight in [0, 1] (square root: small weights still show)."""
    t = max(0.0, min(1.0, weight)) ** 0.5
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(LOW, HIGH))
    return f"#{r:02x}{g:02x}{b:02x}"


def header_rows(tokens: Sequence[str]) -> int:
    """How many lines the heatmap's column labels take (each token is written downwards)."""
    return max(1, min(MAX_HEADER, max((len(visible(t)) for t in tokens), default=1)))


@lru_cache(maxsize=128)
def cell_style(percent: int) -> Style:
    """A heatmap cell's style for a weight in whole percent: built once each (a heatmap has thousands of cells,
    and a layer or head switch redraws them all)."""
    return Style.parse(f"{'#000000' if percent > 30 else '#ffffff'} on {heat(percent / 100)}")


def cell_text(weight: float) -> str:
    """A cell shows its weight in percent when it is at least 10% (so the strong links read as numbers too)."""
    return f"{min(99, round(weight * 100)):>{CELL}}" if weight >= 0.1 else " " * CELL


def render_heatmap(tokens: Sequence[str], weights: Sequence[Sequence[float]], cursor: int | None = None) -> Text:
    """The causal T×T attention of one head: a row per query token, a column per key token."""
    T = len(tokens)
    labels = [visible(t) for t in tokens]
    text = Text(no_wrap=True)
    depth = header_rows(tokens)
    for row in range(depth):  # column labels, written downwards
        text.append(" " * (LABEL + 2))
        for j, label in enumerate(labels):
            char = label[row] if row < len(label) else " "
            text.append(char.ljust(CELL), "bold" if j == cursor else "dim")
        text.append("\n")
    for i in range(T):
        mark = "▶" if i == cursor else " "
        text.append(mark, "bold")
        label = labels[i][:LABEL].rjust(LABEL)
        text.append(label + " ", "reverse bold" if i == cursor else "")
        for j in range(T):
            if j > i:
                text.append(" " * CELL)  # the future: masked, nothing to see
            else:
                weight = float(weights[i][j])
                text.append(cell_text(weight), cell_style(round(weight * 100)))
        text.append("\n")
    text.rstrip()
    return text


def render_heads(tokens: Sequence[str], heads: Sequence[Sequence[Sequence[float]]], width: int, cursor: int | None = None) -> Text:
    """Small multiples: every head of one layer, two query rows per line (▀: top row fg, bottom row bg)."""
    T = len(tokens)
    per_row = max(1, (width + 2) // (T + 3))
    text = Text(no_wrap=True)
    for first in range(0, len(heads), per_row):
        group = list(range(first, min(first + per_row, len(heads))))
        text.append("   ".join(f"head {h}".ljust(T) for h in group) + "\n", "bold")
        for i in range(0, T, 2):
            for n, h in enumerate(group):
                if n:
                    text.append("   ")
                for j in range(T):
                    top = heat(heads[h][i][j]) if j <= i else None
                    bottom = heat(heads[h][i + 1][j]) if i + 1 < T and j <= i + 1 else None
                    if top is None and bottom is None:
                        text.append(" ")
                    elif top is None:
                        text.append("▄", bottom)
                    else:
                        text.append("▀", f"{top} on {bottom}" if bottom else top)
            marker = f" ◀ {cursor}" if cursor is not None and cursor in (i, i + 1) else ""
            text.append(marker + "\n", "bold")
        text.append("\n")
    text.rstrip()
    return text


def render_attends(tokens: Sequence[str], row: Sequence[float], position: int, k: int = 5) -> Text:
    """Which earlier tokens the query at `position` attends to most."""
    ranked = sorted(range(position + 1), key=lambda j: row[j], reverse=True)[:k]
    text = Text.assemble(("query ", "dim"), (f"{visible(tokens[position])!r}", "bold"), (f" #{position}", "dim"),
                         (" attends most to: ", "dim"))
    for n, j in enumerate(ranked):
        if n:
            text.append("  ")
        text.append(f"{visible(tokens[j])!r}", f"#1a1a1a on {heat(row[j])}")
        text.append(f" #{j} {row[j]:.0%}")
    return text


def render_lens(rows: Sequence[Any], token: str, position: int) -> Table:
    """The logit lens: each layer's top next tokens (LensRow objects) after the token at `position`."""
    table = Table(title=f"What each layer predicts after {visible(token)!r} (#{position})", title_justify="left",
                  expand=False, padding=(0, 1))
    table.add_column("after", style="bold")
    width = max((len(row.top) for row in rows), default=0)
    for n in range(width):
        table.add_column(f"#{n + 1}")
    final = rows[-1].top[0][0] if rows and rows[-1].top else None
    for row in rows:
        cells = []
        for token_id, text, prob in row.top:
            style = "bold green" if token_id == final else ""
            cells.append(Text.assemble((f"{visible(text)!r}", style), f" {prob:.0%}"))
        table.add_row(row.label, *cells)
    return table


def render_nearest(token: str, token_id: int, nearest: Sequence[tuple[str, int, float]]) -> Group:
    """The tokens nearest one token in the embedding: (text, id, cosine similarity) rows."""
    title = Text.assemble("Nearest to ", (repr(visible(token)), "bold"), f" (id {token_id}) in the token embedding "
                          "(wte), by cosine similarity")
    table = Table(padding=(0, 1))
    table.add_column("token")
    table.add_column("id", justify="right")
    table.add_column("cosine", justify="right")
    for text, other, sim in nearest:
        table.add_row(repr(visible(text)), str(other), f"{sim:+.3f}")
    return Group(title, table)


# -- anatomy ---------------------------------------------------------------------------------------------


def shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(n) for n in shape)


def node_label(node: Node, anatomy: Anatomy) -> Text:
    """A module's line in the tree: name, its own weights' shapes, parameters in its subtree, share."""
    text = Text(node.short if node.name else anatomy.title, "bold")
    for param in node.params:
        leaf = param.name.rsplit(".", 1)[-1]
        text.append(f"  {leaf} {shape_text(param.shape)}", "cyan")
        if param.tied_to:
            text.append(f" (tied: {param.tied_to})", "dim")
    text.append(f"  {node.count:,}", "green")
    text.append(f" {anatomy.share(node.count):.1%}", "dim")
    return text


def rich_tree(anatomy: Anatomy, expand_blocks: int = 1) -> Tree:
    """The module tree for the terminal; blocks after the first `expand_blocks` show one line each."""

    def add(parent: Tree, node: Node) -> None:
        branch = parent.add(node_label(node, anatomy))
        is_block = node.name.startswith(("transformer.h.", "blocks.")) and node.short.isdigit()  # (a ladder step's: blocks.N)
        if is_block and int(node.short) >= expand_blocks:
            return
        for child in node.children.values():
            add(branch, child)

    tree = Tree(node_label(anatomy.root, anatomy))
    for child in anatomy.root.children.values():
        add(tree, child)
    return tree


def counts_table(anatomy: Anatomy) -> Group:
    """Totals, nanoGPT's counts and estimate, FLOPs per token and memory per dtype."""
    config = anatomy.config
    flops = flops_per_token(anatomy.non_embedding, config)
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    totals.add_column(style="dim")
    totals.add_row("parameters", f"{anatomy.total:,}", human_count(anatomy.total))
    totals.add_row("non-embedding", f"{anatomy.non_embedding:,}", anatomy.non_embedding_note)
    totals.add_row("12·L·d² estimate", f"{anatomy.estimate:,}", f"{anatomy.estimate_error:+.1%}: no embeddings/biases/LNs")
    totals.add_row("FLOPs/token, train", f"{flops:,}", "6N + 12·L·H·Q·T (estimate_mfu)")
    totals.add_row("FLOPs/token, forward", f"{flops // 3:,}", "a third of that")
    memory = Table(title="memory", title_justify="left", padding=(0, 1))
    for column in ("dtype", "weights", "grads", "AdamW m+v", "total"):
        memory.add_column(column, justify="right" if column != "dtype" else "left", no_wrap=True)
    for name, weights, grads, adam in memory_table(anatomy.total):
        memory.add_row(name, human_size(weights), human_size(grads), human_size(adam), human_size(weights + grads + adam))
    note = Text("AdamW keeps two moments per weight in the weights' dtype; autocast bfloat16 training keeps "
                "float32 weights; activations come on top.", "dim")
    return Group(totals, Text(""), memory, note)


def shapes_table(config: dict[str, Any], T: int | None = None) -> Table:
    table = Table(title=f"One forward pass (B sequences of T={T or config['block_size']} tokens)", title_justify="left",
                  padding=(0, 1), show_edge=False)
    table.add_column("step")
    table.add_column("shape", style="cyan")
    for row in forward_steps(config, T):
        table.add_row(row.step, row.shape)
    return table


def init_loss_text(measured: float | None, vocab_size: int, trained: bool, dataset: str) -> Text:
    expected = init_loss_expected(vocab_size)
    text = Text.assemble(("ln(vocab_size) ", "bold"), f"= ln({vocab_size:,}) = {expected:.2f}\n")
    if measured is None:
        text.append("measuring on val batches…", "dim")
    else:
        text.append_text(Text.assemble(("measured loss ", "bold"), f"= {measured:.2f} on {dataset} val "
                                       f"({measured - expected:+.2f})\n"))
    text.append("\n" + INIT_LOSS_WHY, "dim")
    if trained:
        text.append("\nThis model is trained: its loss is below ln(V) by what it has learned. "
                    "Pick 'from Train settings' for an untrained one.", "italic")
    return text
