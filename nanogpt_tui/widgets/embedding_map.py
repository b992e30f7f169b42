"""EmbeddingMap: the token embeddings on their two main directions (PCA), a terminal scatter labelled with
the tokens. For a character vocabulary the letters cluster: vowels, capitals, digits, punctuation.

The screen hands it the points (core.inference.inspect_model.embedding_map: the whole of a small
vocabulary, or a large one's text tokens and their neighbours) and the token under its cursor, drawn
highlighted. Drawing is plotext's (textual-plotext), on the UI thread: at most a few hundred labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual_plotext import PlotextPlot

from nanogpt_tui.token_views import VISIBLE_WHITESPACE

LABEL_CHARS = 8  # a label's longest text (GPT-2 tokens can be long)
LABEL_COLOR = (170, 200, 255)
TEXT_COLOR = (255, 214, 10)  # the text's own tokens, of a large vocabulary
CURSOR_COLOR = (255, 90, 90)


def label(text: str) -> str:
    return (text.translate(VISIBLE_WHITESPACE) or "∅")[:LABEL_CHARS]


class EmbeddingMap(PlotextPlot):
    """A scatter of token embeddings projected to 2-D, each point labelled with its token."""

    DEFAULT_CSS = """
    EmbeddingMap { width: 1fr; height: 1fr; min-height: 8; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[Any] = []  # MapPoint: token_id, text, x, y
        self.whole = True  # the whole vocabulary, or a text's tokens and their neighbours
        self.text_ids: set[int] = set()
        self.cursor_id: int | None = None

    def show(self, points: Sequence[Any], whole: bool, text_ids: Sequence[int] = ()) -> None:
        self.points, self.whole, self.text_ids = list(points), whole, set(text_ids)
        self._draw()

    def mark(self, token_id: int | None) -> None:
        """Highlight the token under the Model screen's cursor."""
        if token_id != self.cursor_id:
            self.cursor_id = token_id
            self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self.whole:
            plt.title("every token's embedding on its 2 main directions (PCA)")
        else:
            plt.title("the text's tokens (yellow) and their nearest, on the embedding's 2 main directions (PCA)")
        if self.points:
            # Invisible points: they set the axes' range; the labels mark the places.
            plt.scatter([p.x for p in self.points], [p.y for p in self.points], marker=" ")
            for p in self.points:
                if p.token_id == self.cursor_id:
                    continue  # drawn last, on top
                color = TEXT_COLOR if not self.whole and p.token_id in self.text_ids else LABEL_COLOR
                plt.text(label(p.text), p.x, p.y, color=color, background="default")
            for p in self.points:
                if p.token_id == self.cursor_id:
                    plt.text(label(p.text), p.x, p.y, color=CURSOR_COLOR, background="default", style="bold")
        plt.xticks([])
        plt.yticks([])
        self.refresh()
