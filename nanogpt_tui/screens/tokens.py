"""The Tokens screen: type text and see how several tokenizers split it, side by side.

The tokenizers: gpt2, cl100k_base (when cached), each prepared dataset's, and each run's checkpoint's.

Tokenizing runs in a thread worker (building gpt2 takes about a second the first time); the worker
only computes `PanelResult`s and posts them, the screen renders them. A dataset's tokenizer also gets
the dataset's token counts, so tokens that never occur in its training data are marked as untrained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, SelectionList, Static, Switch, TextArea
from textual.widgets.selection_list import Selection
from textual.worker import get_current_worker

from core.dataset import DatasetError, DatasetInfo, list_datasets, load_dataset, token_counts, tokenizer_of
from core.tokenizers import (
    ENDOFTEXT,
    TIKTOKEN_NAMES,
    CharTokenizer,
    Tokenizer,
    TokenizerError,
    available_tokenizers,
    get_tokenizer,
    load_tokenizer,
    tokenizer_name,
)

SAMPLE_TEXT = "Hello world! Tokenizers split text into pieces.\nnaïve café, 🦙 llama,\ttabs and <|endoftext|>"
DEBOUNCE_S = 0.15  # wait this long after the last keystroke before tokenizing again
MAX_SHOWN = 2000  # spans drawn per panel; the counts always cover the whole text
# Pastel backgrounds with dark text read well under light and dark themes alike.
BACKGROUNDS = ("#b3d9ff", "#ffd8a8", "#c3f0ca", "#f5c2e7", "#e0d4ff")
UNTRAINED_STYLE = "bold #8b0000 on #ffe066"
UNKNOWN_STYLE = "bold white on #c0392b"
SPECIAL_STYLE = "bold white on #6c5ce7"
Loaded = tuple[Tokenizer, np.ndarray | None]  # a tokenizer and its dataset's train token counts, if known
VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "↵", "\t": "→", "\r": "␍"})


@dataclass
class TokenSpan:
    """A piece of the text and the token ids that make it (several when a character spans tokens)."""

    text: str
    ids: list[int]  # empty: characters the vocabulary lacks
    special: bool = False
    untrained: bool = False


@dataclass
class PanelResult:
    """One tokenizer's view of the text, or why it has none."""

    key: str
    title: str
    spans: list[TokenSpan] = field(default_factory=list)
    error: str | None = None

    @property
    def tokens(self) -> int:
        return sum(len(span.ids) for span in self.spans)

    @property
    def chars(self) -> int:
        return sum(len(span.text) for span in self.spans)

    @property
    def unknown(self) -> int:
        return sum(len(span.text) for span in self.spans if not span.ids)

    @property
    def untrained(self) -> int:
        return sum(span.untrained for span in self.spans)


def split_tokens(tokenizer: Tokenizer, text: str, allow_special: bool = False) -> list[TokenSpan]:
    """Split `text` into spans of whole characters, each with the ids of the tokens that make it.

    Byte-level BPE can cut a character into several tokens: their bytes are gathered until they
    decode, so the character shows once, carrying all its ids. Characters a char vocabulary lacks
    become spans without ids instead of an error.
    """
    if isinstance(tokenizer, CharTokenizer):
        return [TokenSpan(c, [tokenizer.stoi[c]] if c in tokenizer.stoi else []) for c in text]
    specials = set(tokenizer.special_tokens.values()) if allow_special else set()
    spans: list[TokenSpan] = []
    pending, ids = b"", []
    for token_id in tokenizer.encode(text, allow_special=allow_special):
        pending += tokenizer.token_bytes(token_id)
        ids.append(token_id)
        try:
            piece = pending.decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a character: wait for the tokens that complete it
        spans.append(TokenSpan(piece, ids, special=token_id in specials))
        pending, ids = b"", []
    if ids:
        spans.append(TokenSpan(pending.decode("utf-8", "replace"), ids))
    return spans


def span_style(span: TokenSpan, index: int) -> str:
    if span.special:
        return SPECIAL_STYLE
    if not span.ids:
        return UNKNOWN_STYLE
    if span.untrained:
        return UNTRAINED_STYLE
    return f"#1a1a1a on {BACKGROUNDS[index % len(BACKGROUNDS)]}"


def render_splits(spans: list[TokenSpan]) -> Text:
    """The text as coloured tokens, whitespace made visible (line breaks are kept as well as shown)."""
    text = Text()
    for index, span in enumerate(spans[:MAX_SHOWN]):
        text.append(span.text.translate(VISIBLE_WHITESPACE), span_style(span, index))
        if "\n" in span.text:
            text.append("\n")
    if len(spans) > MAX_SHOWN:
        text.append(f" … ({len(spans) - MAX_SHOWN} more)", "dim")
    return text


def render_ids(spans: list[TokenSpan]) -> Text:
    """The ids, coloured like their spans; a span of several tokens shows its ids in brackets."""
    text = Text()
    for index, span in enumerate(spans[:MAX_SHOWN]):
        if index:
            text.append(" ")
        label = "?" if not span.ids else str(span.ids[0]) if len(span.ids) == 1 else f"[{' '.join(map(str, span.ids))}]"
        text.append(label, span_style(span, index))
    return text


