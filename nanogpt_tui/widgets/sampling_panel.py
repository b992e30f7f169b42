"""The Chat screen's side panel: sampling settings, stop strings, precision and colouring.

One table (SETTINGS) drives the fields; `core.settings.sampling.SamplingConfig.validate` judges the ranges and
`core.settings.sampling.parse_stop_strings` the stop strings, so the panel accepts what the engine accepts.
The panel remembers its values between launches (`nanogpt_tui.chat_store`): read in a worker when it
mounts, written in a worker whenever they change and are valid. A file that cannot be used leaves the
defaults, with a notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static, Switch

from core.settings.sampling import (
    DEFAULT_PRECISION,
    PRECISIONS,
    STOP_HELP,
    SamplingConfig,
    format_stop_strings,
    parse_stop_strings,
)
from nanogpt_tui import chat_store
from nanogpt_tui.messages import WorkFailed


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


def shown(value: Any, none: str) -> str:
    """A stored value as the field shows it (None as `none`)."""
    if value is None:
        return none
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number")
    return str(value)


def shown_stops(value: Any) -> str:
    if not isinstance(value, list) or not all(isinstance(stop, str) for stop in value):
        raise ValueError(f"{value!r} is not a list of strings")
    SamplingConfig(stop=value).validate()  # an empty one would read back as none at all
    return format_stop_strings(value)


@dataclass(frozen=True)
class Setting:
    key: str  # the SamplingConfig field
    label: str
    default: str
    parse: Callable[[str], Any]  # text -> value (ValueError when it is not one)
    show: Callable[[Any], str]  # value -> text (ValueError when it is not a value of this setting)


SETTINGS = (
    Setting("temperature", "temperature (0 = greedy)", "0.8", number, lambda v: shown(v, "")),
    Setting("top_k", "top-k (0 = off)", "0", ints(0, zero=None), lambda v: shown(v, "0")),
    Setting("top_p", "top-p (0, 1]", "1.0", number, lambda v: shown(v, "")),
    Setting("min_p", "min-p [0, 1]", "0.0", number, lambda v: shown(v, "")),
    Setting("repetition_penalty", "repetition penalty (1 = off)", "1.0", number, lambda v: shown(v, "")),
    Setting("max_new_tokens", "max tokens", "200", ints(1), lambda v: shown(v, "")),
    Setting("seed", "seed (blank = random)", "", ints(0, blank=None), lambda v: shown(v, "")),
    Setting("stop", "stop strings", "", parse_stop_strings, shown_stops),
)


def setting_error(setting: Setting, text: str) -> str | None:
    """Why `text` is not a valid value of `setting`, or None: parsed here, range-checked by SamplingConfig."""
    try:
        SamplingConfig(**{setting.key: setting.parse(text)}).validate()
    except ValueError as error:  # SamplerError is a ValueError
        return f"{setting.label}: {error}"
    return None


class SettingValidator(Validator):
    """Valid when the setting's parser accepts the text."""

    def __init__(self, setting: Setting) -> None:
        super().__init__()
        self.setting = setting

    def validate(self, value: str) -> ValidationResult:
        error = setting_error(self.setting, value)
        return self.failure(error) if error else self.success()


class SamplingPanel(VerticalScroll):
    """The settings fields; `config()` reads them as a SamplingConfig."""

    @dataclass
    class SettingsRead(Message):
        """The saved settings (None when there are none), or why the file could not be used."""

        values: dict[str, Any] | None
        error: str | None = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._saved: dict[str, Any] | None = None  # as last read or written; None until read

    def compose(self) -> ComposeResult:
        yield Label("Sampling", classes="heading")
        for setting in SETTINGS:
            yield Label(setting.label)
            field = Input(setting.default, id=f"chat-{setting.key}", validators=[SettingValidator(setting)])
            if setting.key == "stop":
                field.placeholder = r"e.g. \n\n, ROMEO:"
                field.tooltip = STOP_HELP
            yield field
        yield Static("", id="chat-settings-error")
        yield Label("precision (reloads the model)")
        precision = Select(
            [(name, name) for name in PRECISIONS], value=DEFAULT_PRECISION, allow_blank=False, id="chat-precision"
        )
        precision.tooltip = "\n".join(f"{name}: {text}" for name, text in PRECISIONS.items())
        yield precision
        with Horizontal(id="chat-colours-row"):
            yield Switch(False, id="chat-colours")
            yield Label("Colour by\nprobability")

    def on_mount(self) -> None:
        self.read_saved()

    # -- reading the fields ----------------------------------------------------------------------------

    def read(self) -> tuple[dict[str, Any], list[str]]:
        """The values by SamplingConfig field, and a message for each field that is not valid."""
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

    def config(self, alternatives: int) -> SamplingConfig:
        """The settings as a SamplingConfig; ValueError names the settings that are not valid."""
        values, problems = self.read()
        if problems:
            raise ValueError("; ".join(problems))
        return SamplingConfig(**values, alternatives=alternatives)

    @property
    def precision(self) -> str:
        return str(self.query_one("#chat-precision", Select).value)

    @property
    def colours(self) -> bool:
        return self.query_one("#chat-colours", Switch).value

    # -- remembering them ------------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def on_setting_changed(self) -> None:
        values, problems = self.read()
        self.query_one("#chat-settings-error", Static).update("\n".join(problems))
        stored = self.stored(values)
        if self._saved is not None and not problems and stored != self._saved:
            self._saved = stored
            self.write_saved(stored, chat_store.new_version())

    def stored(self, values: dict[str, Any]) -> dict[str, Any]:
        """Everything the panel remembers, as saved: the sampling `values`, the precision and the colouring."""
        return {**values, "precision": self.precision, "colours": self.colours}

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-settings-read")
    def read_saved(self) -> None:
        try:
            self.post_message(self.SettingsRead(chat_store.read_settings()))
        except chat_store.StoreError as error:
            self.post_message(self.SettingsRead(None, str(error)))

    @work(thread=True, exit_on_error=False, group="chat-settings-write")
    def write_saved(self, values: dict[str, Any], version: int) -> None:
        try:
            chat_store.write_settings(values, version)
        except OSError as error:
            self.post_message(WorkFailed("Chat settings not saved", str(error)))  # the screen tells the user

    def on_sampling_panel_settings_read(self, message: SettingsRead) -> None:
        """Show the saved values; those that are not valid keep their defaults, and the user is told."""
        message.stop()
        problems = [message.error] if message.error else []
        for key, value in (message.values or {}).items():
            problem = self._restore(key, value)
            if problem:
                problems.append(problem)
        if problems:
            self.notify(
                "\n".join(problems) + "\nThose settings keep their defaults.", title="Chat settings", severity="warning"
            )
        self._saved = self.stored(self.read()[0])  # from now on a change is saved

    def _restore(self, key: str, value: Any) -> str | None:
        """Set one saved value; a message when it is not a valid one."""
        if key == "precision":
            if value not in PRECISIONS:
                return f"precision: {value!r} is not one of {', '.join(PRECISIONS)}"
            self.query_one("#chat-precision", Select).value = value
            return None
        if key == "colours":
            if not isinstance(value, bool):
                return f"colours: {value!r} is not true or false"
            self.query_one("#chat-colours", Switch).value = value
            return None
        setting = next((s for s in SETTINGS if s.key == key), None)
        if setting is None:
            return None  # a setting of another version: ignored
        try:
            text = setting.show(value)
        except (ValueError, TypeError) as error:
            return f"{setting.label}: {error}"
        error = setting_error(setting, text)
        if error:
            return error
        self.query_one(f"#chat-{key}", Input).value = text
        return None
