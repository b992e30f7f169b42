"""Modal dialogs shared by the screens: a yes/no question, a choice of a few answers and a one-line text prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from textual import events
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
class Choice:
    """One answer of a ChoiceModal: what it returns, the key that picks it, its button."""

    value: str
    key: str
    label: str
    variant: str = "default"  # a Button variant: "error" for one that deletes something


class ChoiceModal(ModalScreen["str | None"]):
    """Asks to pick one of a few answers: its key or its button picks it; escape cancels (None)."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choice.cancel")]

    def __init__(self, question: str, choices: list[Choice], first: str) -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.first = first  # the value whose button has the focus first (enter picks it)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                for choice in self.choices:
                    yield Button(f"{choice.label} ({choice.key})", variant=choice.variant, id=f"choice-{choice.value}")  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self.first}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def on_key(self, event: events.Key) -> None:
        for choice in self.choices:
            if event.key == choice.key:
                event.stop()
                self.dismiss(choice.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


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
