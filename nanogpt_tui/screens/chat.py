"""The Chat screen: pick a checkpoint, type a prompt, watch the model's reply stream in.

The models trained here are completion models, not instruction-tuned assistants, so the conversation is
one growing text: each turn appends the prompt (on a new line, since the prompt field holds a single
line) and then the reply, and the next reply continues that whole transcript. The sampler keeps the
model's context window over its end. Generated tokens can be coloured by their probability, and any
token can be selected (click it, or alt+←/→ across the last reply) to see the alternatives the model
weighed at that point.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.style import Style
from textual.validation import ValidationResult, Validator
from textual.widgets import Header, Input, Label, Select, Static, Switch
from textual.worker import get_current_worker

from core import paths
from core.formatting import human_count
from core.sampling import DEFAULT_PRECISION, PRECISIONS, SamplingConfig
from core.tokenizers import tokenizer_name
from nanogpt_tui import listings
from nanogpt_tui.messages import WorkFailed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.footer import Footer

if TYPE_CHECKING:
    from core.checkpoint import CheckpointSummary
    from core.sampler import TokenPiece

UPDATE_INTERVAL = 1 / 15  # seconds between UI updates while a reply streams (~15 a second)
ALTERNATIVES = 5  # how many of the likeliest tokens each generated token reports
UNLIKELY, LIKELY = Color(220, 70, 70), Color(70, 200, 100)  # probability colours: 0 -> red, 1 -> green


# -- sampling settings: one table drives the side panel; SamplingConfig.validate judges the ranges ---------


def number(text: str) -> float:
    """A float; its range is SamplingConfig.validate's to judge."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def ints(low: int, *, blank: Any = ..., zero: Any = ...) -> Callable[[str], Any]:
    """A parser for an integer >= low; `blank` / `zero` (when given) are what "" / 0 stand for."""

    def parse(text: str) -> Any:
        if not text.strip() and blank is not ...:
            return blank
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        if value < low:
            raise ValueError(f"must be at least {low}")
        return zero if value == 0 and zero is not ... else value

    return parse


@dataclass(frozen=True)
class Setting:
    key: str  # the SamplingConfig field
    label: str
    default: str
    parse: Callable[[str], Any]


SETTINGS = (
    Setting("temperature", "temperature (0 = greedy)", "0.8", number),
    Setting("top_k", "top-k (0 = off)", "0", ints(0, zero=None)),
    Setting("top_p", "top-p (0, 1]", "1.0", number),
    Setting("min_p", "min-p [0, 1]", "0.0", number),
    Setting("repetition_penalty", "repetition penalty (1 = off)", "1.0", number),
    Setting("max_new_tokens", "max tokens", "200", ints(1)),
    Setting("seed", "seed (blank = random)", "", ints(0, blank=None)),
)


class SettingValidator(Validator):
    """Valid when the setting's parser accepts the text."""

    def __init__(self, setting: Setting) -> None:
        super().__init__()
        self.setting = setting

    def validate(self, value: str) -> ValidationResult:
        error = setting_error(self.setting, value)
        return self.failure(error) if error else self.success()


def setting_error(setting: Setting, text: str) -> str | None:
    """Why `text` is not a valid value of `setting`, or None: parsed here, range-checked by SamplingConfig."""
    try:
        SamplingConfig(**{setting.key: setting.parse(text)}).validate()
    except ValueError as error:  # SamplerError is a ValueError
        return f"{setting.label}: {error}"
    return None


# -- the conversation --------------------------------------------------------------------------------------


@dataclass
class Turn:
    """One prompt and the reply's tokens (which grow while the reply streams)."""

    prompt: str
    pieces: list[TokenPiece] = field(default_factory=list)

    @property
    def reply(self) -> str:
        return "".join(piece.text for piece in self.pieces)


def probability_colour(prob: float) -> Color:
    return UNLIKELY.blend(LIKELY, max(0.0, min(1.0, prob)))


def describe_token(piece: TokenPiece) -> str:
    """The selected token and the alternatives the model weighed, one line."""
    alternatives = "   ".join(f"{text!r} {prob:.1%}" for _, text, prob in piece.alternatives)
    return f"token {piece.token_id} {piece.text!r} p={piece.prob:.1%}   alternatives: {alternatives or '-'}"


# -- messages from the workers -----------------------------------------------------------------------------


class CheckpointsListed(Message):
    def __init__(self, summaries: list[CheckpointSummary], signature: tuple[Any, ...] | None = None) -> None:
        super().__init__()
        self.summaries = summaries
        self.signature = signature  # of the files listed (nanogpt_tui.listings)


