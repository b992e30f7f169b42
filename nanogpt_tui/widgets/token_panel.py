"""TokenPanel: one tokenizer's view of the Tokens screen's text: counts, the text split into tokens, the ids.

The screen's worker computes a `PanelResult` per panel (drawing its splits and ids as rich Text, which
is plain data) and posts it; the panel only swaps the result in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from core.tokens.spans import TokenSpan, count_tokens
from nanogpt_tui.token_views import render_ids, render_splits, render_stats


@dataclass
class PanelResult:
    """One tokenizer's view of the text (or of the ids typed, when decoding), or why it has none."""

    key: str
    title: str
    spans: list[TokenSpan] = field(default_factory=list)
    error: str | None = None
    # Drawn by the worker (rich Text is plain data), so the UI thread only swaps them in.
    splits: Text | None = None
    ids: Text | None = None

    @property
    def tokens(self) -> int:
        return count_tokens(self.spans)


class TokenPanel(VerticalScroll):
    """One tokenizer's splits, ids and counts."""

    DEFAULT_CSS = """
    TokenPanel { width: 1fr; height: 100%; border: round $primary; padding: 0 1; }
    TokenPanel .panel-stats { text-style: bold; margin-bottom: 1; }
    TokenPanel .panel-ids { margin-top: 1; color: $text-muted; }
    """

    def __init__(self, key: str, title: str) -> None:
        super().__init__()
        self.key = key
        self.border_title = title
        self.result: PanelResult | None = None
        self.stats = Static("Tokenizing…", classes="panel-stats")
        self.splits = Static("", classes="panel-splits")
        self.ids = Static("", classes="panel-ids")

    def compose(self) -> ComposeResult:
        yield self.stats
        yield self.splits
        yield self.ids

    def show(self, result: PanelResult, decoding: bool = False) -> None:
        self.result = result
        if result.error:
            self.stats.update(Text(result.error, "bold red"))
            self.splits.update("")
            self.ids.update("")
            return
        self.stats.update(render_stats(result.spans, decoding))
        self.splits.update(result.splits if result.splits is not None else render_splits(result.spans))
        self.ids.update(result.ids if result.ids is not None else render_ids(result.spans))
