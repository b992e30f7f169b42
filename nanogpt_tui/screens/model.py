"""The Model screen: look inside a GPT, as "Let's build GPT" and nanoGPT explain it.

Pick a checkpoint (or "from Train settings": an untrained model with the Train screen's shape) and see
its anatomy (the module tree with nanoGPT's names, counts, memory, FLOPs and one forward pass's
shapes), its loss at initialisation beside ln(vocab_size), the attention weights of any layer and head
on a text, what each layer would predict next (the logit lens), and the token embeddings: a 2-D map
(widgets/embedding_map.py) and a token's nearest neighbours. Each tab starts with a line on how to read
it (nanogpt_tui.model_help). A model of the lecture's ladder (core.model.ladder) shows its anatomy, loss
and embeddings; the attention and lens views, which read the GPT's blocks, say so.

Every computation runs in a thread worker (core.inference.inspect_model); the workers post typed messages
(screens/model_work.py) and the handlers own the widgets (the Anatomy and Attention tabs are
widgets/model_tabs.py's). Keys: ↑/↓ move along the text's tokens (the query row, the lens position, the
embedding's token), [ and ] (or page up/down) change the layer, , and . (or alt+←/→) the head, ctrl+t
toggles all heads of the layer. The Chat screen's last prompt, when there is a new one, becomes the text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Select, Static, TabbedContent, TabPane, Tabs

from core.model.anatomy import init_loss_expected
from nanogpt_tui import listings
from nanogpt_tui import model_views as views
from nanogpt_tui.messages import WorkFailed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.screens.model_work import (
    Analysed,
    LossMeasured,
    ModelReady,
    Probed,
    SourcesListed,
    analyse_text,
    build_untrained,
    load_checkpoint,
    measure_init_loss,
    probe_layers,
)
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.model_help import TAB_HELP, lens_help
from nanogpt_tui.widgets.embedding_map import EmbeddingMap
from nanogpt_tui.widgets.model_tabs import AnatomyTab, AttentionTab
from nanogpt_tui.widgets.screen_tabs import ScreenTabs

SETTINGS = "settings"  # the source value for an untrained model with the Train screen's settings
SAMPLE_TEXT = "ROMEO: But soft, what light through yonder window breaks?"
# Each pair of keys takes one place in the footer ("↑ ↓ Token").
TOKEN_KEYS, LAYER_KEYS, HEAD_KEYS = Binding.Group("Token"), Binding.Group("Layer"), Binding.Group("Head")
# The tabs, by key (1-5: typed into the text field while it has the focus, so no view key is lost there).
TABS = {"1": ("tab-anatomy", "Anatomy"), "2": ("tab-loss", "Loss at init"), "3": ("tab-attention", "Attention"),
        "4": ("tab-lens", "Logit lens"), "5": ("tab-embeddings", "Embeddings")}
# The tabs each view key acts on: the footer shows a key only there.
ACTS_ON = {"position": ("tab-attention", "tab-lens", "tab-embeddings"), "layer": ("tab-attention",),
           "head": ("tab-attention",), "toggle_heads": ("tab-attention",)}


class ModelScreen(AppScreen):
    """A model's anatomy, loss at init, attention, logit lens and embeddings."""

    CSS_PATH = "model.tcss"
    BINDINGS = [
        Binding("up", "position(-1)", "Prev token", id="model.position_prev", key_display="↑", group=TOKEN_KEYS),
        Binding("down", "position(1)", "Next token", id="model.position_next", key_display="↓", group=TOKEN_KEYS),
        Binding("left_square_bracket,pageup", "layer(-1)", "Layer −", id="model.layer_prev", key_display="[", group=LAYER_KEYS),
        Binding("right_square_bracket,pagedown", "layer(1)", "Layer +", id="model.layer_next", key_display="]", group=LAYER_KEYS),
        Binding("comma,alt+left", "head(-1)", "Head −", id="model.head_prev", key_display=",", group=HEAD_KEYS),
        Binding("full_stop,alt+right", "head(1)", "Head +", id="model.head_next", key_display=".", group=HEAD_KEYS),
        Binding("ctrl+t", "toggle_heads", "All heads", id="model.all_heads"),
        Binding("ctrl+r", "reload", "Reload", id="model.reload"),
        *(Binding(key, f"show_tab('{tab}')", f"{title} tab", id=f"model.{tab}", show=False) for key, (tab, title) in TABS.items()),
    ]

    # Not bindings=True: the footer is redrawn (costly) only when a key's state changes, at the ends (`watch_layer`).
    layer: reactive[int] = reactive(0)
    head: reactive[int] = reactive(0)
    position: reactive[int] = reactive(0, bindings=True)
    all_heads: reactive[bool] = reactive(False, bindings=True)

    def __init__(self) -> None:
        super().__init__()
        self.source: str | None = None  # SETTINGS or a checkpoint path, chosen (loading or loaded)
        self.model: Any = None
        self.tokenizer: Any = None
        self.trained = False
        self.tokens: Any = None  # the analysed text's Tokens
        self.attention: Any = None  # numpy (n_layer, n_head, T, T)
        self._generation = 0  # numbers analyses, so results for an older text or model are ignored
        self._datasets: list[Any] = []
        self._chat_prompt = ""  # the Chat prompt last taken as the text
        self._sources: set[str] = set()  # the values the source Select offers
        self._listed_signature: tuple[Any, ...] | None = None  # of the listings the selectors show
        self._loaded_signature: tuple[int, int, int] | None = None  # of the checkpoint file loaded

    def compose(self) -> ComposeResult:
        yield ScreenTabs()
        with Horizontal(id="model-top"):
            yield Select[str]([], prompt="Pick a model", id="model-source", compact=True)
            yield Select[str]([], prompt="Dataset (loss at init)", id="model-dataset", compact=True)
            yield Static("No model loaded", id="model-status")
        yield Input(SAMPLE_TEXT, placeholder="A text to look at; enter analyses it", id="model-text", compact=True)
        with TabbedContent(id="model-tabs"):
            yield AnatomyTab("Anatomy", id="tab-anatomy")
            with TabPane("Loss at init", id="tab-loss"):
                yield Static(TAB_HELP["tab-loss"], classes="tab-help")
                yield Static("", id="model-loss")
            yield AttentionTab("Attention", id="tab-attention")
            with TabPane("Logit lens", id="tab-lens"):
                yield Static(TAB_HELP["tab-lens"], classes="tab-help", id="model-lens-help")
                with VerticalScroll(can_focus=False):
                    yield Static("", id="model-lens")
            with TabPane("Embeddings", id="tab-embeddings"):
                yield Static(TAB_HELP["tab-embeddings"], classes="tab-help")
                with Horizontal(id="model-embeddings"):
                    yield EmbeddingMap(id="model-map")
                    with VerticalScroll(can_focus=False, id="model-nearest-box"):
                        yield Static("", id="model-nearest")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(Tabs).focus()  # the view keys ([ ] , . ↑ ↓) work at once; click the text to edit it
        # While shown, look at the checkpoints every few seconds: one saved over is loaded again.
        self._follow = self.set_interval(listings.FOLLOW_S, self.list_sources, pause=True)

    def on_screen_resume(self) -> None:
        self.list_sources()
        self.take_chat_prompt()
        self._follow.resume()

    def on_screen_suspend(self) -> None:
        self._follow.pause()

    def take_chat_prompt(self) -> None:
        """The Chat screen's last prompt (the app's chat_prompt) becomes the text, once per new prompt."""
        prompt = self.app.chat_prompt.strip()
        if prompt and prompt != self._chat_prompt:
            self._chat_prompt = prompt
            self.query_one("#model-text", Input).value = prompt
            self.analyse()

    # -- choosing a model ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-list")
    def list_sources(self) -> None:
        from core.dataset.format import DatasetInfo

        chosen = self.source
        try:  # cached by the files' stats: a revisit with nothing changed reads nothing
            runs_signature, checkpoints = listings.checkpoints()
            datasets_signature, datasets = listings.datasets()
        except Exception as error:
            self.post_message(WorkFailed("Listing checkpoints failed", str(error)))
            return
        checkpoints = [s for s in checkpoints if not s.error]
        datasets = [d for d in datasets if isinstance(d, DatasetInfo)]
        chosen_signature = listings.file_signature(Path(chosen)) if chosen and chosen != SETTINGS else None
        self.post_message(SourcesListed(checkpoints, datasets, (runs_signature, datasets_signature), chosen, chosen_signature))

    def on_sources_listed(self, message: SourcesListed) -> None:
        loaded = self.source == message.chosen and self.model is not None
        if loaded and message.chosen_signature not in (None, self._loaded_signature):
            self.choose(str(self.source))  # saved over since it was loaded: what the selector says is loaded
        if message.signature == self._listed_signature:
            return  # nothing changed on disk: the selectors stay as they are
        self._listed_signature = message.signature
        self._datasets = message.datasets
        options = [("from Train settings (untrained)", SETTINGS)]
        options += [(f"{s.name} ({s.kind}, {s.iter_num:,} iters)", str(s.path)) for s in message.checkpoints]
        if self.source is not None and all(value != self.source for _, value in options):
            options.append((self.source, self.source))
        source = self.query_one("#model-source", Select)
        self._sources = {value for _, value in options}
        with self.prevent(Select.Changed):
            source.set_options(options)
            if self.source is not None:
                source.value = self.source
        dataset = self.query_one("#model-dataset", Select)
        chosen = dataset.value
        with self.prevent(Select.Changed):
            dataset.set_options([(d.name, d.name) for d in message.datasets])
            if isinstance(chosen, str) and any(d.name == chosen for d in message.datasets):
                dataset.value = chosen
        if self.source is None:
            # The newest checkpoint, else an untrained model: something to look at at once.
            self.choose(str(message.checkpoints[0].path) if message.checkpoints else SETTINGS)

    @on(Select.Changed, "#model-source")
    def _source_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.source:
            self.choose(event.value)

    @on(Select.Changed, "#model-dataset")
    def _dataset_picked(self, event: Select.Changed) -> None:
        if self.source == SETTINGS:
            self.choose(SETTINGS)  # the vocabulary comes from the dataset: a new model
        else:
            self.measure()

    def choose(self, source: str) -> None:
        """Load a checkpoint (a path) or build an untrained model from the Train screen's settings."""
        self.source = source
        self.model = self.tokenizer = self.tokens = self.attention = None
        self._generation += 1
        self.refresh_bindings()
        select = self.query_one("#model-source", Select)
        if select.value != source and source in self._sources:
            with self.prevent(Select.Changed):
                select.value = source
        dataset = self.query_one("#model-dataset", Select).value
        dataset = dataset if isinstance(dataset, str) else None
        self._status("Building an untrained model…" if source == SETTINGS else f"Loading {source}…")
        settings = self.train_settings() if source == SETTINGS else None
        self.load_source(source, settings, dataset)

    def train_settings(self) -> tuple[dict[str, Any], str | None, str]:
        """The Train screen's form values (its settings, its dataset: the app's train_config), else the cpu
        preset's (the Train screen not opened yet)."""
        from core.settings.presets import from_preset

        config = self.app.train_config
        if config is not None:
            return dataclasses.asdict(config), config.dataset or None, "the Train screen's settings"
        return dataclasses.asdict(from_preset("cpu")), None, "the cpu preset (set others on the Train screen)"

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-load")
    def load_source(self, source: str, settings: tuple[dict[str, Any], str | None, str] | None, dataset: str | None) -> None:
        from core.inference.inspect_model import model_config, param_infos
        from core.model.anatomy import build_anatomy

        signature = listings.file_signature(Path(source)) if settings is None else None  # before reading it
        try:
            if settings is None:
                model, tokenizer, description, trained, default = load_checkpoint(Path(source))
            else:
                model, tokenizer, description, default = build_untrained(settings, dataset)
                trained = False
            anatomy = build_anatomy(param_infos(model), model_config(model))
        except Exception as error:  # a bad checkpoint, a form the model cannot take: the user's to fix
            self.post_message(WorkFailed("Cannot load the model", str(error)))
            return
        self.post_message(ModelReady(source, model, tokenizer, anatomy, description, trained, default, signature))

    def on_model_ready(self, message: ModelReady) -> None:
        if message.source != self.source:
            return  # another model was chosen meanwhile
        self.model, self.tokenizer, self.trained = message.model, message.tokenizer, message.trained
        self._loaded_signature = message.signature
        self._status(message.description)
        self.query_one(AnatomyTab).show(message.anatomy)
        tied = any(p.tied_to for p in message.anatomy.root.children.get("lm_head", message.anatomy.root).params)
        self.query_one("#model-lens-help", Static).update(lens_help(tied))
        dataset = self.query_one("#model-dataset", Select)
        if not isinstance(dataset.value, str) and message.dataset and any(d.name == message.dataset for d in self._datasets):
            with self.prevent(Select.Changed):
                dataset.value = message.dataset
        self.layer = min(self.layer, max(0, self.model.config.n_layer - 1))
        self.head = min(self.head, max(0, self.model.config.n_head - 1))
        self.measure()
        self.analyse()

    def on_work_failed(self, message: WorkFailed) -> None:
        self._status(Text(f"{message.what}: {message.error}", "bold red"))
        self.notify(message.error, title=message.what, severity="error")

    def _status(self, text: str | Text) -> None:
        self.query_one("#model-status", Static).update(text)

    def action_reload(self) -> None:
        self.list_sources()
        if self.source is not None:
            self.choose(self.source)

    # -- anatomy -----------------------------------------------------------------------------------
    # -- loss at initialisation ---------------------------------------------------------------------

    def measure(self) -> None:
        dataset = self.query_one("#model-dataset", Select).value
        loss = self.query_one("#model-loss", Static)
        if self.model is None:
            return
        vocab = self.tokenizer.vocab_size
        if not isinstance(dataset, str):
            loss.update(Text(f"ln(vocab_size) = ln({vocab:,}) = {init_loss_expected(vocab):.2f}\n"
                             "Pick a dataset above to measure the loss on its val split."))
            return
        loss.update(views.init_loss_text(None, vocab, self.trained, dataset))
        self.measure_loss(self.source, self.model, dataset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-loss")
    def measure_loss(self, source: str, model: Any, dataset: str) -> None:
        self.post_message(measure_init_loss(source, model, dataset))

    def on_loss_measured(self, message: LossMeasured) -> None:
        if message.source == self.source and self.tokenizer is not None:
            self.query_one("#model-loss", Static).update(
                views.init_loss_text(message.loss, self.tokenizer.vocab_size, self.trained, message.dataset)
            )

    # -- the text: attention, lens, embeddings ------------------------------------------------------

    @on(Input.Submitted, "#model-text")
    def _text_submitted(self) -> None:
        self.analyse()
        self.query_one(Tabs).focus()  # so [ ] , . and the arrows drive the view

    def analyse(self) -> None:
        if self.model is None:
            return
        self._generation += 1
        self.query_one(AttentionTab).computing()
        text = self.query_one("#model-text", Input).value
        self.run_analysis(self._generation, self.model, self.tokenizer, text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-analyse")
    def run_analysis(self, generation: int, model: Any, tokenizer: Any, text: str) -> None:
        self.post_message(analyse_text(generation, model, tokenizer, text))

    def on_analysed(self, message: Analysed) -> None:
        if message.generation != self._generation:
            return
        self.tokens, self.attention = message.tokens, message.attention
        self.query_one(EmbeddingMap).show(message.points, message.whole, message.tokens.ids)
        if message.attention is None:
            self.query_one(AttentionTab).unavailable(message.why)
        last = len(self.tokens.ids) - 1
        if self.position == last:
            self.watch_position()  # the same position, a new text: redraw anyway
        self.position = last
        self.refresh_bindings()

    def watch_position(self) -> None:
        self.render_attention()
        self.probe()

    def watch_layer(self, old: int, new: int) -> None:
        self.render_attention()
        self._refresh_keys_at_ends(old, new, self.attention.shape[0] if self.attention is not None else 0)

    def watch_head(self, old: int, new: int) -> None:
        self.render_attention()
        self._refresh_keys_at_ends(old, new, self.attention.shape[1] if self.attention is not None else 0)

    def _refresh_keys_at_ends(self, old: int, new: int, count: int) -> None:
        """A step to or from the first or last layer (head) greys or restores a key: only then the footer."""
        if {old, new} & {0, count - 1}:
            self.refresh_bindings()

    def watch_all_heads(self) -> None:
        self.render_attention()

    def on_resize(self) -> None:
        self.call_after_refresh(self.render_attention)

    @on(TabbedContent.TabActivated)
    def _tab_shown(self) -> None:
        self.call_after_refresh(self.render_attention)  # the heatmap's size is known once its tab shows
        self.refresh_bindings()  # the view keys of this tab in the footer

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def render_attention(self) -> None:
        if self.tokens is None or self.attention is None or not self.is_mounted:
            return
        self.query_one(AttentionTab).show(
            self.tokens, self.attention, self.position, self.layer, self.head, self.all_heads, self.model is not None
        )

    def probe(self) -> None:
        if self.tokens is None or self.model is None:
            return
        self.query_one(EmbeddingMap).mark(self.tokens.ids[self.position])
        self.run_probe(self._generation, self.model, self.tokenizer, list(self.tokens.ids), self.position)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-probe")
    def run_probe(self, generation: int, model: Any, tokenizer: Any, ids: list[int], position: int) -> None:
        self.post_message(probe_layers(generation, model, tokenizer, ids, position))

    def on_probed(self, message: Probed) -> None:
        if message.generation != self._generation or message.position != self.position or self.tokens is None:
            return
        token = self.tokens.texts[message.position]
        lens = Text(message.lens, "yellow") if isinstance(message.lens, str) else views.render_lens(message.lens, token, message.position)
        self.query_one("#model-lens", Static).update(lens)
        self.query_one("#model-nearest", Static).update(
            views.render_nearest(token, self.tokens.ids[message.position], message.nearest)
        )

    # -- keys --------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ACTS_ON:
            if self.is_mounted and self.query_one(TabbedContent).active not in ACTS_ON[action]:
                return False  # no use on this tab: not in the footer
            if action == "position" and self.tokens is not None:  # (a ladder step has tokens but no attention)
                step = int(parameters[0]) if parameters else 0
                return True if 0 <= self.position + step < len(self.tokens.ids) else None
            if self.attention is None:
                return None  # shown greyed until a text is analysed
            if action == "toggle_heads":
                return True
            step = int(parameters[0]) if parameters else 0
            value, limit = {
                "position": (self.position, len(self.tokens.ids)),
                "layer": (self.layer, self.attention.shape[0]),
                "head": (self.head, self.attention.shape[1]),
            }[action]
            return True if 0 <= value + step < limit else None
        return True

    def action_position(self, step: int) -> None:
        if self.tokens is not None:
            self.position = max(0, min(len(self.tokens.ids) - 1, self.position + step))

    def action_layer(self, step: int) -> None:
        if self.attention is not None:
            self.layer = max(0, min(self.attention.shape[0] - 1, self.layer + step))

    def action_head(self, step: int) -> None:
        if self.attention is not None:
            self.head = max(0, min(self.attention.shape[1] - 1, self.head + step))

    def action_toggle_heads(self) -> None:
        self.all_heads = not self.all_heads
