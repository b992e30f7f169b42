"""CheckpointPicker: the Chat screen's checkpoint list and the line that says which model is loaded.

It lists the runs' checkpoints in a worker (`nanogpt_tui.listings`: only new or changed files are
read), loads the chosen one in a worker (`nanogpt_tui.chat_engine`), and keeps both true to the disk:
while it `follows_disk` it looks again every few seconds, loads the chosen file again when it changed (a run
still training saves over it), follows it when its run is renamed (the same file: same inode, size
and mtime) and says so when it is gone (the model in memory still answers). The screen hears of every
model it gets as `EngineChanged`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Select, Static

from core.settings.sampling import DEFAULT_PRECISION
from nanogpt_tui import listings
from nanogpt_tui.chat_engine import Engine, load_engine
from nanogpt_tui.messages import WorkFailed

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary

LISTING_INTERVAL = 5.0  # seconds between looks at the runs' checkpoints while watched
Signature = tuple[int, int, int] | None  # a file's stat signature (nanogpt_tui.listings.file_signature)


class CheckpointPicker(Horizontal):
    """A Select of the runs' checkpoints and the loaded model's description."""

    @dataclass
    class Listed(Message):
        summaries: list[CheckpointSummary]
        signature: tuple[Any, ...]  # of the listing
        files: dict[Path, Signature]  # each listed file's signature
        chosen: Path | None  # the checkpoint chosen when the worker started, and its signature then
        chosen_signature: Signature

    @dataclass
    class Loaded(Message):
        engine: Engine

    @dataclass
    class Failed(Message):
        path: Path
        precision: str
        error: str

    @dataclass
    class EngineChanged(Message):
        """For the screen: the model to chat with now (None while one loads)."""

        engine: Engine | None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.checkpoint: Path | None = None  # chosen (loading or loaded)
        self.precision = DEFAULT_PRECISION
        self.engine: Engine | None = None
        self._listed: list[CheckpointSummary] = []
        self._listed_signature: tuple[Any, ...] | None = None
        self._gone: Path | None = None  # the chosen file, found missing (said once)

    def compose(self) -> ComposeResult:
        yield Select[Path]([], prompt="Pick a checkpoint", id="chat-checkpoint")
        yield Static("No model loaded", id="chat-model")

    def on_mount(self) -> None:
        self._listing_timer = self.set_interval(LISTING_INTERVAL, self.list_checkpoints, pause=True)

    def follow_disk(self, on: bool) -> None:
        """Look at the runs now and every few seconds (on), or stop looking (the screen is hidden)."""
        if on:
            self.list_checkpoints()
            self._listing_timer.resume()
        else:
            self._listing_timer.pause()

    def is_listed(self, path: Path) -> bool:
        return any(s.path == path for s in self._listed)

    def _say(self, text: str | Content) -> None:
        self.query_one("#chat-model", Static).update(text)

    def _set_engine(self, engine: Engine | None) -> None:
        self.engine = engine
        self.post_message(self.EngineChanged(engine))

    # -- listing ---------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-list")
    def list_checkpoints(self) -> None:
        chosen = self.checkpoint
        try:
            signature, summaries = listings.checkpoints()
        except Exception as error:
            self.post_message(WorkFailed("Listing checkpoints failed", str(error)))
            return
        summaries = [s for s in summaries if not s.error]
        files = {s.path: listings.file_signature(s.path) for s in summaries}
        chosen_signature = listings.file_signature(chosen) if chosen else None
        self.post_message(self.Listed(summaries, signature, files, chosen, chosen_signature))

    def on_checkpoint_picker_listed(self, message: Listed) -> None:
        message.stop()
        if message.chosen == self.checkpoint and self.checkpoint is not None:
            self._follow_chosen_file(message)
        if message.signature == self._listed_signature:
            return  # nothing changed on disk: the Select stays as it is
        self._listed_signature = message.signature
        self._listed = message.summaries
        if self.checkpoint is None and message.summaries:
            self.load(message.summaries[0].path)  # the newest: a newcomer can type at once
        else:
            self._fill_select()

    def _follow_chosen_file(self, message: Listed) -> None:
        """The chosen file changed (load it again), moved (a renamed run: follow it) or went away (say so)."""
        engine = self.engine
        if message.chosen_signature is not None:
            self._gone = None
            if engine and engine.path == self.checkpoint and engine.signature != message.chosen_signature:
                self._say(f"{engine.description} (loading its newer version…)")
                self.load_model(engine.path, engine.precision)
            return
        moved = next((path for path, sig in message.files.items() if engine and sig == engine.signature), None)
        if engine and moved is not None:
            self.checkpoint = moved
            self._set_engine(engine.moved_to(moved))
            self._say(engine.moved_to(moved).description)
            self._listed_signature = None  # the Select must show the new name
        elif self._gone != self.checkpoint:
            self._gone = self.checkpoint
            self.notify(
                f"{self.checkpoint} was deleted or moved: the model in memory answers until you pick another",
                title="Checkpoint gone", severity="warning",
            )
            self._say(Content.styled(f"{self.checkpoint} is gone; its model is still loaded", "$warning"))

    def _fill_select(self) -> None:
        """The checkpoints as options, with the chosen one selected (added when it is a file from elsewhere)."""
        options = [(f"{s.name} ({s.kind}, {s.iter_num:,} iters)", s.path) for s in self._listed]
        chosen = self.checkpoint
        if chosen is not None and chosen != self._gone and all(path != chosen for _, path in options):
            options.insert(0, (str(chosen), chosen))
        select = self.query_one("#chat-checkpoint", Select)
        with select.prevent(Select.Changed):  # not a user's pick: the screen keeps its focus
            select.set_options(options)
            if any(path == chosen for _, path in options):
                select.value = chosen

    # -- loading ---------------------------------------------------------------------------------------

    @on(Select.Changed, "#chat-checkpoint")
    def on_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, Path) and event.value != self.checkpoint:
            self.load(event.value)

    def load(self, path: Path, precision: str | None = None) -> None:
        """Choose `path` (a checkpoint file), at `precision` (else the current one), and load it in a worker."""
        self.checkpoint = Path(path)
        self.precision = precision or self.precision
        self._gone = None
        self._set_engine(None)
        self._say(f"Loading {self.checkpoint} in {self.precision}…")
        self._fill_select()
        self.load_model(self.checkpoint, self.precision)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-model")
    def load_model(self, path: Path, precision: str) -> None:
        try:
            self.post_message(self.Loaded(load_engine(path, precision)))
        except Exception as error:
            self.post_message(self.Failed(path, precision, str(error)))

    def on_checkpoint_picker_loaded(self, message: Loaded) -> None:
        message.stop()
        if (message.engine.path, message.engine.precision) != (self.checkpoint, self.precision):
            return  # another checkpoint or precision was chosen meanwhile
        self._set_engine(message.engine)
        self._say(message.engine.description)
        # auto's reasons (each precision's speed and loss) where the line says what it chose
        self.query_one("#chat-model", Static).tooltip = message.engine.note or None
        self._fill_select()

    def on_checkpoint_picker_failed(self, message: Failed) -> None:
        message.stop()
        if (message.path, message.precision) != (self.checkpoint, self.precision):
            return
        self._say(Content.styled(f"Cannot load: {message.error}", "$error"))
        self.notify(message.error, title="Cannot load the checkpoint", severity="error")
