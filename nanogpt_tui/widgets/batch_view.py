"""BatchView: one training example as the model sees it, the targets aligned under the inputs.

A column per position: its index, the input token's id and text, then the target's id and text (the
next token). The columns wrap to the widget's width. Under them, the first few of the examples one
window holds, as the lecture writes them: "when the input is 'Fi' the target is 'r'". The screen hands
it a core.dataset.example.Example (`show`); drawing is cheap (a few dozen cells).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from nanogpt_tui.token_views import VISIBLE_WHITESPACE

LABEL = 9  # the width of a row's label ("x input ")
CONTEXTS = 4  # "when the input is ... the target is ..." lines


def visible(text: str) -> str:
    return text.translate(VISIBLE_WHITESPACE) or "∅"


def render_example(example: Any, width: int) -> Text:
    """The example's columns wrapped to `width`, then the first contexts and their targets."""
    cells = [max(len(str(x)), len(str(y)), len(visible(a)), len(visible(b)), len(str(i))) + 1
             for i, (x, y, a, b) in enumerate(zip(example.x, example.y, example.x_text, example.y_text))]
    text = Text()  # the cell rows fit the width; the prose wraps
    text.append(f"A window of train at token {example.start:,}: x the block_size = {example.block_size} inputs, "
                "y the same shifted by one (the targets)", "dim")
    if len(example.x) < example.block_size:
        text.append(f"; the first {len(example.x)} shown", "dim")
    text.append("\n")
    first = 0
    while first < len(cells):
        last, used = first, LABEL
        while last < len(cells) and (last == first or used + cells[last] <= max(width, LABEL + 1)):
            used += cells[last]
            last += 1
        rows = [("position", "dim", [str(i) for i in range(first, last)]),
                ("x id", "bold", [str(v) for v in example.x[first:last]]),
                ("x text", "", [visible(t) for t in example.x_text[first:last]]),
                ("y id", "bold green", [str(v) for v in example.y[first:last]]),
                ("y text", "green", [visible(t) for t in example.y_text[first:last]])]
        for label, style, values in rows:
            text.append(label.ljust(LABEL), "dim")
            for value, cell in zip(values, cells[first:last]):
                text.append(value.rjust(cell - 1).ljust(cell), style)
            text.append("\n")
        first = last
    for t in range(min(CONTEXTS, len(example.x))):
        context = "".join(visible(s) for s in example.x_text[: t + 1])
        text.append("when the input is ", "dim")
        text.append(repr(context[-24:]), "bold")
        text.append(" the target is ", "dim")
        text.append(repr(visible(example.y_text[t])), "bold green")
        text.append("\n")
    text.rstrip()
    return text


class BatchView(Static):
    """One training example (x, y), drawn to fit the widget's width."""

    DEFAULT_CSS = """
    BatchView { height: auto; margin-bottom: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.example: Any = None

    def show(self, example: Any) -> None:
        self.example = example
        self._draw()

    def clear_example(self, note: str = "") -> None:
        self.example = None
        self.update(Text(note, "dim"))

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.example is not None:
            self.update(render_example(self.example, self.size.width or 80))
