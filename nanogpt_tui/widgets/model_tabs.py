"""The Model screen's two largest tabs, as TabPanes that draw what the screen hands them.

Each starts with a line saying what it shows and how to read it (nanogpt_tui.model_help).
AnatomyTab: the module tree with nanoGPT's names, the counts and one forward pass's shapes.
AttentionTab: one head's heatmap (or all heads of a layer) over a window of the text that follows the
cursor, and what the cursor's token attends to. The screen owns the model, the text and the keys.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Container, ScrollableContainer, VerticalScroll
from textual.widgets import Static, TabPane, Tree
from textual.widgets.tree import TreeNode

from nanogpt_tui import model_views as views
from nanogpt_tui.model_help import TAB_HELP

SIDE_BY_SIDE = 130  # columns the Anatomy tab needs for the tree and the figures side by side, whole
WINDOW = 64  # tokens the single-head heatmap shows at once (a window that follows the cursor)
HEADS_WINDOW = 48  # tokens each small multiple shows


class AnatomyTab(TabPane):
    """A model's parameter tree, counts, memory, FLOPs and shapes (core.model.anatomy's Anatomy).

    Side by side where both fit whole; in a narrower tab (class `-narrow`) the figures go under the tree,
    each as wide as the tab, so no count, shape or size is cut (each part scrolls instead)."""

    def compose(self) -> ComposeResult:
        yield Static(TAB_HELP["tab-anatomy"], classes="tab-help")
        with Container(id="anatomy-body"):
            yield Tree("GPT", id="model-tree")
            with VerticalScroll(id="model-figures"):
                yield Static("", id="model-counts")
                yield Static("", id="model-shapes")

    def on_mount(self) -> None:
        self.query_one("#model-tree", Tree).show_root = True

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < SIDE_BY_SIDE, "-narrow")

    def show(self, anatomy: Any) -> None:
        tree = self.query_one("#model-tree", Tree)
        tree.clear()
        tree.root.set_label(views.node_label(anatomy.root, anatomy))

        def add(parent: TreeNode, node: Any) -> None:
            label = views.node_label(node, anatomy)
            if not node.children:
                parent.add_leaf(label)
                return
            branch = parent.add(label)
            for child in node.children.values():
                add(branch, child)
            # Open the way down to the first block (and head); the others stay folded (they look the same).
            if all(part == "0" for part in node.name.split(".") if part.isdigit()):
                branch.expand()

        for child in anatomy.root.children.values():
            add(tree.root, child)
        tree.root.expand()
        self.query_one("#model-counts", Static).update(views.counts_table(anatomy))
        self.query_one("#model-shapes", Static).update(views.shapes_table(anatomy.config))


def text_size(text: Text) -> tuple[int, int]:
    """(width, height) of a Text in cells: what a Static sized to its content lays out by."""
    lines = text.split(allow_blank=True)
    return max((line.cell_len for line in lines), default=0), len(lines)


class AttentionTab(TabPane):
    """The attention weights of a layer's head (or all its heads) on the analysed text.

    Another layer or head redraws text of the same size: it is drawn without laying the screen out again
    (`_update`), which is most of what a switch costs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sizes: dict[str, tuple[int, int]] = {}  # each Static's content size, as last drawn

    def _update(self, selector: str, text: Text) -> None:
        """Show `text` in the Static `selector`; a layout pass only when its size changes."""
        size = text_size(text)
        self.query_one(selector, Static).update(text, layout=self._sizes.get(selector) != size)
        self._sizes[selector] = size

    def compose(self) -> ComposeResult:
        yield Static(TAB_HELP["tab-attention"], classes="tab-help")
        yield Static("", id="model-att-info")
        with ScrollableContainer(id="model-heatmap-box", can_focus=False):
            yield Static("", id="model-heatmap")
        yield Static("", id="model-attends")

    def computing(self) -> None:
        self._update("#model-att-info", Text("Computing attention…"))

    def unavailable(self, why: str) -> None:
        """No attention to draw (a ladder step's model): say why, and clear the last model's."""
        self.query_one("#model-att-info", Static).update(Text(why, "yellow"))
        self.query_one("#model-heatmap", Static).update("")
        self.query_one("#model-attends", Static).update("")

    def show(
        self, tokens: Any, attention: Any, position: int, layer: int, head: int, all_heads: bool, explain: bool,
    ) -> None:
        """Draw `attention` (numpy (n_layer, n_head, T, T)) of `tokens` around `position`; `explain`: the legend too."""
        T = len(tokens.ids)
        position = min(position, T - 1)
        n_layer, n_head = attention.shape[:2]
        layer, head = min(layer, n_layer - 1), min(head, n_head - 1)
        box = self.query_one("#model-heatmap-box", ScrollableContainer)
        size = HEADS_WINDOW if all_heads else WINDOW
        if not all_heads and box.size.height:
            # As many tokens as rows fit under the column labels: the whole heatmap in view, labels included.
            size = max(8, min(size, box.size.height - views.header_rows(tokens.texts)))
        hi = max(position + 1, min(T, size))
        lo = max(0, hi - size)
        texts = tokens.texts[lo:hi]
        cursor = position - lo
        info = Text.assemble(
            ("layer ", "dim"), (f"{layer}", "bold"), (f"/{n_layer - 1}  ", "dim"),
            ("head ", "dim"), ("all" if all_heads else f"{head}", "bold"), (f"/{n_head - 1}  ", "dim"),
            ("token ", "dim"), (f"#{position}", "bold"), (f" of {T}", "dim"),
        )
        if lo or hi < T:
            info.append(f"  showing tokens {lo}..{hi - 1}", "yellow")
        if tokens.cut:
            info.append(f"  the text has {tokens.total} tokens: cut to the block's {len(tokens.ids)}", "yellow")
        if tokens.dropped:
            info.append(f"  left out (not in the vocabulary): {tokens.dropped!r}", "yellow")
        if explain:
            info.append("\nrows: query tokens · columns: the tokens each looks at · the future (upper right) is masked", "dim")
        self._update("#model-att-info", info)
        if all_heads:
            heads = attention[layer, :, lo:hi, lo:hi]
            width = self.query_one("#model-heatmap-box").size.width or 100
            self._update("#model-heatmap", views.render_heads(texts, heads, width, cursor))
        else:
            weights = attention[layer, head, lo:hi, lo:hi]
            self._update("#model-heatmap", views.render_heatmap(texts, weights, cursor))
        row = attention[layer, head, position]
        attends = views.render_attends(tokens.texts, row, position)
        if all_heads:
            attends = Text.assemble(f"head {head}: ", attends)
        self._update("#model-attends", attends)
