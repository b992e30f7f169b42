"""The Train screen: pick data and settings, train in a child process, watch the loss fall.

The form is built from the torch-free core.train_config and core.presets, so it is there at once;
`load_devices` imports torch in a worker to find the devices and the dtypes each takes. Training runs
in a child process (core.train_process.TrainerProcess) driven by the `run_training` worker, which
relays its events as messages batched by `EventThrottle` (at most 4 a second): the trainer has a GIL
of its own, so drawing the screen never stalls it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import (
    Button,
    Checkbox,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    RichLog,
    Select,
    Static,
)
from textual.worker import Worker, WorkerState, get_current_worker

from core.dataset import DatasetInfo
from core.presets import PRESETS, from_preset
from core.train_config import (
    FORM,
    MODEL_KEYS,
    ConfigError,
    TrainConfig,
    config_from_dict,
    field_types,
    parse_value,
)
from core.train_events import (
    CheckpointSaved,
    Compiling,
    Eval,
    Event,
    Failed,
    Finished,
    Paused,
    Resumed,
    Sample,
    Started,
    Step,
)
from core.train_process import TrainerProcess
from nanogpt_tui import listings
from nanogpt_tui.messages import DatasetsListed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.footer import Footer
from nanogpt_tui.widgets.loss_plot import LossPlot

# TrainConfig fields set by other widgets than the one-input-per-knob form.
SPECIAL_FIELDS = ("dataset", "run_name", "device", "dtype")
DTYPE_NAMES = ("float32", "bfloat16", "float16")
FIGURES = ("iteration", "tokens/sec", "iter ms", "lr", "grad norm", "train loss", "val loss", "best val", "elapsed", "ETA", "device")
FIGURE_COLUMNS = 3
# Seconds between UI updates from a stream of Step events. Every update costs CPU time on a core the
# trainer's threads also use (`bench tui` shows how much): 4 a second reads as live and keeps it cheap.
UPDATE_INTERVAL = 0.25
# The plot is the costliest thing to draw (pure Python, ~14 ms): while steps stream in it is redrawn at
# most this often; events, keys and the end of a run redraw it at once.
PLOT_INTERVAL = 1.0
LOG_LINES = 500
SAMPLE_LINES = 300


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


DEFAULT_PRESET = "cpu"  # nanoGPT's CPU recipe: what the form shows first
DEFAULT_CONFIG = from_preset(DEFAULT_PRESET)
# The form's one-input-per-knob settings: TrainConfig's int, float and bool fields.
FORM_FIELDS = {name: kind for name, kind in field_types().items() if name not in SPECIAL_FIELDS and kind in (int, float, bool)}


class TrainScreen(AppScreen):
    """Train a GPT on a prepared dataset and watch it learn."""

    CSS_PATH = "train.tcss"
    # ctrl keys so they work while an Input has focus (none of these is an Input key).
    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="train.start"),
        Binding("ctrl+t", "pause_resume", "Pause/Resume", id="train.pause"),
        Binding("ctrl+b", "stop", "Stop", id="train.stop"),
        Binding("ctrl+s", "save_now", "Save now", id="train.save"),
        Binding("ctrl+n", "sample_now", "Sample now", id="train.sample"),
        Binding("ctrl+l", "log_scale", "Log scale", id="train.log_scale"),
        Binding("ctrl+g", "x_axis", "X axis", id="train.x_axis"),
    ]

    # What the screen is doing: loading (looking for devices), idle, starting, running, paused,
    # finished, stopped or failed. Bindings follow it (check_action).
    state: reactive[str] = reactive("loading", bindings=True)
    # Whether the form has problems (Start is disabled then).
    has_errors: reactive[bool] = reactive(False, bindings=True)
    # The running trainer (in its child process), None between runs.
    trainer: reactive[TrainerProcess | None] = reactive(None, bindings=True)

    # -- messages from workers -----------------------------------------------------------------------

    class DevicesReady(Message):
        """torch is imported; the devices and the dtypes each takes."""

        def __init__(self, devices: list[Any], dtypes: dict[str, dict[str, str | None]], default_device: str) -> None:
            super().__init__()
            self.devices = devices  # core.devices.DeviceInfo list
            self.dtypes = dtypes  # available device -> dtype -> None (usable) or why not
            self.default_device = default_device

    class DevicesFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class ResumeLoaded(Message):
        """The settings of the checkpoint to resume (TrainConfig as a dict)."""

        def __init__(self, path: Path, config: dict[str, Any]) -> None:
            super().__init__()
            self.path = path
            self.config = config

    class ResumeFailed(Message):
        """The checkpoint to resume could not be read."""

        def __init__(self, path: Path, error: str) -> None:
            super().__init__()
            self.path = path
            self.error = error

    class TrainingStarted(Message):
        def __init__(self, trainer: TrainerProcess) -> None:
            super().__init__()
            self.trainer = trainer

    class TrainerEvents(Message):
        """A batch of trainer events, in order (Steps at most every UPDATE_INTERVAL, others at once)."""

        def __init__(self, events: list[Event]) -> None:
            super().__init__()
            self.events = events

    # -- building the screen -------------------------------------------------------------------------

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: dict[str, dict[str, str | None]] = {}
        self.datasets: dict[str, DatasetInfo] = {}
        self._datasets_signature: tuple[Any, ...] | None = None  # of the listing the Select shows
        self.values: dict[str, Any] = {}  # the form's settings, parsed
        self.parse_errors: dict[str, str] = {}  # settings whose text is not a value of their type
        self.errors: dict[str, str] = {}  # every problem of the form, by field (FORM for the rest)
        self.shown_errors: dict[str, str] = {}
        self.resume_path: Path | None = None
        self.resume_config: dict[str, Any] | None = None
        self.training_worker: Worker[None] | None = None  # the worker running `trainer`
        self.max_iters = 0
        self.run_dir: Path | None = None
        self.plot_drawn_at = 0.0  # when streaming steps last redrew the plot (time.monotonic)
        self.figures = dict.fromkeys(FIGURES, "–")

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="train-body"):
            with VerticalScroll(id="train-settings"):
                yield Label("Dataset", classes="field-label")
                yield Select([], id="dataset", prompt="none: prepare one on the Data screen (f2)")
                yield Label("Preset", classes="field-label")
                yield Select(((name, name) for name in PRESETS), id="preset", value=DEFAULT_PRESET, allow_blank=False)
                with Horizontal(id="resume-row"):
                    yield Static("", id="resume-line")
                    yield Button("Don't resume", id="clear-resume", compact=True)
                yield Label("Device", classes="field-label")
                yield Vertical(Static("looking for devices…", id="device-wait"), id="device-box")
                yield Label("Precision", classes="field-label")
                yield RadioSet(*(RadioButton(name, name=name, disabled=True) for name in DTYPE_NAMES), id="dtype")
                yield Label("Run name", classes="field-label")
                yield Input(placeholder="blank: dataset name + time", id="run_name")
                yield Static("", id="error-run_name", classes="field-error")
                with Vertical(id="config-fields"):  # one input per knob: the form follows TrainConfig
                    # Built with the cpu preset's values, so nothing needs filling in after mounting.
                    for name, kind in FORM_FIELDS.items():
                        value = getattr(DEFAULT_CONFIG, name)
                        if kind is bool:
                            yield Checkbox(name, value, id=f"cfg-{name}", classes="cfg-check")
                        else:
                            yield Label(name, classes="cfg-label")
                            yield Input(str(value), id=f"cfg-{name}", classes="cfg-input")
                        yield Static("", id=f"error-{name}", classes="field-error")
                yield Static("", id=f"error-{FORM}", classes="field-error")
                yield Button("Start (ctrl+r)", id="start", variant="success", disabled=True)
            with Vertical(id="train-main"):
                yield Static("Looking for devices (loading torch)…", id="status")
                yield LossPlot(title="loss", id="loss-plot")
                yield Static("", id="figures")
                with Horizontal(id="train-bottom"):
                    yield RichLog(id="samples", max_lines=SAMPLE_LINES, wrap=True, markup=False, min_width=20)
                    yield RichLog(id="log", max_lines=LOG_LINES, wrap=True, markup=True, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#samples", RichLog).border_title = "Samples"
        self.query_one("#log", RichLog).border_title = "Log"
        self.query_one("#resume-row").display = False
        self.show_figures({})
        self.values = {name: getattr(DEFAULT_CONFIG, name) for name in FORM_FIELDS}
        self.validate_form()
        self.refresh_datasets()
        self.load_devices()

    def on_screen_resume(self) -> None:
        # A dataset may have been prepared on the Data screen since this screen was last shown.
        self.refresh_datasets()

    def refresh_datasets(self) -> None:
        """List the datasets in a worker; cached by their files' stats, so a revisit with no change reads nothing."""
        self.list_datasets_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-datasets")
    def list_datasets_worker(self) -> None:
        signature, items = listings.datasets()
        self.post_message(DatasetsListed(signature, items))

    def on_datasets_listed(self, message: DatasetsListed) -> None:
        if message.signature == self._datasets_signature:
            return  # nothing changed on disk: leave the Select alone
        self._datasets_signature = message.signature
        self.datasets = {info.name: info for info in message.items if isinstance(info, DatasetInfo)}
        select = self.query_one("#dataset", Select)
        current = select.value
        select.set_options((f"{name} ({info.train_tokens:,} tokens)", name) for name, info in self.datasets.items())
        # A resume set up before this listing came in wants its own dataset.
        resumed = Path(str(self.resume_config.get("dataset", ""))).name if self.resume_config else None
        if current in self.datasets:
            select.value = current
        elif resumed in self.datasets:
            select.value = resumed
        elif self.datasets:
            select.value = next(iter(self.datasets))
        self.validate_form()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-setup")
    def load_devices(self) -> None:
        """Import torch off the UI thread; post the devices and the dtypes each takes."""
        try:
            from core import devices

            found = devices.list_devices()
            dtypes = {d.name: devices.supported_dtypes(devices.resolve_device(d.name)) for d in found if d.available}
            default = str(devices.resolve_device("auto"))
        except Exception as error:  # the app must stay up: say it in the screen instead
            self.post_message(self.DevicesFailed(f"{type(error).__name__}: {error}"))
            return
        self.post_message(self.DevicesReady(found, dtypes, default))

    def on_train_screen_devices_failed(self, message: DevicesFailed) -> None:
        self.set_status(f"torch could not load, so no device can train: {message.error}", "failed")
        self.notify(message.error, title="Training engine", severity="error")

    async def on_train_screen_devices_ready(self, message: DevicesReady) -> None:
        self.dtypes = message.dtypes
        box = self.query_one("#device-box")
        await box.remove_children()
        # Built whole (not filled later) so the RadioSet knows its pressed button from the start.
        await box.mount(RadioSet(*(
            RadioButton(
                f"{d.name}: {d.detail}" if d.available else f"{d.name}: {d.reason}",
                value=d.name == message.default_device,
                disabled=not d.available,
                name=d.name,
            )
            for d in message.devices
        ), id="device"))
        self.update_dtype_buttons()
        self.validate_form()
        if self.state == "loading":
            self.set_status("Ready: pick a dataset and settings, then Start (ctrl+r).", "idle")

    # -- the form ------------------------------------------------------------------------------------

    @on(Select.Changed, "#preset")
    def preset_changed(self, event: Select.Changed) -> None:
        if event.value in PRESETS:
            self.fill_form(from_preset(str(event.value)))

    @on(Input.Changed, ".cfg-input")
    @on(Checkbox.Changed, ".cfg-check")
    def setting_changed(self, event: Input.Changed | Checkbox.Changed) -> None:
        widget = event.input if isinstance(event, Input.Changed) else event.checkbox
        self.parse_field((widget.id or "").removeprefix("cfg-"))
        self.validate_form()

    @on(Select.Changed, "#dataset")
    @on(Input.Changed, "#run_name")
    def form_changed(self) -> None:
        self.validate_form()

    @on(RadioSet.Changed, "#device")
    def device_changed(self) -> None:
        self.update_dtype_buttons()
        self.validate_form()

    @on(RadioSet.Changed, "#dtype")
    def dtype_changed(self) -> None:
        self.validate_form()

    def fill_form(self, config: TrainConfig) -> None:
        """Show a config's values in the inputs (a preset's, or the resumed checkpoint's)."""
        # The values are known: no need to parse and check the form once per changed input.
        with self.prevent(Input.Changed, Checkbox.Changed):
            for name, kind in FORM_FIELDS.items():
                value = self.values[name] = getattr(config, name)
                if kind is bool:
                    self.query_one(f"#cfg-{name}", Checkbox).value = bool(value)
                else:
                    self.query_one(f"#cfg-{name}", Input).value = str(value)
        self.parse_errors.clear()
        self.validate_form()

    def selected(self, radio_set_id: str) -> str | None:
        """The name of the pressed button of a RadioSet (None before the devices are known)."""
        for radio_set in self.query(f"#{radio_set_id}").results(RadioSet):
            if radio_set.pressed_button is not None:
                return radio_set.pressed_button.name
        return None

    def update_dtype_buttons(self) -> None:
        """Enable the dtypes the chosen device takes; label the others with the reason."""
        reasons = self.dtypes.get(self.selected("device") or "", {})
        buttons = list(self.query_one("#dtype", RadioSet).query(RadioButton))
        for button in buttons:
            reason = reasons.get(button.name or "", "pick a device first")
            button.disabled = reason is not None
            button.label = button.name if reason is None else f"{button.name}: {reason}"
            if reason is not None:
                button.value = False
        if not any(button.value for button in buttons):
            usable = [button for button in buttons if not button.disabled]
            if usable:
                usable[0].value = True

    def parse_field(self, name: str) -> None:
        """Read one setting from its widget into `values`, or note why it cannot be read."""
        self.parse_errors.pop(name, None)
        if FORM_FIELDS[name] is bool:
            self.values[name] = self.query_one(f"#cfg-{name}", Checkbox).value
            return
        try:
            self.values[name] = parse_value(name, self.query_one(f"#cfg-{name}", Input).value)
        except ConfigError as error:
            self.parse_errors[name] = str(error)

    def read_form(self) -> tuple[TrainConfig, dict[str, str]]:
        """The config the form describes, and its problems by field (FORM for the rest)."""
        errors = dict(self.parse_errors)
        info = self.datasets.get(str(self.query_one("#dataset", Select).value))
        device, dtype = self.selected("device"), self.selected("dtype")
        config = TrainConfig(
            **{k: v for k, v in self.values.items() if k not in errors},
            dataset=info.name if info else "",
            run_name=self.query_one("#run_name", Input).value.strip() or None,
            device=device or "cpu",
            dtype=dtype or "float32",
        )
        found = ConfigError(config.problems(info.train_tokens if info else None, info.val_tokens if info else None))
        for field, problem in found.by_field().items():
            # A field's own parse error comes first; dataset problems show under the form.
            key = field if field in FORM_FIELDS or field == "run_name" else FORM
            errors.setdefault(key, problem)
        if info is None:
            errors[FORM] = "no dataset: prepare one on the Data screen (f2)"
        elif device is None:
            errors.setdefault(FORM, "looking for devices…")
        elif dtype is None:
            errors.setdefault(FORM, f"no precision works on {device}")
        return config, errors

    def validate_form(self) -> None:
        """Show each problem next to its field; Start is enabled only when there are none."""
        if not self.is_mounted:
            return
        _, self.errors = self.read_form()
        # Touch only the labels whose text changes: every update costs the UI a layout pass.
        for field in set(self.errors) | set(self.shown_errors):
            message = self.errors.get(field, "")
            if self.shown_errors.get(field, "") != message:
                label = self.query_one(f"#error-{field}", Static)
                label.update(message)
                label.display = bool(message)
        self.shown_errors = dict(self.errors)
        self.has_errors = bool(self.errors)
        self.query_one("#start", Button).disabled = self.has_errors or self.is_training

    # -- resume --------------------------------------------------------------------------------------

    def set_resume(self, path: Path | str) -> None:
        """Set up resuming the run at `path` (a run folder or a checkpoint file): its settings fill the form."""
        self.resume_path = Path(path)
        run = self.resume_path if self.resume_path.is_dir() else self.resume_path.parent
        self.query_one("#resume-line", Static).update(f"Resuming run {run.name} ({self.resume_path.name})")
        self.query_one("#resume-row").display = True
        self.load_resume_config(self.resume_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-resume")
    def load_resume_config(self, path: Path) -> None:
        try:
            from core.checkpoint import load_checkpoint, resolve_checkpoint

            ckpt = load_checkpoint(resolve_checkpoint(str(path)))
        except Exception as error:
            self.post_message(self.ResumeFailed(path, str(error)))
            return
        self.post_message(self.ResumeLoaded(path, {**ckpt.get("config", {}), **ckpt.get("model_args", {})}))

    def on_train_screen_resume_loaded(self, message: ResumeLoaded) -> None:
        if message.path == self.resume_path:
            self.resume_config = message.config
            self.apply_resume_config()

    def on_train_screen_resume_failed(self, message: ResumeFailed) -> None:
        # Only the resume is dropped: a run training meanwhile, or the ready form, stays as it is.
        if message.path == self.resume_path:
            self.notify(message.error, title=f"Cannot resume {message.path}", severity="error")
            self.clear_resume()

    def apply_resume_config(self) -> None:
        assert self.resume_config is not None
        self.fill_form(config_from_dict(self.resume_config))
        dataset = Path(str(self.resume_config.get("dataset", ""))).name
        if dataset in self.datasets:
            self.query_one("#dataset", Select).value = dataset
        self.query_one("#run_name", Input).value = ""  # a resumed run stays in its own folder
        # The architecture is the checkpoint's: the trainer ignores edits to it.
        for name in MODEL_KEYS:
            self.query_one(f"#cfg-{name}").disabled = True
        self.notify(f"Press Start (ctrl+r) to resume {self.resume_path}", title="Resume training")

    @on(Button.Pressed, "#clear-resume")
    def clear_resume(self) -> None:
        self.resume_path = self.resume_config = None
        self.query_one("#resume-row").display = False
        for name in MODEL_KEYS:
            self.query_one(f"#cfg-{name}").disabled = False

    # -- running -------------------------------------------------------------------------------------

    @property
    def is_training(self) -> bool:
        return self.state in ("starting", "running", "paused")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that do nothing now show disabled in the footer."""
        if action == "start":
            return None if self.is_training or self.has_errors else True
        if action in ("pause_resume", "stop", "save_now", "sample_now"):
            return True if self.trainer is not None else None
        return True

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        config, errors = self.read_form()
        if errors or self.is_training:
            self.validate_form()
            if not self.is_training:
                self.notify("Fix the settings marked in red first.", severity="warning")
            return
        self.query_one("#loss-plot", LossPlot).clear()
        self.query_one("#samples", RichLog).clear()
        self.max_iters = config.max_iters
        self.show_figures(dict.fromkeys(FIGURES, "–"))
        self.set_status(f"Starting on {config.device}…", "starting")
        self.training_worker = self.run_training(config, self.resume_path)
        self.validate_form()

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def run_training(self, config: TrainConfig, resume: Path | None) -> None:
        """Run the trainer in its child process (blocking); its events reach the UI as throttled messages."""
        throttle = EventThrottle(
            lambda events: self.post_message(self.TrainerEvents(events)), lambda e: isinstance(e, Step), UPDATE_INTERVAL
        )
        trainer = TrainerProcess(config, throttle, resume=resume, cancel=get_current_worker().cancelled_event)
        self.post_message(self.TrainingStarted(trainer))
        trainer.run()
        throttle.flush()

    def on_train_screen_training_started(self, message: TrainingStarted) -> None:
        self.trainer = self.app.trainer = message.trainer

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.training_worker or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.trainer = self.app.trainer = None
        if event.state == WorkerState.ERROR:  # TrainerProcess.run never raises: this is the worker itself failing
            self.show_failure(f"{type(event.worker.error).__name__}: {event.worker.error}")
        elif self.is_training:
            self.set_status("Training ended.", "stopped")
        self.validate_form()

    def on_train_screen_trainer_events(self, message: TrainerEvents) -> None:
        steps: list[Step] = []
        for event in message.events:
            if isinstance(event, Step):
                steps.append(event)
                continue
            if steps:
                self.show_steps(steps)
                steps = []
            self.show_event(event)
        if steps:
            self.show_steps(steps)

    def show_steps(self, steps: list[Any]) -> None:
        now = time.monotonic()
        redraw = now - self.plot_drawn_at >= PLOT_INTERVAL
        if redraw:
            self.plot_drawn_at = now
        self.query_one("#loss-plot", LossPlot).add_steps(((s.iter, s.loss, s.tokens_seen, s.elapsed_s, s.lr) for s in steps), redraw)
        last = steps[-1]
        iter_ms = sum(s.iter_ms for s in steps) / len(steps)
        self.show_figures(
            {
                "iteration": f"{last.iter + 1} / {self.max_iters}",
                "tokens/sec": f"{last.tokens_per_sec:,.0f}",
                "iter ms": f"{iter_ms:.1f}",
                "lr": f"{last.lr:.3g}",
                "grad norm": format_number(last.grad_norm),
                "train loss": format_number(last.loss),
                "elapsed": format_duration(last.elapsed_s),
                "ETA": format_duration((self.max_iters - last.iter - 1) * iter_ms / 1000),
            }
        )

    def show_event(self, event: Event) -> None:
        log = self.query_one("#log", RichLog)
        plot = self.query_one("#loss-plot", LossPlot)
        if isinstance(event, (Paused, Finished, Failed)):
            plot.replot()  # show the steps held back by PLOT_INTERVAL
        if isinstance(event, Started):
            self.max_iters, self.run_dir = event.max_iters, event.run_dir
            self.set_status(f"Training {event.run_dir.name} on {event.device}.", "running")
            self.show_figures({"device": f"{event.device} {event.dtype}", "iteration": f"{event.start_iter} / {event.max_iters}"})
            if event.resumed:  # draw the curve this run continues, and its best so far
                plot.load_history(event.history)
                evals = event.history["evals"]
                self.show_figures({
                    "best val": format_number(event.best_val_loss),
                    "val loss": format_number(evals[-1][2]) if evals else "–",
                })
            verb = f"resumed at iteration {event.start_iter}" if event.resumed else "started"
            log.write(f"{verb}: {event.n_params / 1e6:.2f}M parameters, run folder {event.run_dir}")
            incompatible = event.config.nanogpt_incompatible()
            if incompatible:
                log.write(f"[dim]uses {', '.join(incompatible)}: nanoGPT's model.py cannot load this run's checkpoints[/]")
        elif isinstance(event, Compiling):
            self.set_status("Compiling the model (torch.compile): the first steps wait for it…", "running")
        elif isinstance(event, Eval):
            plot.add_eval(event.iter, event.train_loss, event.val_loss)
            self.show_figures({"val loss": format_number(event.val_loss), "best val": format_number(event.best_val_loss)})
            log.write(f"iter {event.iter}: train {event.train_loss:.4f}, val {event.val_loss:.4f} ({event.seconds:.1f} s)")
        elif isinstance(event, Sample):
            self.query_one("#samples", RichLog).write(f"── iteration {event.iter} ──\n{event.text}")
        elif isinstance(event, CheckpointSaved):
            log.write(f"iter {event.iter}: saved {event.kind} checkpoint {event.path.name}")
        elif isinstance(event, Paused):
            self.set_status(f"Paused at iteration {event.iter}: ctrl+t resumes.", "paused")
            log.write(f"paused at iteration {event.iter}")
        elif isinstance(event, Resumed):
            self.set_status(f"Training {self.run_dir.name if self.run_dir else ''}.", "running")
            log.write(f"resumed at iteration {event.iter}")
        elif isinstance(event, Finished):
            where = self.run_dir or "the run folder"
            self.set_status(f"Finished ({event.reason}) at iteration {event.iter}; checkpoint in {where}.", "finished")
            log.write(f"[green]finished ({event.reason})[/] at iteration {event.iter}")
            self.notify(f"{event.reason} at iteration {event.iter}; checkpoint in {where}", title="Training finished")
        elif isinstance(event, Failed):
            self.show_failure(event.message)
            if event.details:
                log.write(event.details)

    def show_failure(self, error: str) -> None:
        self.set_status(f"Training failed: {error}", "failed")
        self.query_one("#log", RichLog).write(f"[red]failed:[/] {error}")
        self.notify(error, title="Training failed", severity="error", timeout=15)

    def set_status(self, text: str, state: str) -> None:
        self.state = state
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_classes(f"state-{state}")

    def show_figures(self, changed: dict[str, str]) -> None:
        """Update some figures; the others keep their last value."""
        self.figures.update(changed)
        grid = Table.grid(padding=(0, 1))
        for _ in range(FIGURE_COLUMNS):
            grid.add_column(style="bold", justify="right", no_wrap=True)
            grid.add_column(min_width=12, no_wrap=True)
        cells = [cell for name, value in self.figures.items() for cell in (name, value)]
        for row in range(0, len(cells), 2 * FIGURE_COLUMNS):
            grid.add_row(*cells[row : row + 2 * FIGURE_COLUMNS])
        self.query_one("#figures", Static).update(grid, layout=False)  # fixed height: no relayout

    # -- keys ----------------------------------------------------------------------------------------

    def action_pause_resume(self) -> None:
        if self.trainer is None:
            return
        if self.trainer.paused:
            self.trainer.resume()
        else:
            self.trainer.pause()

    def action_stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()
            self.query_one("#log", RichLog).write("stopping: saving a checkpoint…")

    def action_save_now(self) -> None:
        if self.trainer is not None:
            self.trainer.save_now()

    def action_sample_now(self) -> None:
        if self.trainer is not None:
            self.trainer.sample_now()

    def action_log_scale(self) -> None:
        self.query_one("#loss-plot", LossPlot).toggle_log_scale()

    def action_x_axis(self) -> None:
        self.query_one("#loss-plot", LossPlot).cycle_x_mode()