def render_stats(result: PanelResult) -> str:
    parts = [f"{result.tokens} tokens", f"{result.chars} chars"]
    if result.tokens:
        parts.append(f"{result.chars / result.tokens:.2f} chars/token")
    if result.untrained:
        parts.append(f"{result.untrained} untrained")
    if result.unknown:
        parts.append(f"{result.unknown} unknown chars")
    return " · ".join(parts)


class TokenPanel(VerticalScroll):
    """One tokenizer's splits, ids and counts."""

    def __init__(self, key: str, title: str) -> None:
        super().__init__(classes="token-panel")
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

    def show(self, result: PanelResult) -> None:
        self.result = result
        if result.error:
            self.stats.update(Text(result.error, "bold red"))
            self.splits.update("")
            self.ids.update("")
            return
        self.stats.update(render_stats(result))
        self.splits.update(render_splits(result.spans))
        self.ids.update(render_ids(result.spans))


class TokensScreen(Screen):
    """Compare how tokenizers split the same text."""

    CSS_PATH = "tokens.tcss"
    BINDINGS = [
        Binding("ctrl+s", "toggle_special", "Special tokens", id="tokens.special"),
        Binding("ctrl+l", "clear_text", "Clear text", id="tokens.clear"),
        Binding("ctrl+r", "reload", "Reload datasets", id="tokens.reload"),
    ]

    class Tokenized(Message):
        """Results of one tokenizing pass (`generation` tells stale passes apart), and the tokenizers it used."""

        def __init__(self, generation: int, results: list[PanelResult], loaded: dict[str, Loaded]) -> None:
            super().__init__()
            self.generation = generation
            self.results = results
            self.loaded = loaded

    class CheckpointsListed(Message):
        """The runs whose checkpoints can lend their tokenizer: (run, checkpoint path, tokenizer name)."""

        def __init__(self, runs: list[tuple[str, str, str]], previous: set[str]) -> None:
            super().__init__()
            self.runs = runs
            self.previous = previous

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self._generation = 0
        # key -> (tokenizer, train token counts or None): each pass gets a copy and posts back what it
        # loaded, so only the UI thread ever changes this dict.
        self._loaded: dict[str, Loaded] = {}
        self._titles: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="tokens-top"):
            yield TextArea(SAMPLE_TEXT, id="tokens-text", soft_wrap=True)
            with Vertical(id="tokens-options"):
                yield SelectionList[str](id="tokens-choices")
                with Horizontal(id="tokens-special-row"):
                    yield Switch(False, id="tokens-special", animate=False)
                    yield Static("", id="tokens-special-label")
                yield Static(self._legend(), id="tokens-legend")
        yield Horizontal(id="tokens-panels")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tokens-choices", SelectionList).border_title = "Tokenizers"
        self._describe_special()
        self.load_choices()
        self.query_one("#tokens-text", TextArea).focus()

    def on_screen_resume(self) -> None:
        # Datasets may have been prepared or deleted on the Data screen meanwhile.
        if self.is_mounted:
            self.load_choices()

    @staticmethod
    def _legend() -> Text:
        return Text.assemble(
            ("·", "bold"), " space  ", ("↵", "bold"), " newline  ", ("→", "bold"), " tab\n",
            ("untrained", UNTRAINED_STYLE), " never in the training data\n",
            ("unknown", UNKNOWN_STYLE), " not in the vocabulary  ",
            ("special", SPECIAL_STYLE), " special",
        )  # fmt: skip

    def load_choices(self) -> None:
        """(Re)fill the tokenizer list: gpt2, cl100k_base, and every prepared dataset's tokenizer."""
        choices = self.query_one("#tokens-choices", SelectionList)
        previous = set(choices.selected)
        first_time = choices.option_count == 0
        self._titles.clear()
        options: list[Selection[str]] = []
        for name, reason in available_tokenizers().items():
            if name in TIKTOKEN_NAMES:
                key = f"tiktoken:{name}"
                self._titles[key] = name
                prompt = name if reason is None else f"{name} (unavailable: {reason})"
                selected = key in previous or (first_time and name == "gpt2" and reason is None)
                options.append(Selection(prompt, key, selected, disabled=reason is not None))
        datasets = [item for item in list_datasets() if isinstance(item, DatasetInfo)]
        for n, info in enumerate(datasets):
            key = f"dataset:{info.name}"
            self._titles[key] = f"{info.name} ({tokenizer_name(info.tokenizer)}, vocab {info.vocab_size})"
            selected = key in previous or (first_time and n == 0)
            options.append(Selection(self._titles[key], key, selected))
        # A dataset prepared again under the same name has new counts: load it afresh.
        self._loaded = {key: value for key, value in self._loaded.items() if key.startswith("tiktoken:")}
        choices.clear_options()
        choices.add_options(options)
        self.refresh_tokens()
        self.list_checkpoints(previous)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokens-checkpoints")
    def list_checkpoints(self, previous: set[str]) -> None:
        """Each run's latest checkpoint, to offer its tokenizer (reading checkpoints needs torch: a worker)."""
        from core.checkpoint import LATEST, list_checkpoints

        runs = [(s.name, str(s.path), s.tokenizer) for s in list_checkpoints() if s.path.name == LATEST and not s.error]
        if not get_current_worker().is_cancelled:
            self.post_message(self.CheckpointsListed(runs, previous))

    def on_tokens_screen_checkpoints_listed(self, message: CheckpointsListed) -> None:
        choices = self.query_one("#tokens-choices", SelectionList)
        for run, path, tokenizer in message.runs:
            key = f"checkpoint:{path}"
            self._titles[key] = f"run {run} ({tokenizer})"
            choices.add_option(Selection(self._titles[key], key, key in message.previous))

    @on(TextArea.Changed, "#tokens-text")
    def _text_changed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self.refresh_tokens)

    @on(SelectionList.SelectedChanged, "#tokens-choices")
    def _choices_changed(self) -> None:
        self.refresh_tokens()

    @on(Switch.Changed, "#tokens-special")
    def _special_changed(self) -> None:
        self._describe_special()
        self.refresh_tokens()

    def _describe_special(self) -> None:
        on_ = self.query_one("#tokens-special", Switch).value
        self.query_one("#tokens-special-label", Static).update(
            f"Special tokens ON: {ENDOFTEXT} typed here is one special token"
            if on_
            else f"Special tokens OFF: {ENDOFTEXT} typed here is plain text"
        )

    def refresh_tokens(self) -> None:
        """Make one panel per selected tokenizer and tokenize the text for them in a worker."""
        keys = list(self.query_one("#tokens-choices", SelectionList).selected)
        panels = self.query_one("#tokens-panels", Horizontal)
        shown = {panel.key: panel for panel in panels.query(TokenPanel)}
        for key, panel in shown.items():
            if key not in keys:
                panel.remove()
        panels.mount_all(TokenPanel(key, self._titles[key]) for key in keys if key not in shown)
        self._generation += 1
        text = self.query_one("#tokens-text", TextArea).text
        allow_special = self.query_one("#tokens-special", Switch).value
        panel_titles = [(key, self._titles[key]) for key in keys]
        self.tokenize(self._generation, text, panel_titles, allow_special, dict(self._loaded))

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokenize")
    def tokenize(
        self, generation: int, text: str, panels: list[tuple[str, str]], allow_special: bool, loaded: dict[str, Loaded]
    ) -> None:
        """Tokenize `text` for each panel; `loaded` is this pass's own cache, posted back with the results."""
        worker = get_current_worker()
        results = []
        for key, title in panels:
            if worker.is_cancelled:
                return
            results.append(self._tokenize_one(loaded, key, title, text, allow_special))
        self.post_message(self.Tokenized(generation, results, loaded))

    def _tokenize_one(self, loaded: dict[str, Loaded], key: str, title: str, text: str, allow_special: bool) -> PanelResult:
        """One panel's result (runs in the worker; touches no widget, only its own cache)."""
        try:
            if key not in loaded:
                loaded[key] = self._load(key)
            tokenizer, counts = loaded[key]
            spans = split_tokens(tokenizer, text, allow_special)
        except (DatasetError, TokenizerError) as error:
            return PanelResult(key, title, error=str(error))
        if counts is not None:
            for span in spans:
                span.untrained = any(counts[i] == 0 for i in span.ids if i < len(counts))
        return PanelResult(key, title, spans)

    @staticmethod
    def _load(key: str) -> Loaded:
        """A tokenizer and, where its training data is known and still here, that data's token counts."""
        kind, _, name = key.partition(":")
        if kind == "tiktoken":
            return get_tokenizer(name), None
        if kind == "checkpoint":
            from core.checkpoint import CheckpointError, load_checkpoint

            try:
                ckpt = load_checkpoint(name, mmap=True)
            except CheckpointError as error:
                raise TokenizerError(str(error)) from None
            try:
                info = load_dataset(ckpt["dataset"].get("name", ""))
                # The same name may since hold other data: its counts only count under the same tokenizer.
                counts = token_counts(info) if info.tokenizer == ckpt["tokenizer"] else None
            except DatasetError:
                counts = None  # the dataset was deleted or renamed: no untrained marks
            return load_tokenizer(ckpt["tokenizer"]), counts
        info = load_dataset(name)
        return tokenizer_of(info), token_counts(info)

    def on_tokens_screen_tokenized(self, message: Tokenized) -> None:
        if message.generation != self._generation:
            return  # the text or the choices changed since: a newer pass is on its way
        # This pass started after the last load_choices (which starts a new one): its tokenizers are current.
        self._loaded.update(message.loaded)
        panels = {panel.key: panel for panel in self.query(TokenPanel)}
        for result in message.results:
            if result.key in panels:
                panels[result.key].show(result)

    def action_toggle_special(self) -> None:
        switch = self.query_one("#tokens-special", Switch)
        switch.value = not switch.value

    def action_clear_text(self) -> None:
        text_area = self.query_one("#tokens-text", TextArea)
        text_area.clear()
        text_area.focus()

    def action_reload(self) -> None:
        self.load_choices()
        self.notify("Tokenizer list reloaded")
