"""The Tokens screen: type text and see how several tokenizers split it, side by side.

The tokenizers: gpt2, cl100k_base (when cached), each prepared dataset's (a BPE learned from it too), and
each run's checkpoint's (rebuilt from the checkpoint alone). At first gpt2, a char dataset's and a learned
BPE's show side by side.

Tokenizing runs in a thread worker (building gpt2 takes about a second the first time); the worker
only computes `PanelResult`s and posts them, the screen hands each to its `TokenPanel`
(nanogpt_tui.widgets.token_panel). A dataset's tokenizer also gets the dataset's token counts, so
tokens that never occur in its training data are marked as untrained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import SelectionList, Static, Switch, TextArea
from textual.widgets.selection_list import Selection
from textual.worker import get_current_worker

from core.dataset.format import (
    DatasetError,
    DatasetInfo,
    load_dataset,
    token_counts,
    tokenizer_of,
)
from core.runs.files import LATEST
from core.tokens.bpe import KIND as BPE_KIND
from core.tokens.spans import decode_spans, parse_ids, split_tokens
from core.tokens.tokenizers import (
    ENDOFTEXT,
    TIKTOKEN_NAMES,
    Tokenizer,
    TokenizerError,
    available_tokenizers,
    get_tokenizer,
    load_tokenizer,
    tokenizer_name,
)
from nanogpt_tui import listings
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.token_views import legend, render_ids, render_splits
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.screen_tabs import ScreenTabs
from nanogpt_tui.widgets.token_panel import PanelResult, TokenPanel

# π and ≈ are one character but two GPT-2 tokens each; unlike an emoji, every monospace font draws them.
SAMPLE_TEXT = "Hello world! Tokenizers split text into pieces.\nnaïve café, π ≈ 3.14159,\ttabs and <|endoftext|>"
TEXT_TITLE = "Text (tab types a tab; escape leaves)"
IDS_TITLE = "Token ids (spaces or commas between them)"
DEBOUNCE_S = 0.15  # wait this long after the last keystroke before tokenizing again
Loaded = tuple[Tokenizer, frozenset[int] | None]  # a tokenizer and the ids never in its dataset's train, if known


def _untrained(counts: np.ndarray) -> frozenset[int]:
    """The ids that never occur in train: a set, so marking a long text's spans is quick."""
    return frozenset(np.flatnonzero(counts == 0).tolist())


