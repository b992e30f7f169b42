"""PrepareForm: the Data screen's fields (source, path or Hugging Face name, extensions, the records' text field,
tokenizer, for a learned BPE its vocabulary size and split pattern, validation share, name).

It checks the path as it is typed, shows the name prepare() will give the dataset when none is typed,
and `read_form()` turns the fields into a PrepareRequest (or a ValueError with a message for the user).
The Data screen owns the preparation itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, RadioButton, RadioSet, Select, Static

from core.common import paths
from core.dataset.format import check_name
from core.tokens.bpe import DEFAULT_PATTERN, MAX_VOCAB, MIN_VOCAB, SPLIT_PATTERNS, check_vocab_size
from core.tokens.tokenizers import available_tokenizers
from data.learn_bpe import BPE, DEFAULT_VOCAB, tokenizer_label
from data.prepare import default_name
from data.records import DEFAULT_TEXT_FIELD, HF_PREFIX, parse_hf
from data.sources import DEFAULT_EXTENSIONS, SHAKESPEARE, Source, file_source_name
from nanogpt_tui.widgets.path_input import PathInput

SOURCE_KINDS = {"source-shakespeare": "shakespeare", "source-file": "file", "source-folder": "dir", "source-hf": "hf"}


@dataclass
class PrepareRequest:
    """What the form asks prepare() for."""

    source: str
    tokenizer: str
    name: str | None
    val_fraction: float
    extensions: tuple[str, ...]
    text_field: str = DEFAULT_TEXT_FIELD  # of JSON lines, Parquet and Hugging Face records
    overwrite: bool = False  # the user chose to replace the dataset of that name
    vocab_size: int | None = None  # a learned BPE's (tokenizer "bpe")
    split_pattern: str = DEFAULT_PATTERN


class PrepareForm(Vertical):
    """The fields of a preparation; `read_form()` reads them as a PrepareRequest."""

    DEFAULT_CSS = """
    PrepareForm { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Label("Source", classes="field-label")
        with RadioSet(id="data-source"):
            yield RadioButton("Tiny Shakespeare (downloaded once)", id="source-shakespeare", value=True)
            yield RadioButton("A file: text, JSON lines or Parquet", id="source-file")
            yield RadioButton("A folder of files or Parquet shards", id="source-folder")
            yield RadioButton("A Hugging Face dataset (streamed)", id="source-hf")
        yield PathInput(
            kind="file", id="data-path", placeholder="path (→ or Tab completes)", disabled=True
        )
        yield Input(id="data-hf", placeholder="NAME or NAME:CONFIG, e.g. roneneldan/TinyStories", classes="hidden")
        yield Static("", id="data-path-note", classes="note")
        yield Input(", ".join(DEFAULT_EXTENSIONS), id="data-extensions", classes="hidden")
        yield Label("Text field of records", id="data-text-field-label", classes="field-label hidden")
        yield Input(DEFAULT_TEXT_FIELD, id="data-text-field", classes="hidden",
                    tooltip="JSON lines, Parquet and Hugging Face records: the field holding each document's text")
        yield Label("Tokenizer", classes="field-label")
        reasons = available_tokenizers()
        with RadioSet(id="data-tokenizer"):
            for name, reason in reasons.items():
                yield RadioButton(
                    name if reason is None else f"{name} (unavailable)",
                    id=f"tok-{name}",
                    value=name == "char",
                    disabled=reason is not None,
                    tooltip=reason,
                )
                if name == "char":  # the learned BPE next to char: both are made from the text itself
                    yield RadioButton("bpe, learned from the text", id=f"tok-{BPE}",
                                      tooltip="a byte-level BPE learned from the train split")
        with Vertical(id="data-bpe", classes="hidden"):
            yield Label(f"Vocabulary size ({MIN_VOCAB}–{MAX_VOCAB:,}): 256 bytes + merges + <|endoftext|>",
                        classes="field-label")
            yield Input(str(DEFAULT_VOCAB), id="data-vocab", type="integer")
            yield Select([(f"split like {name.upper()}", name) for name in SPLIT_PATTERNS], value=DEFAULT_PATTERN,
                         allow_blank=False, id="data-split")
        yield Static(
            "\n".join(f"{name}: {reason}" for name, reason in reasons.items() if reason),
            id="data-tokenizer-note",
            classes="note",
        )
        yield Label("Validation share (0–1)", classes="field-label")
        yield Input("0.1", id="data-val", type="number")
        yield Label("Dataset name", classes="field-label")
        yield Input(id="data-name")

    def on_mount(self) -> None:
        self._source_changed()

    @property
    def source_kind(self) -> str:
        button = self.query_one("#data-source", RadioSet).pressed_button
        return SOURCE_KINDS[button.id if button and button.id else "source-shakespeare"]

    @property
    def tokenizer(self) -> str:
        button = self.query_one("#data-tokenizer", RadioSet).pressed_button
        return button.id.removeprefix("tok-") if button and button.id else "char"

    @on(RadioSet.Changed, "#data-source")
    def _source_changed(self) -> None:
        kind = self.source_kind
        path_input = self.query_one("#data-path", PathInput)
        path_input.disabled = kind == "shakespeare"
        path_input.set_class(kind == "hf", "hidden")
        self.query_one("#data-hf").set_class(kind != "hf", "hidden")
        self.query_one("#data-extensions").set_class(kind != "dir", "hidden")
        for field in ("#data-text-field-label", "#data-text-field"):
            self.query_one(field).set_class(kind == "shakespeare", "hidden")
        if kind == "shakespeare":
            cached = paths.cache_dir() / "tinyshakespeare.txt"
            self._path_note("cached, no download needed" if cached.is_file() else "downloaded on first use (needs network)")
        elif kind == "hf":
            self._path_note("its train split, streamed once (needs pip install datasets, and network)")
        else:
            path_input.set_kind("file" if kind == "file" else "dir")
            self._check_path()
        self._update_name_placeholder()

    @on(RadioSet.Changed, "#data-tokenizer")
    def _tokenizer_changed(self) -> None:
        self.query_one("#data-bpe").set_class(self.tokenizer != BPE, "hidden")
        self._update_name_placeholder()

    @on(Input.Changed, "#data-vocab")
    def _vocab_changed(self) -> None:
        self._update_name_placeholder()

    def _vocab_size(self) -> int | None:
        """The typed vocabulary size, or None when it is not a whole number."""
        try:
            return int(self.query_one("#data-vocab", Input).value)
        except ValueError:
            return None

    @on(Input.Changed, "#data-path")
    @on(Input.Changed, "#data-hf")
    def _path_changed(self) -> None:
        self._check_path()
        self._update_name_placeholder()

    def _check_path(self) -> str | None:
        """Show whether the typed path is usable; the problem, or None when it is."""
        if self.source_kind == "hf":
            return None  # only the hub can tell
        path_input = self.query_one("#data-path", PathInput)
        result = path_input.validate(path_input.value)
        problem = None if result is None or result.is_valid else result.failure_descriptions[0]
        self._path_note(problem or "", error=problem is not None)
        return problem

    def _path_note(self, text: str, error: bool = False) -> None:
        note = self.query_one("#data-path-note", Static)
        note.update(text)
        note.set_class(error, "error")

    def _source_spec(self) -> str:
        if self.source_kind == "hf":
            return HF_PREFIX + self.query_one("#data-hf", Input).value.strip().removeprefix(HF_PREFIX)
        return SHAKESPEARE if self.source_kind == "shakespeare" else self.query_one("#data-path", PathInput).value.strip()

    def _update_name_placeholder(self) -> None:
        """Show the name prepare() will use when the name field is left empty."""
        self.query_one("#data-name", Input).placeholder = f"{self.default_name()} (default)"

    def default_name(self) -> str:
        """The name prepare() gives the dataset when the name field is left empty."""
        if self.source_kind == "shakespeare":
            stem = SHAKESPEARE
        elif self.source_kind == "hf":
            name = self.query_one("#data-hf", Input).value.strip().removeprefix(HF_PREFIX)
            stem = name.partition(":")[0].rsplit("/", 1)[-1]  # as data.sources names it
        else:
            path_input = self.query_one("#data-path", PathInput)
            path = path_input.path
            if not path_input.value.strip():
                stem = ""  # nothing typed yet: prepare's generic name
            else:
                stem = file_source_name(path) if self.source_kind == "file" else path.resolve().name
        return default_name(Source(description="", name=stem, files=[]), tokenizer_label(self.tokenizer, self._vocab_size()))

    def read_form(self) -> PrepareRequest:
        """The form as a request; ValueError with a message for the user when a field is wrong."""
        problem = None if self.source_kind == "shakespeare" else self._check_path()
        if problem:
            raise ValueError(problem)
        if self.source_kind == "hf":
            parse_hf(self._source_spec())  # RecordsError (a ValueError) when no name is typed
        try:
            val_fraction = float(self.query_one("#data-val", Input).value)
        except ValueError:
            val_fraction = -1.0
        if not 0 < val_fraction < 1:
            raise ValueError("Validation share must be a number between 0 and 1, such as 0.1")
        name = self.query_one("#data-name", Input).value.strip() or None
        if name is not None:
            check_name(name)  # DatasetError is a ValueError with a message for the user
        extensions = tuple(e.strip() for e in self.query_one("#data-extensions", Input).value.split(",") if e.strip())
        text_field = self.query_one("#data-text-field", Input).value.strip()
        if not text_field:
            raise ValueError("Name the records' text field, such as text")
        request = PrepareRequest(self._source_spec(), self.tokenizer, name, val_fraction, extensions or DEFAULT_EXTENSIONS,
                                 text_field)
        if self.tokenizer == BPE:
            vocab_size = self._vocab_size()
            check_vocab_size(vocab_size or 0)  # TokenizerError is a ValueError with a message for the user
            request.vocab_size = vocab_size
            request.split_pattern = str(self.query_one("#data-split", Select).value)
        return request
