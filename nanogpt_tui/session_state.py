"""What the app remembers between launches, so a user continues where they stopped.

One small JSON object in the config dir (`core.common.paths.config_dir()`, `session.json`):
`{"version": 1, "dataset": str | null, "screen": str | null, "interrupted": str | null}`:

- `dataset`: the dataset the last run started in the app trained on: the Train screen's default next time
  (not the alphabetically first);
- `screen`: the screen shown when the app quit: the next launch opens there (with none remembered, on
  Train once a dataset exists, else on Data);
- `interrupted`: the run folder that was training when ctrl+q quit (its checkpoint saved): the next launch
  says so and offers to resume it, once.

Written atomically (`core.common.disk.write_atomic`). Read through core.common.safe_files: a missing file
is the defaults; a file that is no regular file (a link, a FIFO), is too big, or is not a JSON object
gives the defaults and one notice; a field of the wrong type is dropped alone. Reading and writing it are a few hundred bytes: the app does it
at launch, at quit and when a run starts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.common import paths
from core.common.disk import write_text_atomic
from core.common.safe_files import read_json_object
from core.dataset.format import dataset_folders
from core.runs.files import LATEST
from nanogpt_tui.messages import ResumeTraining

if TYPE_CHECKING:
    from textual.app import App

STATE_FILE = "session.json"
VERSION = 1
MAX_BYTES = 64 * 1024  # the file holds three short strings: anything bigger is not ours


@dataclass
class SessionState:
    """What the app remembers (see the module docstring); None: nothing remembered."""

    dataset: str | None = None
    screen: str | None = None
    interrupted: str | None = None


def state_path() -> Path:
    return paths.config_dir() / STATE_FILE


def read_state() -> tuple[SessionState, str | None]:
    """The remembered state, and a notice for the user when the file could not be used (then: defaults)."""
    path = state_path()
    try:
        data = read_json_object(path, MAX_BYTES)
    except FileNotFoundError:
        return SessionState(), None
    except OSError as error:  # refused (UnsafeFile names the file and why), unreadable
        return SessionState(), f"{error}: the app starts afresh"
    fields = {f.name: data.get(f.name) for f in dataclasses.fields(SessionState)}
    return SessionState(**{name: value if isinstance(value, str) else None for name, value in fields.items()}), None


def write_state(state: SessionState) -> None:
    """Save the state (OSError when the config dir cannot be written)."""
    text = json.dumps({"version": VERSION, **dataclasses.asdict(state)}, indent=1) + "\n"
    write_text_atomic(state_path(), text, what=f"remember the session in {STATE_FILE}")


def update_state(**changes: str | None) -> None:
    """Remember `changes` on top of what the file holds; a file that cannot be written is skipped (it is
    only a convenience: the next launch starts afresh)."""
    state, _problem = read_state()
    try:
        write_state(dataclasses.replace(state, **changes))
    except OSError:
        pass


def opening_screen(state: SessionState, screens: Iterable[str]) -> str:
    """Where the app opens: the screen it quit on, else Train once a dataset exists, else Data."""
    if state.screen in set(screens):
        return state.screen  # type: ignore[return-value]
    return "train" if dataset_folders() else "data"


def interrupted_checkpoint(state: SessionState) -> Path | None:
    """The checkpoint of the run ctrl+q interrupted, if it is still there."""
    if not state.interrupted:
        return None
    checkpoint = Path(state.interrupted) / LATEST
    return checkpoint if checkpoint.is_file() else None


def after_launch(app: App[Any], state: SessionState, problem: str | None) -> None:
    """Once the first screen shows: say why the state was not used, and offer to resume an interrupted run."""
    from nanogpt_tui.widgets.dialogs import Choice, ChoiceModal

    if problem:
        app.notify(problem, title="Starting afresh", severity="warning")
    checkpoint = interrupted_checkpoint(state)
    if state.interrupted:
        update_state(interrupted=None)  # offered once
    if checkpoint is None:
        return

    def answer(choice: str | None) -> None:
        if choice == "resume":
            app.post_message(ResumeTraining(checkpoint))

    run = checkpoint.parent.name
    question = (f"Run {run!r} was training when the app quit: its latest checkpoint was saved. "
                f"Resume it now (it opens on the Train screen, ctrl+r starts it)?")
    choices = [Choice("resume", "r", "Resume it", "primary"), Choice("later", "n", "Not now")]
    app.push_screen(ChoiceModal(question, choices, first="resume"), answer)


def remember_quit(screen: str | None, training: Path | None) -> None:
    """At quit: the screen shown, and the run that was training (its checkpoint is being saved)."""
    update_state(screen=screen, interrupted=str(training) if training else None)
