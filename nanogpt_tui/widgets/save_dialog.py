"""SaveTextModal: asks where to write a text, writes it, and never overwrites a file unasked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.message import Message
from textual.widgets import Input, Static

from core.common.disk import write_text_atomic
from nanogpt_tui.widgets.dialogs import ConfirmModal, TextModal, TextPrompt


class SaveTextModal(TextModal):
    """A path field (completing paths) for a text file: enter writes it (after a yes/no question when the
    file exists) and the dialog closes with the path; a problem shows under the field; escape cancels."""

    @dataclass
    class Written(Message):
        path: Path
        error: str | None = None
        exists: bool = False  # not written: the file exists and overwriting was not confirmed

    def __init__(self, question: str, text: str, default: Path) -> None:
        super().__init__(TextPrompt(question, str(default), paths=True, kind="new"))
        self.text = text

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.prevent_default()  # TextModal's own handler would close the dialog with the path
        if event.validation_result is not None and not event.validation_result.is_valid:
            self.query_one(".error", Static).update("; ".join(event.validation_result.failure_descriptions))
        else:
            self.write(Path(event.value.strip()).expanduser(), overwrite=False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="save-text")
    def write(self, path: Path, overwrite: bool) -> None:
        try:
            if path.exists() and not overwrite:
                self.post_message(self.Written(path, exists=True))
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, self.text, what=f"save {path.name}")  # (a full disk: one line, nothing half-written)
        except OSError as error:
            self.post_message(self.Written(path, error=str(error)))
            return
        self.post_message(self.Written(path))

    def on_save_text_modal_written(self, message: Written) -> None:
        if message.exists:

            def answer(yes: bool | None) -> None:
                if yes:
                    self.write(message.path, overwrite=True)

            self.app.push_screen(ConfirmModal(f"{message.path} exists. Overwrite it?"), answer)
        elif message.error:
            self.query_one(".error", Static).update(message.error)
        else:
            self.dismiss(str(message.path))
