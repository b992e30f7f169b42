"""ExportModal: how to export a checkpoint (nanoGPT ckpt.pt or Hugging Face GPT-2) and into which folder.

It offers only the formats the run can be exported to (core.interop.gpt2_files.export_refusals decides) and
says why the others are not offered."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from core.interop.gpt2_files import FORMATS
from nanogpt_tui.widgets.path_input import PathInput, expand


@dataclass
class ExportChoice:
    """What the user chose: a format (a key of core.interop.gpt2_files.FORMATS), a folder, and whether to replace files."""

    format: str
    folder: str
    overwrite: bool


class FolderToWrite(Validator):
    """A folder that exists, or a path where one can be made (the export creates it)."""

    def validate(self, value: str) -> ValidationResult:
        if not value.strip():
            return self.failure("Type a folder")
        path = expand(value)
        if path.exists() and not path.is_dir():
            return self.failure(f"{path} is a file: choose a folder")
        return self.success()


class ExportModal(ModalScreen["ExportChoice | None"]):
    """Choose the format (shift+tab, ↑/↓), the folder (focused first; Tab completes a path) and Overwrite;
    Enter in the folder exports, Escape cancels. What the chosen format cannot carry of the run's tokenizer
    (`caveats`, by format) shows under the formats before anything is exported."""

    CSS_PATH = "export_dialog.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export_modal.cancel")]

    def __init__(self, title: str, exports_dir: Path, refusals: dict[str, str] | None = None,
                 caveats: dict[str, str | None] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.exports_dir = exports_dir  # the default folder is exports_dir/<format>
        self.refusals = refusals or {}  # format -> why this run cannot take it (not offered)
        self.caveats = caveats or {}  # format -> what it cannot carry of the run's tokenizer (offered, warned)
        # The formats offered; the screen opens the dialog only when there is one.
        self.formats = [name for name in FORMATS if name not in self.refusals]

    def default_folder(self, fmt: str) -> str:
        return str(self.exports_dir / fmt)

    def compose(self) -> ComposeResult:
        first = self.formats[0]
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="question")
            with RadioSet(id="export-format"):
                for name in self.formats:
                    yield RadioButton(FORMATS[name], value=name == first, name=name)
            yield Static(self.caveats.get(first) or "", id="export-caveat", classes="caveat")
            if self.refusals:
                yield Static("\n".join(f"Not offered: {FORMATS[name].split(':')[0]}: {why}"
                                        for name, why in self.refusals.items()), id="export-refused", classes="note")
            yield Label("Folder (created if needed):")
            folder = PathInput(self.default_folder(first), kind="dir", id="export-folder")
            folder.validators = [FolderToWrite()]  # a new folder is fine, unlike PathInput's default check
            yield folder
            yield Checkbox("Overwrite existing files", id="export-overwrite")
            yield Static("", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Export (enter)", variant="primary", id="export")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        # The folder first: Enter exports at once (to the default folder, in the first format); shift+tab
        # goes to the formats (↑/↓ and Enter choose one).
        self.query_one("#export-folder", PathInput).focus()

    def selected_format(self) -> str:
        pressed = self.query_one("#export-format", RadioSet).pressed_button
        return str(pressed.name) if pressed is not None else self.formats[0]

    @on(RadioSet.Changed, "#export-format")
    def format_changed(self, event: RadioSet.Changed) -> None:
        # Follow the format with the default folder, unless the user typed one of their own.
        self.query_one("#export-caveat", Static).update(self.caveats.get(str(event.pressed.name)) or "")
        folder = self.query_one("#export-folder", PathInput)
        if folder.value in (self.default_folder(name) for name in FORMATS):
            folder.value = self.default_folder(str(event.pressed.name))

    @on(Input.Submitted, "#export-folder")
    @on(Button.Pressed, "#export")
    def submit(self) -> None:
        folder = self.query_one("#export-folder", PathInput)
        result = folder.validate(folder.value)
        if result is not None and not result.is_valid:
            self.query_one(".error", Static).update("; ".join(result.failure_descriptions))
            return
        overwrite = self.query_one("#export-overwrite", Checkbox).value
        self.dismiss(ExportChoice(self.selected_format(), str(folder.path), overwrite))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
