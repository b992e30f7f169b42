"""SessionsModal: the saved chat sessions, newest first; enter reopens one, escape closes.

It lists the session files and reads the chosen one in workers (`nanogpt_tui.chat_store`), and closes
with the session and its turns ready to show; a file that cannot be read is listed, greyed, with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from nanogpt_tui import chat_store
from nanogpt_tui.chat_store import SessionSummary
from nanogpt_tui.widgets.transcript import Turn


def session_line(summary: SessionSummary) -> Content:
    """`2026-11-26 21:30  tiny-run  3 turns  ROMEO: ...` (or the error of a file that cannot be read)."""
    if summary.error:
        return Content.styled(f"{summary.path.name}: cannot be read ({summary.error})", "$text-disabled")
    run = Path(summary.checkpoint).parent.name if summary.checkpoint else "-"
    when = summary.updated.replace("T", " ")[:16]
    turns = f"{summary.turns} turn{'s' if summary.turns != 1 else ''}"
    return Content.assemble((when, "$text-muted"), f"  {run}  {turns}  ", (summary.title or "(empty)", "bold"))


@dataclass
class Reopened:
    """What the modal closes with: the session as saved and its turns, ready to show."""

    session: chat_store.Session
    turns: list[Turn]


class SessionsModal(ModalScreen["Reopened | None"]):
    """Pick a session to reopen."""

    DEFAULT_CSS = """
    SessionsModal { align: center middle; }
    SessionsModal > Vertical {
        width: 100; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    SessionsModal Label { margin-bottom: 1; }
    SessionsModal OptionList { height: auto; max-height: 20; }
    SessionsModal .error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="sessions.cancel")]

    @dataclass
    class Listed(Message):
        sessions: list[SessionSummary]

    @dataclass
    class Read(Message):
        reopened: Reopened

    @dataclass
    class Failed(Message):
        error: str

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[SessionSummary] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Reopen a chat session (enter), or escape:")
            yield OptionList(id="sessions-list")
            yield Static("Reading the sessions…", classes="error")

    def on_mount(self) -> None:
        self.list_sessions()

    @work(thread=True, exclusive=True, exit_on_error=False, group="sessions")
    def list_sessions(self) -> None:
        try:
            self.post_message(self.Listed(chat_store.list_sessions()))
        except OSError as error:
            self.post_message(self.Failed(f"Listing the sessions failed: {error}"))

    def on_sessions_modal_listed(self, message: Listed) -> None:
        self.sessions = message.sessions
        options = self.query_one(OptionList)
        options.add_options(Option(session_line(s), id=str(s.path), disabled=s.error is not None) for s in self.sessions)
        if self.sessions:
            options.highlighted = 0  # the newest
        options.focus()
        self.query_one(".error", Static).update(
            "" if self.sessions else "No saved sessions yet: a conversation is saved when a reply ends."
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.reopen(Path(str(event.option.id)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="sessions")
    def reopen(self, path: Path) -> None:
        from core.inference.sampler import TokenPiece  # imports torch: a worker's job

        try:
            session = chat_store.load_session(path)
        except chat_store.StoreError as error:
            self.post_message(self.Failed(str(error)))
            return
        turns = [Turn(prompt, [TokenPiece(*piece) for piece in reply]) for prompt, reply in session.turns]
        self.post_message(self.Read(Reopened(session, turns)))

    def on_sessions_modal_read(self, message: Read) -> None:
        self.dismiss(message.reopened)

    def on_sessions_modal_failed(self, message: Failed) -> None:
        self.query_one(".error", Static).update(message.error)

    def action_cancel(self) -> None:
        self.dismiss(None)
