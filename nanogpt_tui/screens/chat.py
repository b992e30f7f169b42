"""The Chat screen: pick a checkpoint, type a prompt, watch the model's reply stream in.

A conversation is a list of turns, each a prompt and the model's reply, shown as blocks
(`nanogpt_tui.widgets.transcript`); the model reads them as one text and each reply continues it.
ctrl+r regenerates the last reply; a prompt the model cannot read is refused and leaves the
conversation as it was. Each conversation is saved as a session when a reply ends (ctrl+o reopens
one, ctrl+l starts a new one; `nanogpt_tui.chat_store`), and ctrl+s writes it to a text file. The side
panel (`nanogpt_tui.widgets.sampling_panel`) holds the sampling settings, remembered between launches.

Under the transcript, what the model sees: a context meter (the tokens the next reply reads against the
block_size; past it, that older tokens are out of view) and, for the token under the cursor (alt+←/→ or a
click), the likeliest tokens the model weighed there (`nanogpt_tui.widgets.chat_insight`).

The model is the checkpoint file as it was when loaded (`nanogpt_tui.chat_engine`): the picker is
refreshed every few seconds and a checkpoint that changed on disk (a run still training) is loaded
again, at the latest just before the next reply; a run renamed on the Checkpoints screen is followed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Select, Static, Switch
from textual.worker import get_current_worker

from core.common import paths
from nanogpt_tui import chat_store
from nanogpt_tui.chat_engine import Engine, load_engine
from nanogpt_tui.messages import OpenChat, WorkFailed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.checkpoint_picker import CheckpointPicker
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.sampling_panel import SamplingPanel
from nanogpt_tui.widgets.save_dialog import SaveTextModal
from nanogpt_tui.widgets.screen_tabs import ScreenTabs
from nanogpt_tui.widgets.sessions_modal import Reopened, SessionsModal
from nanogpt_tui.widgets.chat_insight import context_line, token_choices
from nanogpt_tui.widgets.transcript import Transcript, Turn, context_text, marked_text, stop_note

if TYPE_CHECKING:
    from core.inference.sampler import TokenPiece
    from core.settings.sampling import SamplingConfig

UPDATE_INTERVAL = 1 / 15  # seconds between UI updates while a reply streams (~15 a second)
ALTERNATIVES = 5  # how many of the likeliest tokens each generated token reports


# -- messages from the workers -----------------------------------------------------------------------------


@dataclass
class ContextCounted(Message):
    """The tokens the next reply would read (the conversation and the prompt typed), for `engine`."""

    engine: Engine
    tokens: int


@dataclass
class ReplyPieces(Message):
    """A batch of generated tokens; `done` on the last batch, with `error` if generation failed."""

    generation: int
    pieces: list[TokenPiece]
    count: int
    seconds: float
    done: bool = False
    error: str | None = None


class ChatScreen(AppScreen):
    """Conversations with a checkpoint; see the module docstring."""

    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+l", "new_chat", "New chat", id="chat.new"),
        Binding("ctrl+o", "sessions", "Sessions", id="chat.sessions"),
        Binding("ctrl+s", "save", "Save text", id="chat.save"),
        Binding("ctrl+t", "toggle_colours", "Colour by prob", id="chat.colours", show=False),
        Binding("alt+left", "move_token(-1)", "Prev token", id="chat.token_prev", show=False),
        Binding("alt+right", "move_token(1)", "Next token", id="chat.token_next", show=False),
    ]

    generating: reactive[bool] = reactive(False, bindings=True)
    turn_count: reactive[int] = reactive(0, bindings=True, init=False)  # turns in the transcript
    engine: reactive[Engine | None] = reactive(None, bindings=True)

    def __init__(self) -> None:
        super().__init__()
        self.session = self._new_session()
        self._cancel = threading.Event()
        self._generation = 0  # numbers each reply, so batches of one cleared away are ignored
        self._replaced: list[TokenPiece] | None = None  # while the last reply is regenerated: the old one

    def compose(self) -> ComposeResult:
        yield ScreenTabs()
        with Horizontal(id="chat-body"):
            with Vertical(id="chat-main"):
                yield CheckpointPicker(id="chat-top")
                yield Transcript(id="chat-log")
                yield Static("", id="chat-token")
                yield Static("", id="chat-context")
                yield Static("", id="chat-speed")
                yield Input(placeholder="Type a prompt and press enter (empty: continue the text)", id="chat-prompt")
            yield SamplingPanel(id="chat-controls")
        yield KeyFooter()

    def on_mount(self) -> None:  # AppScreen's on_mount runs too (Textual calls each class's handler)
        self.query_one("#chat-prompt", Input).focus()

    # -- its parts ------------------------------------------------------------------------------------

    @property
    def picker(self) -> CheckpointPicker:
        return self.query_one(CheckpointPicker)

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint chosen (loading or loaded)."""
        return self.picker.checkpoint

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def turns(self) -> list[Turn]:
        return self.transcript.turns

    def watch_turn_count(self) -> None:
        # Every change of the conversation (a prompt sent or refused, a new chat, a session reopened) moves it.
        self.app.chat_prompt = self.turns[-1].prompt if self.turns else ""  # the Model screen's next text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating
        if action == "regenerate":
            return None if self.generating or not self.turn_count or self.engine is None else True
        if action in ("save", "move_token"):
            return True if self.turn_count else None
        return True

    # -- the model -----------------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.picker.follow_disk(True)

    def on_screen_suspend(self) -> None:
        self.picker.follow_disk(False)

    def on_checkpoint_picker_engine_changed(self, message: CheckpointPicker.EngineChanged) -> None:
        self.engine = message.engine
        self.count_context()

    # -- what the model sees: the context against its block -------------------------------------------

    @on(Input.Changed, "#chat-prompt")
    def count_context(self) -> None:
        """Count, in a worker, the tokens the next reply would read: the conversation and the prompt typed."""
        if self.engine is None:
            self.query_one("#chat-context", Static).update("")
            return
        prompt = self.query_one("#chat-prompt", Input).value
        self.count_tokens(self.engine, context_text([*self.turns, Turn(prompt)]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-context")
    def count_tokens(self, engine: Engine, text: str) -> None:
        from core.tokens.spans import count_tokens, split_tokens

        # (an empty text: the sampler starts from one token; a character the vocabulary lacks counts as one)
        tokens = max(1, count_tokens(split_tokens(engine.tokenizer, text)))
        self.post_message(ContextCounted(engine, tokens))

    def on_context_counted(self, message: ContextCounted) -> None:
        if message.engine is self.engine:
            block = self.engine.model.config.block_size
            self.query_one("#chat-context", Static).update(context_line(message.tokens, block))

    @on(Select.Changed, "#chat-checkpoint")
    def on_checkpoint_picked(self, event: Select.Changed) -> None:
        """A checkpoint picked from the list (the picker loads it): the prompt is next."""
        self.action_stop()
        self.query_one("#chat-prompt", Input).focus()

    def on_open_chat(self, message: OpenChat) -> None:
        """From the Checkpoints screen (c or enter), through the app."""
        self.load_checkpoint(message.checkpoint)

    def load_checkpoint(self, path: str | Path) -> None:
        """Chat with the checkpoint file `path` (from the Checkpoints screen, or a session reopened)."""
        self.action_stop()
        self.picker.load(Path(path))

    @on(Select.Changed, "#chat-precision")
    def on_precision_picked(self, event: Select.Changed) -> None:
        """Reload at the new precision (from the float32 weights on disk: int8 cannot be undone)."""
        precision = str(event.value)
        if self.picker.checkpoint is not None and precision != self.picker.precision:
            self.action_stop()
            self.picker.load(self.picker.checkpoint, precision)
        self.picker.precision = precision

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(message.error, title=message.what, severity="error")

    # -- generating ----------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-prompt")
    def on_prompt(self, event: Input.Submitted) -> None:
        config = self._ready_config()
        if config is None:
            return
        event.input.value = ""
        self.transcript.add_turn(Turn(event.value))
        self.turn_count = len(self.turns)
        self._replaced = None
        self._start(config)

    def action_regenerate(self) -> None:
        """Replace the last reply with a new one (the same prompt, the settings as they are now)."""
        config = self._ready_config()
        if config is None or not self.turns:
            return
        last = self.turns[-1]
        self._replaced = last.pieces
        last.pieces = []
        self.transcript.select(None)
        self.transcript.refresh_turn(len(self.turns) - 1)
        self._start(config)

    def _ready_config(self) -> SamplingConfig | None:
        """The sampling settings when a reply can start now, else None (and the user is told why)."""
        if self.generating:
            self.notify("A reply is still streaming: esc stops it", severity="warning")
        elif self.engine is None:
            self.notify("Pick a checkpoint first (and wait for it to load)", severity="warning")
        else:
            try:
                return self.query_one(SamplingPanel).config(ALTERNATIVES)
            except ValueError as error:
                self.notify(str(error), title="Sampling settings", severity="error")
        return None

    def _start(self, config: SamplingConfig) -> None:
        """Generate the last turn's reply, continuing the whole conversation."""
        self.generating = True
        self._cancel = threading.Event()
        self._generation += 1
        self.query_one("#chat-speed", Static).update("generating…")
        self.render_token()
        self.generate_reply(self._generation, self.engine, context_text(self.turns), config, self._cancel, self.picker)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-generate")
    def generate_reply(
        self, generation: int, engine: Engine, context: str, config: SamplingConfig, cancel: threading.Event,
        picker: CheckpointPicker,
    ) -> None:
        """Stream the reply in batches, at most one message per UPDATE_INTERVAL.

        The checkpoint is loaded again first if its file changed since, so the reply comes from the model
        the picker names. It stops on `cancel` (esc, new chat) and on the worker's cancellation (quitting).
        """
        from core.inference.sampler import generate

        worker = get_current_worker()
        count = 0
        start = time.perf_counter()

        def post(pieces: list[TokenPiece], done: bool = False, error: str | None = None) -> None:
            self.post_message(ReplyPieces(generation, pieces, count, time.perf_counter() - start, done, error))

        throttle = EventThrottle(post, lambda _: True, UPDATE_INTERVAL)
        try:
            if engine.is_stale():
                engine = load_engine(engine.path, engine.precision)
                picker.post_message(CheckpointPicker.Loaded(engine))
                start = time.perf_counter()
            for piece in generate(engine.model, engine.tokenizer, context, config, engine.device, cancel):
                if worker.is_cancelled:
                    return  # the app is quitting: nobody is waiting for the rest
                count += 1
                throttle(piece)
        except Exception as error:
            throttle.flush()
            post([], done=True, error=str(error))
            return
        throttle.flush()
        post([], done=True)

    def on_reply_pieces(self, message: ReplyPieces) -> None:
        if message.generation != self._generation or not self.turns:
            return  # a reply that was cleared away
        turn = self.turns[-1]
        turn.pieces.extend(message.pieces)
        self.count_context()
        rate = message.count / message.seconds if message.seconds > 0 else 0.0
        figures = f"{message.count} tokens · {rate:.1f} tokens/sec"
        if not message.done:
            self.transcript.refresh_turn(len(self.turns) - 1)
            self.query_one("#chat-speed", Static).update(f"generating… {figures}")
            return
        self.generating = False
        if message.error and message.count == 0:
            self._refuse(message.error)
            return
        if message.error:
            self.notify(message.error, title="Generation failed", severity="error")
            figures = f"failed after {figures}"
        elif self._cancel.is_set():
            figures = f"stopped: {figures}"
        elif turn.stopped_at is not None and not turn.reply:
            figures = f"{stop_note(turn.stopped_at)} ({message.count} token{'' if message.count == 1 else 's'})"
        elif turn.stopped_at is not None:
            figures = f"done: {figures} · ended at stop string {turn.stopped_at!r}"
        else:
            figures = f"done: {figures}"
        self.transcript.refresh_turn(len(self.turns) - 1)
        self.query_one("#chat-speed", Static).update(figures)
        self._replaced = None
        self.save_session()

    def _refuse(self, error: str) -> None:
        """Nothing was generated (e.g. the prompt has characters the model does not know): undo the turn."""
        prompt = self.query_one("#chat-prompt", Input)
        if self._replaced is not None:  # a regeneration: the reply it was to replace comes back
            self.turns[-1].pieces = self._replaced
            self.transcript.refresh_turn(len(self.turns) - 1)
            self._replaced = None
        else:
            prompt.value = self.turns[-1].prompt  # back in the field, to be fixed
            prompt.cursor_position = len(prompt.value)
            self.transcript.remove_last()
            self.turn_count = len(self.turns)
        prompt.focus()
        self.query_one("#chat-speed", Static).update("")
        self.notify(error, title="Prompt refused", severity="error")

    def action_stop(self) -> None:
        if self.generating:
            self._cancel.set()

    # -- the token cursor and colours ---------------------------------------------------------------

    def render_token(self) -> None:
        piece = self.transcript.selected_piece()
        self.query_one("#chat-token", Static).update(token_choices(piece) if piece else "")

    def action_select_token(self, turn: int, index: int) -> None:
        """A click on a reply's token."""
        self.transcript.select((turn, index))
        self.render_token()

    def action_move_token(self, step: int) -> None:
        self.transcript.move_cursor(step)
        self.render_token()

    @on(Switch.Changed, "#chat-colours")
    def on_colours_switched(self, event: Switch.Changed) -> None:
        self.transcript.set_colours(event.value)

    def action_toggle_colours(self) -> None:
        self.query_one("#chat-colours", Switch).toggle()

    # -- sessions and the transcript file -----------------------------------------------------------

    def _new_session(self) -> chat_store.Session:
        return chat_store.Session(chat_store.new_session_id(), None, datetime.now().isoformat(timespec="seconds"), [])

    def action_new_chat(self) -> None:
        """Start a new conversation (the current one stays saved as a session)."""
        self.action_stop()
        self._generation += 1  # batches still on their way belong to the old conversation
        self.generating = False
        self.session = self._new_session()
        self.transcript.set_turns([])
        self.turn_count = 0
        self.query_one("#chat-speed", Static).update("")
        self.render_token()
        self.count_context()

    def save_session(self) -> None:
        """Save the conversation as it is now (in a worker; the snapshot and its version are taken here, so
        when two saves overlap the newer snapshot is the one the file keeps)."""
        self.session.checkpoint = str(self.checkpoint) if self.checkpoint else None
        self.session.turns = [(t.prompt, [(p.token_id, p.text, p.prob) for p in t.pieces]) for t in self.turns]
        snapshot = chat_store.Session(self.session.id, self.session.checkpoint, self.session.created, self.session.turns)
        self.write_session(snapshot, chat_store.new_version())

    @work(thread=True, exit_on_error=False, group="chat-session-save")
    def write_session(self, session: chat_store.Session, version: int) -> None:
        try:
            chat_store.save_session(session, version)
        except OSError as error:
            self.post_message(WorkFailed("The chat session was not saved", str(error)))

    def action_sessions(self) -> None:
        self.app.push_screen(SessionsModal(), self.show_session)

    def show_session(self, reopened: Reopened | None) -> None:
        """Show a session reopened; its checkpoint is loaded when it is not the one chosen now (and still exists)."""
        if reopened is None:
            return
        self.action_new_chat()
        self.session = reopened.session
        self.transcript.set_turns(reopened.turns)
        self.turn_count = len(reopened.turns)
        self.count_context()
        wanted = Path(reopened.session.checkpoint) if reopened.session.checkpoint else None
        if wanted is not None and wanted != self.checkpoint:
            if self.picker.is_listed(wanted):
                self.load_checkpoint(wanted)
            else:
                self.notify(f"Its checkpoint {wanted} is not among the runs: replies come from the one chosen now",
                            severity="warning")
        self.query_one("#chat-prompt", Input).focus()

    def action_save(self) -> None:
        """Ask for a text file and write the conversation to it (SaveTextModal asks before overwriting)."""
        if not self.transcript.text():
            self.notify("Nothing to save yet", severity="warning")
            return
        model = f"{self.checkpoint.parent.name}/{self.checkpoint.name}" if self.checkpoint else "a model"
        text = marked_text(self.turns, f"A conversation with {model}, saved {datetime.now():%Y-%m-%d %H:%M}")
        run = self.checkpoint.parent.name if self.checkpoint else "chat"
        default = paths.home() / "chats" / f"{run}-{datetime.now():%Y%m%d-%H%M%S}.txt"

        def saved(path: str | None) -> None:
            if path:
                self.notify(f"Saved to {path}", title="Conversation saved")

        self.app.push_screen(SaveTextModal("Save the conversation as a text file:", text, default), saved)
