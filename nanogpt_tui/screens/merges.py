"""The Merges screen: what a BPE learned from a dataset did, merge by merge (opened from the Data screen, m).

The table lists the merges in the order learned, each as `left + right -> new` with visible whitespace,
and how often it was applied in the train split; the plot shows the train split's characters per token
as the vocabulary grows, merge by merge. Both come from core.tokens.merges: from the merges and the
dataset's token counts alone, computed in a thread worker; the handler fills the widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from core.common.formatting import human_count
from core.dataset.format import DatasetError, DatasetInfo, token_counts, tokenizer_of
from core.tokens.bpe import BpeTokenizer
from core.tokens.merges import merge_table
from core.tokens.tokenizers import TokenizerError
from nanogpt_tui.token_views import BACKGROUNDS, VISIBLE_WHITESPACE
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.screen_tabs import ScreenTabs

MAX_ROWS = 10_000  # merges listed; the curve covers them all
CURVE_POINTS = 400  # vocabulary sizes drawn
COLUMNS = ("#", "merge", "times in train")


def shown(token: bytes) -> str:
    """A token as text, whitespace made visible; bytes that are part of a character as \\xNN."""
    return token.decode("utf-8", "backslashreplace").translate(VISIBLE_WHITESPACE)


def merge_label(left: bytes, right: bytes, new: bytes) -> Text:
    part = f"#1a1a1a on {BACKGROUNDS[0]}"
    return Text.assemble((shown(left), part), " + ", (shown(right), part), " -> ", (shown(new), f"#1a1a1a on {BACKGROUNDS[2]}"))


@dataclass
class MergesRead(Message):
    """What the worker computed: the table's rows, the curve and the figures above them (or an error)."""

    rows: list[tuple[str, Text, str]]
    vocab: list[int]
    chars_per_token: list[float]
    summary: Text
    error: str | None = None


class MergesScreen(Screen[None]):
    """The merges of a dataset's learned BPE and the chars-per-token curve."""

    CSS_PATH = "merges.tcss"
    BINDINGS = [Binding("escape", "close", "Back", id="merges.close")]

    def __init__(self, info: DatasetInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        yield ScreenTabs(f"Merges of {self.info.name}", back=("esc", "close"))
        yield Static(f"Reading the merges of {self.info.name}…", id="merges-summary")
        with Horizontal(id="merges-main"):
            table: DataTable[str] = DataTable(id="merges-table", cursor_type="row", zebra_stripes=True)
            yield table
            yield PlotextPlot(id="merges-curve")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#merges-table", DataTable).focus()
        self.read_merges(self.info)

    @work(thread=True, exclusive=True, exit_on_error=False, group="merges-read")
    def read_merges(self, info: DatasetInfo) -> None:
        try:
            tokenizer = tokenizer_of(info)
            if not isinstance(tokenizer, BpeTokenizer):
                raise DatasetError(f"{info.name} has no learned BPE ({tokenizer.name}): nothing was merged here")
            if info.train_chars is None:
                raise DatasetError(f"{info.name} does not record its characters: no chars per token to draw")
            table = merge_table(tokenizer, token_counts(info))
        except (DatasetError, TokenizerError) as error:
            self.post_message(MergesRead([], [], [], Text(""), str(error)))
            return
        ranks, rows = tokenizer.ranks, []
        for rank, pair in enumerate(table.pairs[:MAX_ROWS], start=256):
            if pair is None:  # a token tiktoken never forms (core.tokens.merges)
                label = Text(f"{shown(ranks[rank])} (never formed)")
            else:
                label = merge_label(ranks[pair[0]], ranks[pair[1]], ranks[rank])
            rows.append((f"{rank}", label, f"{int(table.applied[rank]):,}"))
        chars = info.train_chars
        step = max(1, len(table.tokens) // CURVE_POINTS)
        ks = [*range(0, len(table.tokens), step), len(table.tokens) - 1]
        summary = Text.assemble(
            (f"{tokenizer.name}", "bold"), f" learned from the train split of {info.name} (split pattern "
            f"{tokenizer.pattern}): {tokenizer.n_merges:,} merges in the order learned",
            f" (the first {MAX_ROWS:,} listed)" if tokenizer.n_merges > MAX_ROWS else "",
            f"; train: {human_count(table.train_bytes)} bytes, {chars / table.tokens[0]:.2f} chars per token "
            f"with the 256 bytes alone, {chars / table.tokens[-1]:.2f} with every merge",
        )
        self.post_message(MergesRead(rows, [256 + k for k in ks], [chars / int(table.tokens[k]) for k in ks], summary))

    def on_merges_read(self, message: MergesRead) -> None:
        if message.error:
            self.query_one("#merges-summary", Static).update(Text(message.error, "red"))
            self.notify(message.error, title="No merges", severity="error")
            return
        self.query_one("#merges-summary", Static).update(message.summary)
        table = self.query_one("#merges-table", DataTable)
        table.clear(columns=True)
        table.add_columns(*COLUMNS)
        table.add_rows(message.rows)
        plot = self.query_one("#merges-curve", PlotextPlot)
        plot.plt.clear_data()
        plot.plt.plot(message.vocab, message.chars_per_token, marker="braille")
        plot.plt.title("train chars per token as the vocabulary grows")
        plot.plt.xlabel("vocabulary size (256 bytes + merges)")
        plot.refresh()

    def action_close(self) -> None:
        self.dismiss(None)