class ModelLoaded(Message):
    def __init__(
        self, path: Path, precision: str, model: Any, tokenizer: Any, device: Any, description: str
    ) -> None:
        super().__init__()
        self.path = path
        self.precision = precision
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.description = description


class ModelFailed(Message):
    def __init__(self, path: Path, precision: str, error: str) -> None:
        super().__init__()
        self.path = path
        self.precision = precision
        self.error = error


class ReplyPieces(Message):
    """A batch of generated tokens; `done` on the last batch, with `error` if generation failed."""

    def __init__(
        self, generation: int, pieces: list[TokenPiece], count: int, seconds: float,
        done: bool = False, error: str | None = None,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.pieces = pieces
        self.count = count
        self.seconds = seconds
        self.done = done
        self.error = error


class ChatScreen(AppScreen):
    """Text generation from a checkpoint; see the module docstring for how turns are joined."""

    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+t", "toggle_colours", "Colour by prob", id="chat.colours"),
        Binding("alt+left", "move_token(-1)", "Prev token", id="chat.token_prev"),
        Binding("alt+right", "move_token(1)", "Next token", id="chat.token_next"),
        Binding("ctrl+l", "clear", "Clear", id="chat.clear"),
        Binding("ctrl+s", "save", "Save", id="chat.save"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.checkpoint: Path | None = None  # chosen (loading or loaded)
        self.precision = DEFAULT_PRECISION  # chosen for the model's weights (core.sampling.PRECISIONS)
        self.model: Any = None  # set once the chosen checkpoint has loaded
        self.tokenizer: Any = None
        self.device: Any = None
        self.turns: list[Turn] = []
        self.colours = False
        self.cursor: tuple[int, int] | None = None  # (turn, token) whose alternatives show
        self.generating = False
        self._cancel = threading.Event()
        self._generation = 0  # numbers each reply, so batches of a cleared one are ignored
        self._listed: list[CheckpointSummary] = []
        self._listed_signature: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="chat-body"):
            with Vertical(id="chat-main"):
                with Horizontal(id="chat-top"):
                    yield Select[Path]([], prompt="Pick a checkpoint", id="chat-checkpoint")
                    yield Static("No model loaded", id="chat-model")
                with VerticalScroll(id="chat-log"):
                    transcript = Static("", id="chat-transcript")
                    # Tokens are clickable (@click meta); Textual's link styling would paint over the probability colours.
                    transcript.auto_links = False
                    yield transcript
                yield Static("", id="chat-token")
                yield Static("", id="chat-speed")
                yield Input(placeholder="Type a prompt and press enter (empty: continue the text)", id="chat-prompt")
            with VerticalScroll(id="chat-controls"):
                yield Label("Sampling", classes="heading")
                for setting in SETTINGS:
                    yield Label(setting.label)
                    yield Input(setting.default, id=f"chat-{setting.key}", validators=[SettingValidator(setting)])
                yield Static("", id="chat-settings-error")
                yield Label("precision (reloads the model)")
                precision = Select(
                    [(name, name) for name in PRECISIONS], value=DEFAULT_PRECISION, allow_blank=False,
                    id="chat-precision",
                )
                precision.tooltip = "\n".join(f"{name}: {text}" for name, text in PRECISIONS.items())
                yield precision
                with Horizontal(id="chat-colours-row"):
                    yield Switch(False, id="chat-colours")
                    yield Label("Colour by\nprobability")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#chat-prompt", Input).focus()

    # -- choosing and loading a checkpoint ----------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.list_checkpoints()

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-list")
    def list_checkpoints(self) -> None:
        """The runs' checkpoints; only new or changed files are read (`nanogpt_tui.listings`)."""
        try:
            signature, summaries = listings.checkpoints()
        except Exception as error:
            self.post_message(WorkFailed("Listing checkpoints failed", str(error)))
            return
        self.post_message(CheckpointsListed([s for s in summaries if not s.error], signature))

    def on_checkpoints_listed(self, message: CheckpointsListed) -> None:
        if message.signature is not None and message.signature == self._listed_signature:
            return  # nothing changed on disk: the Select stays as it is
        self._listed_signature = message.signature
        self._listed = message.summaries
        if self.checkpoint is None and message.summaries:
            self.load_checkpoint(message.summaries[0].path)  # the newest: a newcomer can type at once
        else:
            self._fill_select()

    def _fill_select(self) -> None:
        """The checkpoints as options, with the chosen one selected (added if it is not a run's)."""
        options = [(f"{s.name} ({s.kind}, {s.iter_num:,} iters)", s.path) for s in self._listed]
        if self.checkpoint is not None and all(path != self.checkpoint for _, path in options):
            options.insert(0, (str(self.checkpoint), self.checkpoint))
        select = self.query_one("#chat-checkpoint", Select)
        select.set_options(options)
        if self.checkpoint is not None:
            select.value = self.checkpoint

    @on(Select.Changed, "#chat-checkpoint")
    def on_checkpoint_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, Path) and event.value != self.checkpoint:
            self.load_checkpoint(event.value)

    def load_checkpoint(self, path: str | Path) -> None:
        """Choose `path` (a checkpoint file) and load its model in a worker."""
        self.action_stop()
        self.checkpoint = Path(path)
        self.model = self.tokenizer = None
        self.query_one("#chat-model", Static).update(f"Loading {self.checkpoint} in {self.precision}…")
        self._fill_select()
        self.load_model(self.checkpoint, self.precision)

    @on(Select.Changed, "#chat-precision")
    def on_precision_picked(self, event: Select.Changed) -> None:
        """Reload the chosen checkpoint at the new precision (from its float32 weights: int8 cannot be undone)."""
        if not isinstance(event.value, str) or event.value == self.precision:
            return
        self.precision = event.value
        if self.checkpoint is not None:
            self.load_checkpoint(self.checkpoint)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-model")
    def load_model(self, path: Path, precision: str) -> None:
        from core.checkpoint import load_model
        from core.devices import resolve_device
        from core.quantize import to_precision

        try:
            device = resolve_device("auto")
            model, tokenizer, ckpt = load_model(path, device)
            n_params = model.get_num_params()  # counted as nanoGPT does, whatever the knobs (an untied head too)
            model = to_precision(model, precision)
        except Exception as error:
            self.post_message(ModelFailed(path, precision, str(error)))
            return
        description = (
            f"{path.parent.name}: {human_count(n_params)} params, "
            f"{tokenizer_name(ckpt['tokenizer'])} tokens, "
            f"{ckpt['iter_num']:,} iters, block {model.config.block_size}, {precision} on {device}"
        )
        self.post_message(ModelLoaded(path, precision, model, tokenizer, device, description))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if (message.path, message.precision) != (self.checkpoint, self.precision):
            return  # another checkpoint or precision was chosen meanwhile
        self.model, self.tokenizer, self.device = message.model, message.tokenizer, message.device
        self.query_one("#chat-model", Static).update(message.description)

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(message.error, title=message.what, severity="error")

    def on_model_failed(self, message: ModelFailed) -> None:
        if (message.path, message.precision) != (self.checkpoint, self.precision):
            return
        self.query_one("#chat-model", Static).update(Content.styled(f"Cannot load: {message.error}", "$error"))
        self.notify(message.error, title="Cannot load the checkpoint", severity="error")

    # -- sampling settings ---------------------------------------------------------------------------

    def read_settings(self) -> tuple[dict[str, Any], list[str]]:
        """The side panel's values by SamplingConfig field, and a message for each one that is not valid."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            text = self.query_one(f"#chat-{setting.key}", Input).value
            error = setting_error(setting, text)
            if error:
                problems.append(error)
            else:
                values[setting.key] = setting.parse(text)
        return values, problems

    @on(Input.Changed, "#chat-controls Input")
    def on_setting_changed(self) -> None:
        self.query_one("#chat-settings-error", Static).update("\n".join(self.read_settings()[1]))

    def sampling_config(self) -> SamplingConfig:
        """The settings as a SamplingConfig; ValueError names the settings that are not valid."""
        values, problems = self.read_settings()
        if problems:
            raise ValueError("; ".join(problems))
        return SamplingConfig(**values, alternatives=ALTERNATIVES)

    # -- generating ----------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-prompt")
    def on_prompt(self, event: Input.Submitted) -> None:
        if self.generating:
            self.notify("A reply is still streaming: esc stops it", severity="warning")
            return
        if self.model is None:
            self.notify("Pick a checkpoint first (and wait for it to load)", severity="warning")
            return
        try:
            config = self.sampling_config()
        except ValueError as error:
            self.notify(str(error), title="Sampling settings", severity="error")
            return
        prompt = event.value
        transcript = self.transcript()
        if transcript and prompt and not transcript.endswith("\n"):
            prompt = "\n" + prompt
        event.input.value = ""
        self.turns.append(Turn(prompt))
        self.cursor = None
        self.generating = True
        self._cancel = threading.Event()
        self._generation += 1
        self.query_one("#chat-speed", Static).update("generating…")
        self.render_transcript()
        engine = (self.model, self.tokenizer, self.device)
        self.generate_reply(self._generation, engine, transcript + prompt, config, self._cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-generate")
    def generate_reply(
        self, generation: int, engine: tuple[Any, Any, Any], context: str, config: SamplingConfig,
        cancel: threading.Event,
    ) -> None:
        """Stream the reply in batches, at most one message per UPDATE_INTERVAL.

        It stops on `cancel` (esc, clear) and on the worker's own cancellation (quitting the app).
        """
        from core.sampler import generate

        model, tokenizer, device = engine
        worker = get_current_worker()
        count = 0
        start = time.perf_counter()

        def post(pieces: list[TokenPiece], done: bool = False, error: str | None = None) -> None:
            self.post_message(ReplyPieces(generation, pieces, count, time.perf_counter() - start, done, error))

        throttle = EventThrottle(post, lambda _: True, UPDATE_INTERVAL)
        try:
            for piece in generate(model, tokenizer, context, config, device, cancel):
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
        self.turns[-1].pieces.extend(message.pieces)
        rate = message.count / message.seconds if message.seconds > 0 else 0.0
        figures = f"{message.count} tokens · {rate:.1f} tokens/sec"
        if message.done:
            self.generating = False
            if message.error:
                self.notify(message.error, title="Generation failed", severity="error")
                figures = f"failed after {figures}"
            elif self._cancel.is_set():
                figures = f"stopped: {figures}"
            else:
                figures = f"done: {figures}"
        else:
            figures = f"generating… {figures}"
        self.query_one("#chat-speed", Static).update(figures)
        self.render_transcript()

    def action_stop(self) -> None:
        if self.generating:
            self._cancel.set()

    # -- showing the conversation ------------------------------------------------------------------

    def transcript(self) -> str:
        return "".join(turn.prompt + turn.reply for turn in self.turns)

    def render_transcript(self) -> None:
        """Prompts in bold; reply tokens clickable, coloured by probability when asked."""
        parts: list[str | tuple[str, str | Style]] = []
        for t, turn in enumerate(self.turns):
            parts.append((turn.prompt, "bold"))
            for i, piece in enumerate(turn.pieces):
                style = Style.from_meta({"@click": f"screen.select_token({t}, {i})"})
                if self.colours:
                    style = Style(foreground=probability_colour(piece.prob)) + style
                if self.cursor == (t, i):
                    style = Style(reverse=True) + style
                parts.append((piece.text, style))
        self.query_one("#chat-transcript", Static).update(Content.assemble(*parts))
        self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)
        self.render_token()

    def render_token(self) -> None:
        token = self.query_one("#chat-token", Static)
        if self.cursor is None:
            token.update("")
        else:
            t, i = self.cursor
            token.update(describe_token(self.turns[t].pieces[i]))

    def select_token(self, turn: int, index: int) -> None:
        if turn < len(self.turns) and index < len(self.turns[turn].pieces):
            self.cursor = (turn, index)
            self.render_transcript()

    def action_select_token(self, turn: int, index: int) -> None:
        self.select_token(turn, index)

    def action_move_token(self, step: int) -> None:
        """Move the token cursor within its reply (starting on the last reply's last token)."""
        if self.cursor is None:
            replies = [t for t, turn in enumerate(self.turns) if turn.pieces]
            if replies:
                self.select_token(replies[-1], len(self.turns[replies[-1]].pieces) - 1)
            return
        t, i = self.cursor
        self.select_token(t, max(0, min(len(self.turns[t].pieces) - 1, i + step)))

    @on(Switch.Changed, "#chat-colours")
    def on_colours_switched(self, event: Switch.Changed) -> None:
        self.colours = event.value
        self.render_transcript()

    def action_toggle_colours(self) -> None:
        self.query_one("#chat-colours", Switch).toggle()

    def action_clear(self) -> None:
        self.action_stop()
        self._generation += 1  # batches still on their way belong to the cleared reply
        self.generating = False
        self.turns.clear()
        self.cursor = None
        self.query_one("#chat-speed", Static).update("")
        self.render_transcript()

    def action_save(self) -> None:
        """Write the transcript to HOME/chats/<run>-<timestamp>.txt."""
        text = self.transcript()
        if not text:
            self.notify("Nothing to save yet", severity="warning")
            return
        run = self.checkpoint.parent.name if self.checkpoint else "chat"
        path = paths.home() / "chats" / f"{run}-{datetime.now():%Y%m%d-%H%M%S}.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            self.notify(str(error), title="Save failed", severity="error")
            return
        self.notify(f"Saved to {path}", title="Conversation saved")
