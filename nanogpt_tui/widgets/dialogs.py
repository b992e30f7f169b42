"""Modal dialogs shared by the screens: a yes/no question and a one-line text prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from nanogpt_tui.widgets.path_input import PathInput, PathKind


class ConfirmModal(ModalScreen[bool]):
    """Asks a yes/no question: y says yes, n or escape says no; enter presses the focused button (No at first)."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


@dataclass
class TextPrompt:
    """What a TextModal asks: a question, a starting value, and a check that returns an error or None."""

    question: str
    value: str = ""
    check: Callable[[str], str | None] | None = None
    paths: bool = False  # a PathInput (completes and checks paths) instead of a plain Input
    kind: PathKind = "any"  # what the PathInput expects


class TextModal(ModalScreen["str | None"]):
    """Asks for one line of text; enter accepts (when the check passes), escape cancels."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="text_modal.cancel")]

    def __init__(self, prompt: TextPrompt) -> None:
        super().__init__()
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt.question, classes="question")
            if self.prompt.paths:
                yield PathInput(self.prompt.value, kind=self.prompt.kind, id="answer")
            else:
                yield Input(self.prompt.value, id="answer")
            yield Static("", classes="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if event.validation_result is not None and not event.validation_result.is_valid:
            error: str | None = "; ".join(event.validation_result.failure_descriptions)
        else:
            error = self.prompt.check(value) if self.prompt.check else None
        if error:
            self.query_one(".error", Static).update(error)
        else:
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
