"""TrainSettingsForm: the Train screen's settings, one widget per TrainConfig field, checked as they are typed.

Built from the torch-free core.settings.train_config (fields, parsing, problems) and core.settings.presets, so it is there
before torch loads. Whenever the config it holds or its problems change it posts `SettingsChanged`; the
screen reads nothing else of it. Each problem shows under the field it names (`ConfigError.by_field`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import MountError
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Select, Static

from core.dataset.format import DatasetInfo
from core.interop.gpt2_files import FOLDER_SHAPE, find_hf_folder
from core.settings.budget import CHOSEN_KEYS, parse_duration
from core.settings.presets import PRESETS, from_preset
from core.settings.train_config import (
    FORM,
    MODEL_KEYS,
    ConfigError,
    TrainConfig,
    config_from_dict,
    field_types,
    parse_value,
)

# TrainConfig fields that have a widget of their own; every other field gets an input (bool: a checkbox).
SPECIAL_FIELDS = ("dataset", "run_name", "device", "dtype", "budget_s")
FORM_FIELDS = {name: kind for name, kind in field_types().items() if name not in SPECIAL_FIELDS}
DTYPE_NAMES = ("float32", "bfloat16", "float16")
DEFAULT_PRESET = "cpu"  # nanoGPT's CPU recipe: what the form shows first
DEFAULT_CONFIG = from_preset(DEFAULT_PRESET)
NO_DATASET = ""  # the dataset Select's value while no dataset is prepared (no dataset has an empty name)
NO_DATASET_LABEL = "none: prepare one on the Data screen (f2)"
PRESET_CONFIGS = {name: from_preset(name) for name in PRESETS}
# What the Preset box says when the fields match no preset: it never names one they do not hold.
OWN_SETTINGS, RUN_SETTINGS = "none: settings of your own", "none: the resumed run's settings"


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class SettingsChanged(Message):
    """The config the form holds and its problems by field (FORM for those of no one field)."""

    config: TrainConfig
    problems: dict[str, str]


class ResumeDropped(Message):
    """The resume set up is dropped ("Don't resume", or it could not be read)."""


@dataclass
class Resume:
    """The checkpoint the next Start resumes, and once it is read, its settings and iteration."""

    path: Path
    config: dict[str, Any] | None = None
    iter_num: int | None = None


class TrainSettingsForm(VerticalScroll, can_focus=False):
    """Dataset, preset, budget, resume, device, precision, run name and every TrainConfig knob, and Start.

    A budget (core.settings.budget) chooses the model and its recipe: the fields it sets are disabled
    while one is typed, as the model's are while resuming (the checkpoint's).
    """

    # Whether a run is training (the screen sets it): Start is disabled then, whatever the settings.
    training: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.datasets: dict[str, DatasetInfo] = {}
        self.dtypes: dict[str, dict[str, str | None]] = {}  # device -> dtype -> None (usable) or why not
        self.device: str | None = None  # None until torch has listed the devices
        self.dtype: str | None = None
        self.values: dict[str, Any] = {name: getattr(DEFAULT_CONFIG, name) for name in FORM_FIELDS}
        self.parse_errors: dict[str, str] = {}  # fields whose text is not a value of their type
        self.problems: dict[str, str] = {}
        self.resume: Resume | None = None
        self.budget_s = 0.0  # seconds; 0 = no budget
        self._posted: tuple[TrainConfig, dict[str, str]] | None = None

    def compose(self) -> ComposeResult:
        yield Label("Dataset", classes="field-label")
        yield Select([(NO_DATASET_LABEL, NO_DATASET)], id="dataset", allow_blank=False)
        yield Label("Preset", classes="field-label")
        yield Select(((name, name) for name in PRESETS), id="preset", value=DEFAULT_PRESET, prompt=OWN_SETTINGS)
        yield Label("Budget", classes="field-label")
        yield Input(placeholder="off, or e.g. 2m (the best model in 2m)", id="budget")
        yield Static("", id="error-budget_s", classes="field-error")
        with Horizontal(id="resume-row"):
            yield Static("", id="resume-line")
            yield Button("Don't resume", id="clear-resume", compact=True)
        yield Label("Device", classes="field-label")
        yield Vertical(Static("looking for devices…", id="device-wait"), id="device-box")
        yield Static("", id="device-note", classes="note")
        yield Label("Precision", classes="field-label")
        yield RadioSet(*(RadioButton(name, name=name, disabled=True) for name in DTYPE_NAMES), id="dtype")
        yield Static("", id="dtype-note", classes="note")
        yield Label("Run name", classes="field-label")
        yield Input(placeholder="blank: dataset name + time", id="run_name")
        yield Static("", id="error-run_name", classes="field-error")
        with Vertical(id="config-fields"):  # one grid: see train.tcss
            # Built with the default preset's values, so nothing needs filling in after mounting.
            for name, kind in FORM_FIELDS.items():
                value = getattr(DEFAULT_CONFIG, name)
                if kind is bool:
                    yield Checkbox(name, value, id=f"cfg-{name}", classes="cfg-check")
                else:
                    yield Label(name, classes="cfg-label")
                    yield Input(as_text(value), id=f"cfg-{name}", classes="cfg-input")
                yield Static("", id=f"error-{name}", classes="field-error")
        yield Static("", id=f"error-{FORM}", classes="field-error")
        yield Button("Start (ctrl+r)", id="start", variant="success", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#resume-row").display = False
        self.validate()

    # -- what the screen hands in -------------------------------------------------------------------

    def show_datasets(self, items: list[Any], wanted: str | None = None) -> None:
        """List the prepared datasets, keeping the chosen one (or taking `wanted`, e.g. a resume's)."""
        self.datasets = {info.name: info for info in items if isinstance(info, DatasetInfo)}
        select = self.query_one("#dataset", Select)
        current = select.value
        # No blank entry: a dataset is always chosen when there is one, the hint only when there is none.
        options = [(f"{name} ({info.train_tokens:,} tokens)", name) for name, info in self.datasets.items()]
        select.set_options(options or [(NO_DATASET_LABEL, NO_DATASET)])
        for name in (current, wanted):
            if name in self.datasets:
                select.value = name
        self.validate()

    async def show_devices(self, devices: list[Any], dtypes: dict[str, dict[str, str | None]], default: str) -> None:
        """The devices torch found (core.common.devices.DeviceInfo) and the dtypes each takes."""
        self.dtypes = dtypes
        box = self.query_one("#device-box")
        await box.remove_children()
        # Built whole (not filled later) so the RadioSet knows its pressed button from the start. A long
        # reason would be cut at the panel's edge: the label says "unavailable", the note below says why.
        try:
            await box.mount(RadioSet(*(
                RadioButton(d.name if d.available else f"{d.name} (unavailable)", value=d.name == default,
                            disabled=not d.available, name=d.name, tooltip=None if d.available else d.reason)
                for d in devices
            ), id="device"))
        except MountError:
            return  # the app quit while torch loaded (it may open on this screen and quit at once)
        self.device = default
        self.query_one("#device-note", Static).update("\n".join(
            f"{d.name}: {d.detail if d.available else d.reason}" for d in devices
        ))
        self.update_dtype_buttons()

    def fill(self, config: TrainConfig) -> None:
        """Show a config's values in the inputs (a preset's, or the resumed checkpoint's)."""
        # The values are known: no need to parse and check the form once per changed input.
        with self.prevent(Input.Changed, Checkbox.Changed):
            for name, kind in FORM_FIELDS.items():
                value = self.values[name] = getattr(config, name)
                if kind is bool:
                    self.query_one(f"#cfg-{name}", Checkbox).value = bool(value)
                else:
                    self.query_one(f"#cfg-{name}", Input).value = as_text(value)
        self.parse_errors.clear()
        self.update_disabled()
        self.show_preset()
        self.validate()

    def show_preset(self) -> None:
        """Name in the Preset box the preset the fields hold, or none (its prompt says whose settings they are)."""
        select = self.query_one("#preset", Select)
        select.prompt = RUN_SETTINGS if self.resume is not None else OWN_SETTINGS
        held = None if self.parse_errors else next(
            (name for name, config in PRESET_CONFIGS.items() if all(self.values[k] == getattr(config, k) for k in FORM_FIELDS)),
            None)
        with self.prevent(Select.Changed):  # showing what the fields hold is no choice of the user's
            if held is None:
                select.clear()
            else:
                select.value = held

    def set_resume(self, path: Path) -> None:
        """Resume the checkpoint at `path` on the next Start; its settings follow (`resume_loaded`)."""
        self.resume = Resume(path)
        self.show_resume_line()
        self.query_one("#resume-row").display = True
        self.validate()

    def resume_loaded(self, path: Path, checkpoint: Path, config: dict[str, Any], iter_num: int) -> None:
        """The checkpoint asked for as `path` (a run folder, say) is `checkpoint`: show its settings."""
        if self.resume is None or self.resume.path != path:
            return  # another resume (or none) was asked for meanwhile
        self.resume.path, self.resume.config, self.resume.iter_num = checkpoint, config, iter_num
        self.show_resume_line()
        self.fill(config_from_dict(config))
        dataset = Path(str(config.get("dataset", ""))).name
        if dataset in self.datasets:
            self.query_one("#dataset", Select).value = dataset
        self.query_one("#run_name", Input).value = ""  # a resumed run stays in its own folder
        self.update_disabled()  # the architecture is the checkpoint's: the trainer ignores edits to it

    def resume_trained_to(self, iter_num: int) -> None:
        """The resumed run trained on to `iter_num`: the next Start continues from there."""
        if self.resume is not None and self.resume.config is not None:
            self.resume.iter_num = iter_num
            self.show_resume_line()
            self.validate()

    def move_resume(self, path: Path) -> None:
        """The resumed run's folder was renamed: follow it."""
        if self.resume is not None:
            self.resume.path = path
            self.show_resume_line()

    def show_resume_line(self) -> None:
        assert self.resume is not None
        path = self.resume.path
        run = path if path.is_dir() else path.parent
        at = f" from iteration {self.resume.iter_num}" if self.resume.iter_num is not None else ""
        self.query_one("#resume-line", Static).update(f"Resuming run {run.name}{at} ({path.name})")

    @on(Button.Pressed, "#clear-resume")
    def clear_resume(self) -> None:
        self.resume = None
        self.post_message(ResumeDropped())
        if self.query_one("#clear-resume").has_focus:
            self.screen.focus_next()  # on to the device, rather than to wherever a hidden button's focus goes
        self.query_one("#resume-row").display = False
        self.update_disabled()
        self.show_preset()
        self.validate()

    def focus_problem(self) -> str | None:
        """Move the focus to the first field with a problem; its name, or None if no field has one."""
        own = {"run_name": "#run_name", "budget_s": "#budget"}  # the fields with a widget of their own
        for name in ("budget_s", "run_name", *FORM_FIELDS):
            if name in self.problems:
                widget = self.query_one(own.get(name, f"#cfg-{name}"))
                if not widget.disabled:
                    widget.focus()
                    return name
        return None

    # -- the user's edits ---------------------------------------------------------------------------

    @on(Select.Changed, "#preset")
    def preset_changed(self, event: Select.Changed) -> None:
        if event.value in PRESETS:
            self.fill(from_preset(str(event.value)))

    @on(Input.Changed, ".cfg-input")
    @on(Checkbox.Changed, ".cfg-check")
    def setting_changed(self, event: Input.Changed | Checkbox.Changed) -> None:
        widget = event.input if isinstance(event, Input.Changed) else event.checkbox
        name = (widget.id or "").removeprefix("cfg-")
        self.parse_errors.pop(name, None)
        if isinstance(widget, Checkbox):
            self.values[name] = widget.value
        else:
            try:
                self.values[name] = parse_value(name, widget.value)
            except ConfigError as error:
                self.parse_errors[name] = str(error)
        if name == "init_from":
            self.update_disabled()
        self.show_preset()
        self.validate()

    @on(Input.Changed, "#budget")
    def budget_changed(self, event: Input.Changed) -> None:
        self.parse_errors.pop("budget_s", None)
        try:
            self.budget_s = parse_duration(event.value) if event.value.strip() else 0.0
        except ConfigError as error:
            self.budget_s, self.parse_errors["budget_s"] = 0.0, str(error)
        self.update_disabled()
        self.validate()

    def update_disabled(self) -> None:
        """Grey out the settings the trainer would not take from the form: those a budget chooses, a resumed
        run's architecture (its checkpoint's), and the shape of a run started from GPT-2 (init_from: the
        folder's)."""
        resumed = self.resume is not None and self.resume.config is not None
        from_folder = bool(self.values.get("init_from")) and not resumed
        for name in FORM_FIELDS:
            field = self.query_one(f"#cfg-{name}")
            why = ("the resumed run's own" if resumed and name in (*MODEL_KEYS, "arch") else
                   "the GPT-2 folder's (init_from)" if from_folder and name in FOLDER_SHAPE else
                   "chosen by the budget" if self.budget_s > 0 and name in CHOSEN_KEYS else None)
            field.disabled = why is not None
            field.tooltip = why
    @on(Select.Changed, "#dataset")
    @on(Input.Changed, "#run_name")
    def form_changed(self) -> None:
        self.validate()

    @on(RadioSet.Changed, "#device")
    def device_changed(self, event: RadioSet.Changed) -> None:
        self.device = event.pressed.name
        self.update_dtype_buttons()

    @on(RadioSet.Changed, "#dtype")
    def dtype_changed(self, event: RadioSet.Changed) -> None:
        self.dtype = event.pressed.name
        self.validate()

    def update_dtype_buttons(self) -> None:
        """Enable the dtypes the chosen device takes; the note below says why the others are not."""
        reasons = self.dtypes.get(self.device or "", {})
        buttons = list(self.query_one("#dtype", RadioSet).query(RadioButton))
        for button in buttons:
            reason = reasons.get(button.name or "", "pick a device first")
            button.disabled = reason is not None
            button.label = button.name if reason is None else f"{button.name} (unavailable)"
            button.tooltip = reason
            if reason is not None:
                button.value = False
        usable = [button.name for button in buttons if not button.disabled]
        if self.dtype not in usable:
            self.dtype = usable[0] if usable else None
        for button in buttons:  # the RadioSet's Changed comes later: self.dtype is what counts now
            button.value = button.name == self.dtype
        self.query_one("#dtype-note", Static).update(
            "\n".join(f"{name}: {reason}" for name, reason in reasons.items() if reason)
        )
        self.validate()

    # -- the config and its problems ----------------------------------------------------------------

    def read(self) -> tuple[TrainConfig, dict[str, str]]:
        """The config the form describes, and its problems by field (FORM for the rest)."""
        problems = dict(self.parse_errors)
        if self.budget_s:  # what a budget chooses cannot be wrong: the fields are disabled
            problems = {name: problem for name, problem in problems.items() if name not in CHOSEN_KEYS}
        info = self.datasets.get(str(self.query_one("#dataset", Select).value))
        config = TrainConfig(
            **{k: v for k, v in self.values.items() if k not in self.parse_errors},
            dataset=info.name if info else "",
            run_name=self.query_one("#run_name", Input).value.strip() or None,
            device=self.device or "cpu",
            dtype=self.dtype or "float32",
            budget_s=self.budget_s,
        )
        found = ConfigError(config.problems(info.train_tokens if info else None, info.val_tokens if info else None))
        for field, problem in found.by_field().items():
            if self.budget_s and field in CHOSEN_KEYS:
                continue
            # A field's own parse error comes first; dataset problems show under the form.
            problems.setdefault(field if field in FORM_FIELDS or field in ("run_name", "budget_s") else FORM, problem)
        resume = self.resume
        if resume is not None and self.budget_s:
            problems.setdefault("budget_s", "a budget trains a new model: clear it to resume this run")
        if resume is not None and resume.iter_num is not None and config.max_iters <= resume.iter_num and not self.budget_s:
            problems.setdefault("max_iters", f"this run has trained {resume.iter_num} iterations already: raise "
                                             f"max_iters above {resume.iter_num} (it is {config.max_iters}) to train it on")
        if config.init_from and resume is None:  # a few stats: which folder, or what is wrong with the name
            found = find_hf_folder(config.init_from)
            if isinstance(found, str):
                problems.setdefault("init_from", found)
        if info is None:
            problems[FORM] = "no dataset: prepare one on the Data screen (f2)"
        elif self.device is None:
            problems.setdefault(FORM, "looking for devices…")
        elif self.dtype is None:
            problems.setdefault(FORM, f"no precision works on {self.device}")
        elif resume is not None and resume.config is None:
            problems.setdefault(FORM, f"reading {resume.path}…")
        return config, problems

    def validate(self) -> None:
        """Show each problem under its field; post SettingsChanged when the config or its problems change."""
        if not self.is_mounted:
            return
        config, problems = self.read()
        # Touch only the labels whose text changes: every update costs the UI a layout pass.
        for field in set(problems) | set(self.problems):
            message = problems.get(field, "")
            if self.problems.get(field, "") != message:
                label = self.query_one(f"#error-{field}", Static)
                label.update(message)
                label.display = bool(message)
        self.problems = problems
        self.update_start()
        if self._posted != (config, problems):
            self._posted = (config, problems)
            self.post_message(SettingsChanged(config, problems))

    def watch_training(self) -> None:
        self.update_start()

    def update_start(self) -> None:
        if self.is_mounted:
            self.query_one("#start", Button).disabled = bool(self.problems) or self.training
