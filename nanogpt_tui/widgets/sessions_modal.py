"""SessionsModal: the saved chat sessions, newest first; enter reopens one, escape closes."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from nanogpt_tui.chat_store import SessionSummary


def session_line(summary: SessionSummary) -> Content:
    """`2026-11-26 21:30  tiny-run  3 turns  ROMEO: ...` (or the error of a file that cannot be read)."""
    if summary.error:
        return Content.styled(f"{summary.path.name}: cannot be read ({summary.error})", "$error")
    run = Path(summary.checkpoint).parent.name if summary.checkpoint else "-"
    when = summary.updated.replace("T", " ")[:16]
    turns = f"{summary.turns} turn{'s' if summary.turns != 1 else ''}"
    return Content.assemble((when, "$text-muted"), f"  {run}  {turns}  ", (summary.title or "(empty)", "bold"))


class SessionsModal(ModalScreen["Path | None"]):
    """Pick a session to reopen: dismissed with its file, or None."""

    DEFAULT_CSS = """
    SessionsModal { align: center middle; }
    SessionsModal > Vertical {
        width: 100; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    SessionsModal Label { margin-bottom: 1; }
    SessionsModal OptionList { height: auto; max-height: 20; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="sessions.cancel")]

    def __init__(self, sessions: list[SessionSummary]) -> None:
        super().__init__()
        self.sessions = sessions

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Reopen a chat session (enter), or escape:")
            yield OptionList(
                *(Option(session_line(s), id=str(s.path), disabled=s.error is not None) for s in self.sessions),
                id="sessions-list",
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(str(event.option.id)))

    def action_cancel(self) -> None:
        self.dismiss(None)
