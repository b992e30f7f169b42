"""The Chat screen: pick a checkpoint, type a prompt, watch the model's reply stream in.

A conversation is a list of turns, each a prompt and the model's reply, shown as blocks
(`nanogpt_tui.widgets.transcript`); the model reads them as one text and each reply continues it.
ctrl+r regenerates the last reply; a prompt the model cannot read is refused and leaves the
conversation as it was. Each conversation is saved as a session when a reply ends (ctrl+o reopens
one, ctrl+l starts a new one; `nanogpt_tui.chat_store`), and ctrl+s writes it to a text file. The side
panel (`nanogpt_tui.widgets.sampling_panel`) holds the sampling settings, remembered between launches.

The model is the checkpoint file as it was when loaded (`nanogpt_tui.chat_engine`): the picker is
refreshed every few seconds and a checkpoint that changed on disk (a run still training) is loaded
again, at the latest just before the next reply; a run renamed on the Checkpoints screen is followed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Header, Input, Select, Static, Switch
from textual.worker import get_current_worker

from core import paths
from nanogpt_tui import chat_store, listings
from nanogpt_tui.chat_engine import Engine, load_engine
from nanogpt_tui.messages import WorkFailed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.dialogs import ConfirmModal, TextModal, TextPrompt
from nanogpt_tui.widgets.footer import Footer
from nanogpt_tui.widgets.sampling_panel import SamplingPanel
from nanogpt_tui.widgets.sessions_modal import SessionsModal
from nanogpt_tui.widgets.transcript import Transcript, Turn, context_text, describe_token

if TYPE_CHECKING:
    from core.checkpoint import CheckpointSummary
    from core.sampler import TokenPiece
    from core.sampling import SamplingConfig

UPDATE_INTERVAL = 1 / 15  # seconds between UI updates while a reply streams (~15 a second)
ALTERNATIVES = 5  # how many of the likeliest tokens each generated token reports
LISTING_INTERVAL = 5.0  # seconds between looks at the runs' checkpoints while the screen shows
Signature = tuple[int, int, int] | None  # a file's stat signature (nanogpt_tui.listings.file_signature)


# -- messages from the workers -----------------------------------------------------------------------------


@dataclass
class CheckpointsListed(Message):
    summaries: list[CheckpointSummary]
    signature: tuple[Any, ...]  # of the listing (nanogpt_tui.listings)
    files: dict[Path, Signature]  # each listed file's signature
    chosen: Path | None  # the checkpoint chosen when the worker started, and its signature then
    chosen_signature: Signature


@dataclass
class ModelLoaded(Message):
    engine: Engine


@dataclass
class ModelFailed(Message):
    path: Path
    precision: str
    error: str


@dataclass
class ReplyPieces(Message):
    """A batch of generated tokens; `done` on the last batch, with `error` if generation failed."""

    generation: int
    pieces: list[TokenPiece]
    count: int
    seconds: float
    done: bool = False
    error: str | None = None


@dataclass
class SessionsListed(Message):
    sessions: list[chat_store.SessionSummary]


@dataclass
class SessionOpened(Message):
    session: chat_store.Session
    turns: list[Turn]


@dataclass
class TranscriptWritten(Message):
    path: Path
    text: str
    error: str | None = None
    exists: bool = False  # not written: the file exists and overwriting was not confirmed


@dataclass
class Regeneration:
    """The reply being replaced, put back if the new one is refused."""

    pieces: list[TokenPiece] = field(default_factory=list)


class ChatScreen(AppScreen):
    """Conversations with a checkpoint; see the module docstring."""

    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+l", "new_chat", "New chat", id="chat.new"),
        Binding("ctrl+o", "sessions", "Sessions", id="chat.sessions"),
        Binding("ctrl+s", "save", "Save text", id="chat.save"),
        Binding("ctrl+t", "toggle_colours", "Colour by prob", id="chat.colours"),
        Binding("alt+left", "move_token(-1)", "Prev token", id="chat.token_prev"),
        Binding("alt+right", "move_token(1)", "Next token", id="chat.token_next"),
    ]

    generating: reactive[bool] = reactive(False, bindings=True)
    turn_count: reactive[int] = reactive(0, bindings=True)  # turns in the transcript
    engine: reactive[Engine | None] = reactive(None, bindings=True, always_update=True)

    def __init__(self) -> None:
        super().__init__()
        self.checkpoint: Path | None = None  # chosen (loading or loaded)
        self.session = self._new_session()
        self._cancel = threading.Event()
        self._generation = 0  # numbers each reply, so batches of one cleared away are ignored
        self._regeneration: Regeneration | None = None  # set while the last reply is being regenerated
        self._listed: list[CheckpointSummary] = []
        self._listed_signature: tuple[Any, ...] | None = None
        self._gone: Path | None = None  # the chosen file, found missing (said once)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="chat-body"):
            with Vertical(id="chat-main"):
                with Horizontal(id="chat-top"):
                    yield Select[Path]([], prompt="Pick a checkpoint", id="chat-checkpoint")
                    yield Static("No model loaded", id="chat-model")
                yield Transcript(id="chat-log")
                yield Static("", id="chat-token")
                yield Static("", id="chat-speed")
                yield Input(placeholder="Type a prompt and press enter (empty: continue the text)", id="chat-prompt")
            yield SamplingPanel(id="chat-controls")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#chat-prompt", Input).focus()
        self._listing_timer = self.set_interval(LISTING_INTERVAL, self.list_checkpoints, pause=True)

    # -- what the rest of the app and the tests read ------------------------------------------------

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def turns(self) -> list[Turn]:
        return self.transcript.turns

    @property
    def model(self) -> Any:
        return self.engine.model if self.engine else None

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer if self.engine else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating
        if action == "regenerate":
            return None if self.generating or not self.turn_count or self.engine is None else True
        if action in ("save", "move_token"):
            return True if self.turn_count else None
        return True

    # -- choosing and loading a checkpoint ----------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.list_checkpoints()
        self._listing_timer.resume()

    def on_screen_suspend(self) -> None:
        self._listing_timer.pause()

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-list")
    def list_checkpoints(self) -> None:
        """The runs' checkpoints (only new or changed files are read), and how the chosen file stands."""
        chosen = self.checkpoint
        try:
            signature, summaries = listings.checkpoints()
        except Exception as error:
            self.post_message(WorkFailed("Listing checkpoints failed", str(error)))
            return
        summaries = [s for s in summaries if not s.error]
        files = {s.path: listings.file_signature(s.path) for s in summaries}
        chosen_signature = listings.file_signature(chosen) if chosen else None
        self.post_message(CheckpointsListed(summaries, signature, files, chosen, chosen_signature))

    def on_checkpoints_listed(self, message: CheckpointsListed) -> None:
        if message.chosen == self.checkpoint and self.checkpoint is not None:
            self._follow_chosen_file(message)
        if message.signature == self._listed_signature:
            return  # nothing changed on disk: the picker stays as it is
        self._listed_signature = message.signature
        self._listed = message.summaries
        if self.checkpoint is None and message.summaries:
            self.load_checkpoint(message.summaries[0].path)  # the newest: a newcomer can type at once
        else:
            self._fill_select()

    def _follow_chosen_file(self, message: CheckpointsListed) -> None:
        """The chosen file changed (load it again), moved (a renamed run: follow it) or went away (say so)."""
        engine = self.engine
        if message.chosen_signature is not None:
            self._gone = None
            if engine and engine.path == self.checkpoint and engine.signature != message.chosen_signature:
                if not self.generating:  # else the next reply loads it (generate_reply)
                    self.reload_model(engine)
            return
        moved = next((path for path, sig in message.files.items() if engine and sig == engine.signature), None)
        if engine and moved is not None:
            self.checkpoint = moved
            self.engine = engine.moved_to(moved)
            self.query_one("#chat-model", Static).update(self.engine.description)
            self._listed_signature = None  # the picker must show the new name
        elif self._gone != self.checkpoint:
            self._gone = self.checkpoint
            self.notify(
                f"{self.checkpoint} was deleted or moved: the model in memory answers until you pick another",
                title="Checkpoint gone", severity="warning",
            )
            self.query_one("#chat-model", Static).update(
                Content.styled(f"{self.checkpoint} is gone; its model is still loaded", "$warning")
            )

    def _fill_select(self) -> None:
        """The checkpoints as options, with the chosen one selected (added when it is a file from elsewhere)."""
        options = [(f"{s.name} ({s.kind}, {s.iter_num:,} iters)", s.path) for s in self._listed]
        chosen = self.checkpoint
        if chosen is not None and chosen != self._gone and all(path != chosen for _, path in options):
            options.insert(0, (str(chosen), chosen))
        select = self.query_one("#chat-checkpoint", Select)
        with select.prevent(Select.Changed):
            select.set_options(options)
            if chosen is not None and any(path == chosen for _, path in options):
                select.value = chosen

    @on(Select.Changed, "#chat-checkpoint")
    def on_checkpoint_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, Path):
            if event.value != self.checkpoint:
                self.load_checkpoint(event.value)
            self.query_one("#chat-prompt", Input).focus()

    def load_checkpoint(self, path: str | Path) -> None:
        """Choose `path` (a checkpoint file) and load its model in a worker."""
        self.action_stop()
        self.checkpoint = Path(path)
        self._gone = None
        self.engine = None
        precision = self.query_one(SamplingPanel).precision
        self.query_one("#chat-model", Static).update(f"Loading {self.checkpoint} in {precision}…")
        self._fill_select()
        self.load_model(self.checkpoint, precision)

    def reload_model(self, engine: Engine) -> None:
        """Load the chosen file again (it changed on disk); the loaded model answers until then."""
        self.query_one("#chat-model", Static).update(f"{engine.description} (loading its newer version…)")
        self.load_model(engine.path, engine.precision)

    @on(Select.Changed, "#chat-precision")
    def on_precision_picked(self, event: Select.Changed) -> None:
        """Reload at the new precision (from the float32 weights on disk: int8 cannot be undone)."""
        if self.checkpoint is not None and (self.engine is None or self.engine.precision != event.value):
            self.load_checkpoint(self.checkpoint)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-model")
    def load_model(self, path: Path, precision: str) -> None:
        try:
            self.post_message(ModelLoaded(load_engine(path, precision)))
        except Exception as error:
            self.post_message(ModelFailed(path, precision, str(error)))

    def _wanted(self, path: Path, precision: str) -> bool:
        return path == self.checkpoint and precision == self.query_one(SamplingPanel).precision

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if not self._wanted(message.engine.path, message.engine.precision):
            return  # another checkpoint or precision was chosen meanwhile
        self.engine = message.engine
        self.query_one("#chat-model", Static).update(message.engine.description)
        self._fill_select()

    def on_model_failed(self, message: ModelFailed) -> None:
        if not self._wanted(message.path, message.precision):
            return
        self.query_one("#chat-model", Static).update(Content.styled(f"Cannot load: {message.error}", "$error"))
        self.notify(message.error, title="Cannot load the checkpoint", severity="error")

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
        self._regeneration = None
        self._start(config)

    def action_regenerate(self) -> None:
        """Replace the last reply with a new one (the same prompt, the settings as they are now)."""
        config = self._ready_config()
        if config is None or not self.turns:
            return
        last = self.turns[-1]
        self._regeneration = Regeneration(last.pieces)
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
        self.generate_reply(self._generation, self.engine, context_text(self.turns), config, self._cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-generate")
    def generate_reply(
        self, generation: int, engine: Engine, context: str, config: SamplingConfig, cancel: threading.Event
    ) -> None:
        """Stream the reply in batches, at most one message per UPDATE_INTERVAL.

        The checkpoint is loaded again first if its file changed since, so the reply comes from the model
        the picker names. It stops on `cancel` (esc, new chat) and on the worker's cancellation (quitting).
        """
        from core.sampler import generate

        worker = get_current_worker()
        count = 0
        start = time.perf_counter()

        def post(pieces: list[TokenPiece], done: bool = False, error: str | None = None) -> None:
            self.post_message(ReplyPieces(generation, pieces, count, time.perf_counter() - start, done, error))

        throttle = EventThrottle(post, lambda _: True, UPDATE_INTERVAL)
        try:
            if engine.is_stale():
                engine = load_engine(engine.path, engine.precision)
                self.post_message(ModelLoaded(engine))
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
        else:
            figures = f"{'stopped' if self._cancel.is_set() else 'done'}: {figures}"
        self.transcript.refresh_turn(len(self.turns) - 1)
        self.query_one("#chat-speed", Static).update(figures)
        self._regeneration = None
        self.save_session()

    def _refuse(self, error: str) -> None:
        """Nothing was generated (e.g. the prompt has characters the model does not know): undo the turn."""
        prompt = self.query_one("#chat-prompt", Input)
        if self._regeneration is not None:
            self.turns[-1].pieces = self._regeneration.pieces
            self.transcript.refresh_turn(len(self.turns) - 1)
            self._regeneration = None
        else:
            prompt.value = self.turns[-1].prompt  # back in the field, to be fixed
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
        self.query_one("#chat-token", Static).update(describe_token(piece) if piece else "")

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

    def save_session(self) -> None:
        """Save the conversation as it is now (in a worker; the snapshot is taken here)."""
        self.session.checkpoint = str(self.checkpoint) if self.checkpoint else None
        self.session.turns = [(t.prompt, [(p.token_id, p.text, p.prob) for p in t.pieces]) for t in self.turns]
        snapshot = chat_store.Session(self.session.id, self.session.checkpoint, self.session.created, self.session.turns)
        self.write_session(snapshot)

    @work(thread=True, exit_on_error=False, group="chat-session-save")
    def write_session(self, session: chat_store.Session) -> None:
        try:
            chat_store.save_session(session)
        except OSError as error:
            self.post_message(WorkFailed("The chat session was not saved", str(error)))

    def action_sessions(self) -> None:
        self.list_sessions()

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-sessions")
    def list_sessions(self) -> None:
        try:
            self.post_message(SessionsListed(chat_store.list_sessions()))
        except OSError as error:
            self.post_message(WorkFailed("Listing chat sessions failed", str(error)))

    def on_sessions_listed(self, message: SessionsListed) -> None:
        if not message.sessions:
            self.notify("No saved sessions yet: a conversation is saved when a reply ends", severity="warning")
            return

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.open_session(path)

        self.app.push_screen(SessionsModal(message.sessions), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-sessions")
    def open_session(self, path: Path) -> None:
        from core.sampler import TokenPiece

        try:
            session = chat_store.load_session(path)
        except chat_store.StoreError as error:
            self.post_message(WorkFailed("Cannot reopen the session", str(error)))
            return
        turns = [Turn(prompt, [TokenPiece(*piece) for piece in reply]) for prompt, reply in session.turns]
        self.post_message(SessionOpened(session, turns))

    def on_session_opened(self, message: SessionOpened) -> None:
        """Show the session; its checkpoint is loaded when it is not the one chosen now (and still exists)."""
        self.action_new_chat()
        self.session = message.session
        self.transcript.set_turns(message.turns)
        self.turn_count = len(message.turns)
        wanted = Path(message.session.checkpoint) if message.session.checkpoint else None
        if wanted is not None and wanted != self.checkpoint:
            if any(s.path == wanted for s in self._listed):
                self.load_checkpoint(wanted)
            else:
                self.notify(f"Its checkpoint {wanted} is not among the runs: replies come from the one chosen now",
                            severity="warning")
        self.query_one("#chat-prompt", Input).focus()

    def action_save(self) -> None:
        """Ask for a text file and write the conversation to it (asking before overwriting a file)."""
        text = self.transcript.text()
        if not text:
            self.notify("Nothing to save yet", severity="warning")
            return
        run = self.checkpoint.parent.name if self.checkpoint else "chat"
        default = paths.home() / "chats" / f"{run}-{datetime.now():%Y%m%d-%H%M%S}.txt"

        def chosen(value: str | None) -> None:
            if value:
                self.write_transcript(Path(value).expanduser(), text, overwrite=False)

        prompt = TextPrompt("Save the conversation as a text file:", str(default), paths=True, kind="new")
        self.app.push_screen(TextModal(prompt), chosen)

    @work(thread=True, exit_on_error=False, group="chat-transcript")
    def write_transcript(self, path: Path, text: str, overwrite: bool) -> None:
        try:
            if path.exists() and not overwrite:
                self.post_message(TranscriptWritten(path, text, exists=True))
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            self.post_message(TranscriptWritten(path, text, error=str(error)))
            return
        self.post_message(TranscriptWritten(path, text))

    def on_transcript_written(self, message: TranscriptWritten) -> None:
        if message.exists:

            def answer(yes: bool | None) -> None:
                if yes:
                    self.write_transcript(message.path, message.text, overwrite=True)

            self.app.push_screen(ConfirmModal(f"{message.path} exists. Overwrite it?"), answer)
        elif message.error:
            self.notify(message.error, title="Save failed", severity="error")
        else:
            self.notify(f"Saved to {message.path}", title="Conversation saved")