class TokensScreen(AppScreen):
    """Compare how tokenizers split the same text."""

    CSS_PATH = "tokens.tcss"
    BINDINGS = [
        Binding("ctrl+t", "decode", "Decode ids", id="tokens.decode"),
        Binding("ctrl+t", "encode", "Encode text", id="tokens.encode"),
        Binding("ctrl+s", "toggle_special", "Special tokens", id="tokens.special"),
        Binding("ctrl+l", "clear_text", "Clear text", id="tokens.clear"),
        Binding("ctrl+r", "reload", "Reload", id="tokens.reload"),
    ]

    class Tokenized(Message):
        """Results of one tokenizing pass (`generation` tells stale passes apart)."""

        def __init__(self, generation: int, decoding: bool, results: list[PanelResult]) -> None:
            super().__init__()
            self.generation = generation
            self.decoding = decoding
            self.results = results

    @dataclass
    class CarriedOver(Message):
        """The text box's content converted for the mode just entered (ids, or their text)."""

        text: str

    class ChoicesListed(Message):
        """What the tokenizer list offers: tiktoken names (and why one is unavailable), the datasets,
        and the runs whose checkpoints lend their tokenizer: (run, checkpoint path, tokenizer name)."""

        def __init__(
            self,
            signature: tuple[object, ...],
            tiktoken: dict[str, str | None],
            datasets: list[DatasetInfo],
            runs: list[tuple[str, str, str]],
        ) -> None:
            super().__init__()
            self.signature = signature
            self.tiktoken = tiktoken
            self.datasets = datasets
            self.runs = runs

    # Decoding: the text box holds token ids, and each panel shows the text its vocabulary makes of them.
    decoding: reactive[bool] = reactive(False, bindings=True, init=False)

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self._generation = 0
        self._titles: dict[str, str] = {}
        self._choices_signature: tuple[object, ...] | None = None  # of the listing the choices show

    def compose(self) -> ComposeResult:
        yield ScreenTabs()
        with Horizontal(id="tokens-top"):
            # Tab types a tab (tabs are tokens too); escape leaves the box, as the footer says.
            yield TextArea(SAMPLE_TEXT, id="tokens-text", soft_wrap=True, tab_behavior="indent")
            with Vertical(id="tokens-options"):
                yield SelectionList[str](id="tokens-choices")
                with Horizontal(id="tokens-special-row"):
                    yield Switch(False, id="tokens-special", animate=False)
                    yield Static("", id="tokens-special-label")
                yield Static(legend(), id="tokens-legend")
        yield Horizontal(id="tokens-panels")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#tokens-choices", SelectionList).border_title = "Tokenizers"
        text_area = self.query_one("#tokens-text", TextArea)
        text_area.indent_type = "tabs"
        text_area.border_title = TEXT_TITLE
        self._describe_special()
        self.load_choices()
        self.query_one("#tokens-text", TextArea).focus()

    def on_screen_resume(self) -> None:
        # Datasets may have been prepared or deleted on the Data screen meanwhile (the listing is
        # cached by the files' stats: with nothing changed, nothing is read and nothing redrawn).
        if self.is_mounted:
            self.load_choices()

    def load_choices(self) -> None:
        """(Re)list the tokenizers in a worker; the list is redrawn only if something changed."""
        self.list_choices()

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokens-choices")
    def list_choices(self) -> None:
        """gpt2, cl100k_base, every prepared dataset's tokenizer and each run's latest checkpoint's."""
        tiktoken = {name: reason for name, reason in available_tokenizers().items() if name in TIKTOKEN_NAMES}
        datasets_signature, items = listings.datasets()
        try:
            checkpoints_signature, summaries = listings.checkpoints()
        except Exception:  # an unreadable runs folder: its runs are not offered
            checkpoints_signature, summaries = ("unreadable",), []
        runs = [(s.name, str(s.path), s.tokenizer) for s in summaries if s.path.name == LATEST and not s.error]
        datasets = [item for item in items if isinstance(item, DatasetInfo)]
        signature = (tuple(tiktoken.items()), datasets_signature, checkpoints_signature)
        if not get_current_worker().is_cancelled:
            self.post_message(self.ChoicesListed(signature, tiktoken, datasets, runs))

    def on_tokens_screen_choices_listed(self, message: ChoicesListed) -> None:
        if message.signature == self._choices_signature:
            return  # nothing changed: the choices, the panels and their tokens stay as they are
        self._choices_signature = message.signature
        choices = self.query_one("#tokens-choices", SelectionList)
        previous = set(choices.selected)
        first_time = choices.option_count == 0
        # The first comparison: gpt2 beside a char dataset's and a learned BPE's tokenizer (else any that is
        # not gpt2 again), so the three kinds sit side by side.
        kinds = {kind: next((i.name for i in message.datasets if i.tokenizer.get("kind") == kind), None)
                 for kind in ("char", BPE_KIND)}
        other = next((i.name for i in message.datasets if tokenizer_name(i.tokenizer) != "gpt2"), None)
        first_datasets = {name for name in kinds.values() if name} or {other}
        self._titles.clear()
        options: list[Selection[str]] = []
        for name, reason in message.tiktoken.items():
            key = f"tiktoken:{name}"
            self._titles[key] = name
            prompt = name if reason is None else f"{name} (unavailable: {reason})"
            selected = key in previous or (first_time and name == "gpt2" and reason is None)
            options.append(Selection(prompt, key, selected, disabled=reason is not None))
        for info in message.datasets:
            key = f"dataset:{info.name}"
            self._titles[key] = f"{info.name} ({tokenizer_name(info.tokenizer)}, vocab {info.vocab_size})"
            selected = key in previous or (first_time and info.name in first_datasets)
            options.append(Selection(self._titles[key], key, selected))
        for run, path, tokenizer in message.runs:
            key = f"checkpoint:{path}"
            self._titles[key] = f"run {run} ({tokenizer})"
            options.append(Selection(self._titles[key], key, key in previous))
        with self.prevent(SelectionList.SelectedChanged):
            choices.clear_options()
            choices.add_options(options)
        # A dataset prepared again under the same name has new counts: the pass reads them afresh
        # (the tokenizers are cached by their files' stats).
        self.refresh_tokens()

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
        self.tokenize(self._generation, text, panel_titles, allow_special, self.decoding)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokenize")
    def tokenize(
        self, generation: int, text: str, panels: list[tuple[str, str]], allow_special: bool, decoding: bool
    ) -> None:
        """Tokenize `text` (or decode the ids it holds) for each panel and draw its splits and ids (as rich Text)."""
        worker = get_current_worker()
        results = []
        for key, title in panels:
            if worker.is_cancelled:
                return
            result = self._tokenize_one(key, title, text, allow_special, decoding)
            if not result.error:
                result.splits, result.ids = render_splits(result.spans), render_ids(result.spans)
            results.append(result)
        if not worker.is_cancelled:
            self.post_message(self.Tokenized(generation, decoding, results))

    def _tokenize_one(self, key: str, title: str, text: str, allow_special: bool, decoding: bool) -> PanelResult:
        """One panel's result (runs in the worker; touches no widget)."""
        try:
            tokenizer, untrained = self._load(key)
            spans = decode_spans(tokenizer, parse_ids(text)) if decoding else split_tokens(tokenizer, text, allow_special)
        except (DatasetError, TokenizerError) as error:
            return PanelResult(key, title, error=str(error))
        if untrained:
            for span in spans:
                span.untrained = any(i in untrained for i in span.ids)
        return PanelResult(key, title, spans)

    @staticmethod
    def _load(key: str) -> Loaded:
        """A tokenizer and, where its training data is known and still here, the ids its train split lacks.

        Cached by the files' stats (`nanogpt_tui.listings`): a checkpoint or dataset is read again only
        once it has changed on disk.
        """
        kind, _, name = key.partition(":")
        if kind == "tiktoken":
            return listings.memo(("tokenizer", name), lambda: (get_tokenizer(name), None))
        if kind == "checkpoint":
            from core.runs.checkpoint import CheckpointError

            try:
                spec, dataset = listings.checkpoint_tokenizer(Path(name))
            except CheckpointError as error:
                raise TokenizerError(str(error)) from None
            folder = listings.dataset_folder(dataset) if dataset else None
            files = (name, listings.file_signature(Path(name)), listings.dataset_signature(folder) if folder else None)

            def load_checkpoint_tokenizer() -> Loaded:
                try:
                    info = load_dataset(dataset)
                    # The same name may since hold other data: its counts only count under the same tokenizer.
                    untrained = _untrained(token_counts(info)) if info.tokenizer == spec else None
                except DatasetError:
                    untrained = None  # the dataset was deleted or renamed: no untrained marks
                return load_tokenizer(spec), untrained

            return listings.cached_by_files("checkpoint-tokenizer", files, load_checkpoint_tokenizer)

        def load_dataset_tokenizer() -> Loaded:
            info = load_dataset(name)
            return tokenizer_of(info), _untrained(token_counts(info))

        return listings.cached_by_files("dataset-tokenizer", listings.signature_of_dataset(name), load_dataset_tokenizer)

    def on_tokens_screen_tokenized(self, message: Tokenized) -> None:
        if message.generation != self._generation:
            return  # the text or the choices changed since: a newer pass is on its way
        panels = {panel.key: panel for panel in self.query(TokenPanel)}
        for result in message.results:
            if result.key in panels:
                panels[result.key].show(result, message.decoding)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "decode":
            return not self.decoding
        if action == "encode":
            return self.decoding
        return True

    def action_decode(self) -> None:
        self.decoding = True

    def action_encode(self) -> None:
        self.decoding = False

    def watch_decoding(self, decoding: bool) -> None:
        text_area = self.query_one("#tokens-text", TextArea)
        text_area.border_title = IDS_TITLE if decoding else TEXT_TITLE
        text_area.focus()
        if self._timer is not None:
            self._timer.stop()
        first = next(iter(self.query(TokenPanel)), None)
        if first is None:
            self.refresh_tokens()
            return
        allow_special = self.query_one("#tokens-special", Switch).value
        self.carry_over(first.key, text_area.text, decoding, allow_special)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokenize")
    def carry_over(self, key: str, text: str, decoding: bool, allow_special: bool) -> None:
        """The text box's content in the other mode, by the first panel's tokenizer: the text's ids, or the
        text the ids decode to (ids that do not parse stay as typed)."""
        try:
            tokenizer, _ = self._load(key)
            if decoding:
                carried = " ".join(str(i) for i in tokenizer.encode(text, allow_special=allow_special))
            else:
                carried = "".join(span.text for span in decode_spans(tokenizer, parse_ids(text)))
        except (DatasetError, TokenizerError):
            carried = text
        self.post_message(self.CarriedOver(carried))

    def on_tokens_screen_carried_over(self, message: CarriedOver) -> None:
        text_area = self.query_one("#tokens-text", TextArea)
        with self.prevent(TextArea.Changed):
            text_area.text = message.text
        self.refresh_tokens()

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
