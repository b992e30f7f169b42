"""The Chat screen's conversation: one TurnView per turn (the prompt and the reply, each a block).

The models trained here are completion models, so what the model reads is one text: the turns joined,
each prompt on a new line (`context_text`). On screen each turn is its own widget, so while a reply
streams only that turn is drawn again (`Transcript.refresh_turn`), however long the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.style import Style
from textual.widgets import Static

if TYPE_CHECKING:
    from core.inference.sampler import TokenPiece

UNLIKELY, LIKELY = Color(220, 70, 70), Color(70, 200, 100)  # probability colours: 0 -> red, 1 -> green
PROMPT_MARK, REPLY_MARK = "--- prompt ---", "--- reply ---"  # lines of a saved conversation (marked_text)


@dataclass
class Turn:
    """One prompt ("" continues the text) and the reply's tokens (which grow while the reply streams)."""

    prompt: str
    pieces: list[TokenPiece] = field(default_factory=list)

    @property
    def reply(self) -> str:
        return "".join(piece.text for piece in self.pieces)

    @property
    def stopped_at(self) -> str | None:
        """The stop string that ended the reply, if one did (kept out of the reply's text)."""
        return self.pieces[-1].stop if self.pieces else None


def stop_note(stop: str) -> str:
    """Why a reply has no text: it ended on a stop string at once."""
    return f"stopped at stop string {stop!r} before any text"


def marked_text(turns: list[Turn], title: str) -> str:
    """The conversation as a text file: `title`, then each turn's prompt and reply under marker lines, so a
    reader sees where the prompt ends and the model's reply begins (the reply continues the prompt's text)."""
    lines = [title, ""]
    for turn in turns:
        if turn.prompt:
            lines += [PROMPT_MARK, turn.prompt.rstrip("\n")]
        reply = turn.reply.rstrip("\n")
        lines.append(REPLY_MARK + ("" if turn.prompt else " (continuing the text)"))
        lines.append(reply if reply or turn.stopped_at is None else f"({stop_note(turn.stopped_at)})")
        lines.append("")
    return "\n".join(lines)


def context_text(turns: list[Turn]) -> str:
    """What the model reads: every prompt and reply in order, each non-empty prompt starting a line."""
    text = ""
    for turn in turns:
        if turn.prompt and text and not text.endswith("\n"):
            text += "\n"
        text += turn.prompt + turn.reply
    return text


def probability_colour(prob: float) -> Color:
    return UNLIKELY.blend(LIKELY, max(0.0, min(1.0, prob)))


class TurnView(Vertical):
    """A prompt block and a reply block. The reply's tokens are clickable: they select the token."""

    def __init__(self, turn: Turn, index: int) -> None:
        super().__init__(classes="turn")
        self.turn = turn
        self.index = index
        prompt = turn.prompt.strip("\n")
        self.prompt = Static(prompt or Content.styled("(continue the text)", "italic"), classes="prompt", markup=False)
        self.reply = Static("", classes="reply")
        # Tokens carry @click meta; Textual's link styling would paint over the probability colours.
        self.reply.auto_links = False

    def compose(self) -> ComposeResult:
        yield self.prompt
        yield self.reply

    def on_mount(self) -> None:
        transcript = self.parent
        if isinstance(transcript, Transcript):
            self.show_reply(transcript.colours, transcript.cursor)

    def show_reply(self, colours: bool, cursor: tuple[int, int] | None) -> None:
        """Draw the reply's tokens: coloured by probability when asked, the cursor's token reversed."""
        parts: list[tuple[str, Style]] = []
        for i, piece in enumerate(self.turn.pieces):
            style = Style.from_meta({"@click": f"screen.select_token({self.index}, {i})"})
            if colours:
                style = Style(foreground=probability_colour(piece.prob)) + style
            if cursor == (self.index, i):
                style = Style(reverse=True) + style
            parts.append((piece.text, style))
        stop = self.turn.stopped_at
        if stop is not None and not self.turn.reply:  # an empty block would say nothing of why
            parts = [(f"({stop_note(stop)})", Style(italic=True, dim=True))]
        self.reply.update(Content.assemble(*parts))


class Transcript(VerticalScroll):
    """The turns of the conversation, each a TurnView; it owns the turns, the colouring and the token cursor."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.turns: list[Turn] = []
        self.colours = False
        self.cursor: tuple[int, int] | None = None  # (turn, token) whose alternatives show
        self.views: list[TurnView] = []  # one per turn (kept here: a removal takes effect later)

    def text(self) -> str:
        return context_text(self.turns)

    def add_turn(self, turn: Turn) -> None:
        self.turns.append(turn)
        self.views.append(TurnView(turn, len(self.turns) - 1))
        self.mount(self.views[-1])
        self.call_after_refresh(self.scroll_end, animate=False)

    def remove_last(self) -> None:
        """Drop the last turn (a prompt the model refused), leaving the conversation as it was before it."""
        if self.turns:
            self.turns.pop()
            self.views.pop().remove()
            self._drop_cursor_past_end()

    def set_turns(self, turns: list[Turn]) -> None:
        """Show another conversation (a new one, or a session reopened)."""
        self.turns = list(turns)
        self.cursor = None
        self.remove_children()
        self.views = [TurnView(turn, i) for i, turn in enumerate(self.turns)]
        self.mount_all(self.views)
        self.call_after_refresh(self.scroll_end, animate=False)

    def refresh_turn(self, index: int) -> None:
        """Draw turn `index` again (its reply grew): no other turn is touched."""
        at_end = self.scroll_y >= self.max_scroll_y - 1  # follow the reply unless the user scrolled up
        if 0 <= index < len(self.views):
            self.views[index].show_reply(self.colours, self.cursor)
        if at_end:
            self.call_after_refresh(self.scroll_end, animate=False)

    def set_colours(self, colours: bool) -> None:
        self.colours = colours
        for view in self.views:
            view.show_reply(self.colours, self.cursor)

    def select(self, cursor: tuple[int, int] | None) -> None:
        """Put the token cursor on (turn, token), or nowhere; only the turns it leaves and enters are drawn."""
        if cursor is not None:
            t, i = cursor
            if not (0 <= t < len(self.turns) and 0 <= i < len(self.turns[t].pieces)):
                return
        touched = {c[0] for c in (self.cursor, cursor) if c is not None}
        self.cursor = cursor
        for t in touched:
            self.refresh_turn(t)

    def move_cursor(self, step: int) -> None:
        """Move the cursor within its reply; the first move starts on the last reply's last token."""
        if self.cursor is None:
            replies = [t for t, turn in enumerate(self.turns) if turn.pieces]
            if replies:
                self.select((replies[-1], len(self.turns[replies[-1]].pieces) - 1))
            return
        t, i = self.cursor
        self.select((t, max(0, min(len(self.turns[t].pieces) - 1, i + step))))

    def selected_piece(self) -> TokenPiece | None:
        if self.cursor is None:
            return None
        t, i = self.cursor
        return self.turns[t].pieces[i]

    def _drop_cursor_past_end(self) -> None:
        if self.cursor is not None and self.cursor[0] >= len(self.turns):
            self.cursor = None
