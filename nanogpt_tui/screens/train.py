"""The Train screen: pick data and settings, train in a child process, watch the loss fall.

The screen coordinates two widgets: TrainSettingsForm (the settings; posts SettingsChanged) and
RunMonitor (draws a run's events). `load_devices` imports torch in a worker to find the devices and the
dtypes each takes. Training runs in a child process (core.training.process.TrainerProcess) driven by the
`run_training` worker, which relays its events as messages batched by `EventThrottle` (at most 4 a
second): the trainer has a GIL of its own, so drawing the screen never stalls it. `state` (a Phase) says what the
screen is doing; the keys follow it (`check_action`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Button
from textual.worker import Worker, WorkerState, get_current_worker

from core.common import disk, paths
from core.dataset.format import no_such_dataset
from core.runs.events import Compiling, Event, Failed, Finished, Paused, Started, Step, Unpaused
from core.runs.files import LATEST
from core.settings.budget import format_duration
from core.settings.train_config import TrainConfig
from core.training.process import TrainerProcess
from nanogpt_tui import listings, session_state
from nanogpt_tui.messages import DatasetsListed, ResumeTraining, WatchRun
from nanogpt_tui.run_folders import FolderId, find_moved, folder_id
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.screens.train_messages import (
    TRAINING,
    UPDATE_INTERVAL,
    DevicesFailed,
    DevicesReady,
    ExistingRun,
    FoldersMoved,
    Phase,
    ResumeFailed,
    ResumeLoaded,
    TrainerEvents,
    TrainingStarted,
    find_devices,
    read_resume,
)
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.dialogs import Choice, ChoiceModal, ConfirmModal
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.run_monitor import RunMonitor
from nanogpt_tui.widgets.screen_tabs import ScreenTabs
from nanogpt_tui.widgets.settings_form import FORM, ResumeDropped, SettingsChanged, TrainSettingsForm


READY = "Ready: pick a dataset and settings, then Start (ctrl+r)."


class TrainScreen(AppScreen):
    """Train a GPT on a prepared dataset and watch it learn."""

    CSS_PATH = "train.tcss"
    # ctrl keys so they work while an Input has focus (none of these is an Input key).
    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="train.start"),
        Binding("ctrl+t", "pause", "Pause", id="train.pause"),
        Binding("ctrl+t", "unpause", "Unpause", id="train.unpause"),
        Binding("ctrl+b", "stop", "Stop", id="train.stop"),
        Binding("ctrl+s", "save_now", "Save now", id="train.save"),
        Binding("ctrl+n", "sample_now", "Sample now", id="train.sample"),
        Binding("ctrl+l", "log_scale", "Log scale", id="train.log_scale", show=False),
        Binding("ctrl+g", "x_axis", "X axis", id="train.x_axis", show=False),
        Binding("ctrl+y", "app.ladder", "Ladder", id="train.ladder", show=False),  # (screens/ladder.py)
    ]

    state: reactive[Phase] = reactive(Phase.LOADING, bindings=True)
    # The form's latest config and problems (SettingsChanged): Start is offered once a dataset is chosen.
    settings: reactive[SettingsChanged | None] = reactive(None, bindings=True)

    def __init__(self) -> None:
        super().__init__()
        self.training_worker: Worker[None] | None = None  # the worker running `trainer`
        self._datasets_signature: tuple[Any, ...] | None = None  # of the listing the form shows
        self.run_dir: Path | None = None  # the folder of the run shown (renames followed)
        self.run_folder: FolderId | None = None  # its folder_id
        self.resume_folder: FolderId | None = None  # the folder_id of the run to resume
        self.ended: Finished | None = None  # how the last run ended, for the status line

    def compose(self) -> ComposeResult:
        yield ScreenTabs()
        with Horizontal(id="train-body"):
            yield TrainSettingsForm(id="train-settings")
            yield RunMonitor(id="train-main")
        yield KeyFooter()

    @property
    def trainer(self) -> TrainerProcess | None:
        """The running trainer (in its child process), None between runs. The app keeps it: quitting stops it."""
        return self.app.trainer

    @property
    def form(self) -> TrainSettingsForm:
        return self.query_one(TrainSettingsForm)

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    def on_mount(self) -> None:
        self.watch(self.app, "trainer", self.refresh_bindings, init=False)  # the keys follow it (check_action)
        self.refresh_datasets()
        # torch's import holds the GIL for a good part of a second: after the first paint, so the screen shows first.
        self.call_after_refresh(self.load_devices)

    def on_screen_resume(self) -> None:
        # A dataset may have been prepared on the Data screen since, a run renamed on the Checkpoints screen.
        self.refresh_datasets()
        known = {path: folder for path, folder in self.shown_folders() if folder is not None}
        if known:
            self.find_moved_folders(known)

    @property
    def resume_path(self) -> Path | None:
        """The checkpoint the next Start resumes (the form holds it), if any."""
        return self.form.resume.path if self.form.resume else None

    # -- datasets and devices -----------------------------------------------------------------------

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
        first, self._datasets_signature = self._datasets_signature is None, message.signature
        # A resume set up before this listing came in wants its own dataset; the first listing, the dataset
        # last trained on (a later one keeps the user's choice).
        resume = self.form.resume.config if self.form.resume else None
        resumed = resume.get("dataset", "") if resume else ""
        remembered = self.app.remembered.dataset if first else None
        self.form.show_datasets(message.items, wanted=Path(str(resumed)).name or remembered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-setup")
    def load_devices(self) -> None:
        """Import torch off the UI thread; post the devices and the dtypes each takes."""
        self.post_message(find_devices())

    def on_devices_failed(self, message: DevicesFailed) -> None:
        self.set_state(Phase.FAILED, f"torch could not load, so no device can train: {message.error}")
        self.notify(message.error, title="Training engine", severity="error")

    async def on_devices_ready(self, message: DevicesReady) -> None:
        await self.form.show_devices(message.devices, message.dtypes, message.default_device)
        if self.state == Phase.LOADING:  # a resume set up meanwhile keeps its status line
            self.set_state(Phase.IDLE, self.monitor.status_text if self.form.resume else READY)

    def on_settings_changed(self, message: SettingsChanged) -> None:
        self.settings = message
        self.app.train_config = message.config  # the Model screen's untrained model takes them

    # -- resume -------------------------------------------------------------------------------------

    def on_resume_training(self, message: ResumeTraining) -> None:
        """From the Checkpoints screen (t), through the app."""
        self.set_resume(message.run)

    def set_resume(self, path: Path | str) -> None:
        """Set up resuming the run at `path` (a run folder or a checkpoint file): its settings fill the form,
        and (no run training) its curve and what starts it fill the run's side (`show_resume`)."""
        self.form.set_resume(Path(path))
        self.load_resume_config(Path(path))
        if self.state not in TRAINING:
            run = Path(path) if Path(path).is_dir() else Path(path).parent
            self.set_state(self.resting_state(), f"Reading {run.name} to resume it…")

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-resume")
    def load_resume_config(self, path: Path) -> None:
        self.post_message(read_resume(path))

    def on_resume_loaded(self, message: ResumeLoaded) -> None:
        if message.path != self.resume_path:
            return
        self.resume_folder = message.folder
        self.form.resume_loaded(message.path, message.checkpoint, message.config, message.iter_num)
        if self.state not in TRAINING:
            self.show_resume(message)
        if "max_iters" in self.form.problems:  # a finished run: it needs more iterations first
            self.form.focus_problem()
            self.notify(self.form.problems["max_iters"], title=f"Resume {message.path}", severity="warning")
        else:
            self.notify(f"Press Start (ctrl+r) to resume {message.path}", title="Resume training")

    def show_resume(self, message: ResumeLoaded) -> None:
        """The run's side shows the run to resume, not the last one: its curve, iteration and val loss, and
        on the status line (in view whatever the form's scroll) what it is and the key that starts it."""
        evals = message.history.get("evals", [])
        val = f", val loss {evals[-1][2]:.4f}" if evals else ""
        self.ended = None  # the last run's "Finished" is not this one's
        self.monitor.begin(int(message.config.get("max_iters", 0)))
        self.monitor.plot.load_history(message.history)
        self.monitor.show_figures({
            "iteration": f"{message.iter_num} / {message.config.get('max_iters', '?')}",
            "val loss": f"{evals[-1][2]:.4f}" if evals else "–",
            "best val": f"{message.best_val_loss:.4f}" if evals else "–",
        })
        run = message.checkpoint.parent.name
        then = (f"raise max_iters above {message.iter_num}, then ctrl+r resumes it" if "max_iters" in self.form.problems
                else "ctrl+r (Start) resumes it")
        self.set_state(self.resting_state(), f"Ready to resume {run} at iteration {message.iter_num}{val}: {then}.")
        self.monitor.write_log(f"set up to resume {run} ({message.checkpoint.name}) at iteration {message.iter_num}")

    def resting_state(self) -> Phase:
        """The phase of a screen with no run training: idle, or still loading torch."""
        return Phase.LOADING if self.state == Phase.LOADING else Phase.IDLE

    def on_resume_dropped(self, message: ResumeDropped) -> None:
        if self.state not in TRAINING:  # the run's side no longer shows a run to resume
            self.monitor.begin(0)
            self.set_state(self.resting_state(), READY)

    def on_resume_failed(self, message: ResumeFailed) -> None:
        # Only the resume is dropped: a run training meanwhile, or the ready form, stays as it is.
        if message.path == self.resume_path:
            self.notify(message.error, title=f"Cannot resume {message.path}", severity="error")
            self.form.clear_resume()

    # -- renamed or deleted run folders -------------------------------------------------------------

    def shown_folders(self) -> list[tuple[Path, FolderId | None]]:
        """The run folders the screen names: the last run's and the one to resume."""
        shown = [(self.run_dir, self.run_folder)] if self.run_dir else []
        if self.resume_path is not None:
            shown.append((self.resume_path.parent, self.resume_folder))
        return shown

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-folders")
    def find_moved_folders(self, known: dict[Path, FolderId]) -> None:
        moved = find_moved(known)
        if moved:
            self.post_message(FoldersMoved(moved))

    def on_folders_moved(self, message: FoldersMoved) -> None:
        for old, new in message.moved.items():
            if old == self.run_dir and self.state not in TRAINING:
                self.run_dir = new
                self.monitor.write_log(f"run folder {old.name} " + (f"renamed to {new.name}" if new else "deleted"))
                if self.ended is not None:
                    self.show_ended()
            if self.resume_path is not None and old == self.resume_path.parent:
                if new is None:
                    self.notify(f"{old} was deleted: nothing to resume", severity="warning")
                    self.form.clear_resume()
                else:
                    self.form.move_resume(new / self.resume_path.name)

    # -- running ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that do nothing now show disabled in the footer (Pause and Unpause share ctrl+t)."""
        if action == "start":
            ready = self.settings is not None and self.settings.config.dataset
            # (the app's trainer set while this screen trains nothing: the Ladder screen's)
            return None if self.state in TRAINING or not ready or self.app.trainer is not None else True
        if action == "pause":
            return self.state != Phase.PAUSED if self.trainer is not None else None
        if action == "unpause":
            return self.trainer is not None and self.state == Phase.PAUSED
        if action in ("stop", "save_now", "sample_now"):
            return True if self.trainer is not None else None
        return True

    def watch_state(self, state: Phase) -> None:
        self.form.training = state in TRAINING

    def set_state(self, state: Phase, status: str) -> None:
        self.state = state
        self.monitor.set_status(status, state)

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.state in TRAINING:
            return
        if self.app.trainer is not None:  # the Ladder screen's
            self.notify("The ladder is training (ctrl+y shows it): one run at a time", severity="warning")
            return
        config, problems = self.form.read()
        if problems:
            self.form.validate()
            field = self.form.focus_problem()
            self.notify(problems.get(field or FORM, "Fix the settings marked in red first."), severity="warning",
                        title="Cannot start yet")
            return
        if not (paths.datasets_dir() / config.dataset).is_dir():  # deleted since it was listed: say so now,
            self.notify(str(no_such_dataset(config.dataset)), title="Cannot start yet", severity="warning")
            self.refresh_datasets()  # rather than start a run that fails at once
            return
        existing = paths.runs_dir() / config.run_name if config.run_name else None
        # One stat: a new run by the name of a trained one would otherwise fail in the trainer.
        if existing is not None and (existing / LATEST).is_file() and self.resume_path is None:
            self.size_existing_run(config, existing)  # then asks (on_existing_run)
            return
        self.start(config, self.resume_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-existing")
    def size_existing_run(self, config: TrainConfig, run: Path) -> None:
        """Count the files the Replace answer would delete (a big run on a slow disk takes a while)."""
        size = disk.folder_size(run)  # never raises
        if not get_current_worker().is_cancelled:  # a second ctrl+r meanwhile asks once, with its own settings
            self.post_message(ExistingRun(config, run, size))

    def on_existing_run(self, message: ExistingRun) -> None:
        config, run = message.config, message.run
        if self.state in TRAINING or not self.is_current:  # a run started meanwhile, or the user went elsewhere
            return
        question = (
            f"A run called {run.name!r} exists already.\n"
            f"Replace it: its folder {run} ({message.size}: its checkpoints and metrics) is deleted "
            f"and a new run starts there. Or resume it, or cancel and choose another run name."
        )

        def answer(choice: str | None) -> None:
            if choice == "replace":
                self.start(config, None, replace=run)
            elif choice == "resume":
                self.set_resume(run / LATEST)
            else:
                self.form.query_one("#run_name").focus()

        choices = [Choice("replace", "r", "Replace", "error"), Choice("resume", "u", "Resume it", "primary"),
                   Choice("cancel", "c", "Cancel")]
        self.app.push_screen(ChoiceModal(question, choices, first="cancel"), answer)

    def start(self, config: TrainConfig, resume: Path | None, replace: Path | None = None) -> None:
        self.monitor.begin(config.max_iters)
        self.ended = None
        self.set_state(Phase.STARTING, f"Measuring this machine's speed for the budget of {format_duration(config.budget_s)}…"
                       if config.budget_s else f"Starting on {config.device}…")
        self.training_worker = self.run_training(config, resume, replace)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def run_training(self, config: TrainConfig, resume: Path | None, replace: Path | None) -> None:
        """Run the trainer in its child process (blocking); its events reach the UI as throttled messages."""
        if replace is not None:  # the user chose to replace this run
            shutil.rmtree(replace)
        session_state.update_state(dataset=config.dataset)  # the next launch's default dataset
        throttle = EventThrottle(  # (a device reading, once a second at most, is shown at once: an eval may follow)
            lambda events: self.post_message(TrainerEvents(events)), lambda e: isinstance(e, Step), UPDATE_INTERVAL
        )
        trainer = TrainerProcess(config, throttle, resume=resume, cancel=get_current_worker().cancelled_event)
        self.post_message(TrainingStarted(trainer))
        trainer.run()
        throttle.flush()

    def on_training_started(self, message: TrainingStarted) -> None:
        self.app.trainer = message.trainer

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.training_worker or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.app.trainer = None
        if event.state == WorkerState.ERROR:  # TrainerProcess.run never raises: this is the worker itself failing
            self.show_failure(f"{type(event.worker.error).__name__}: {event.worker.error}")
            self.monitor.write_log(f"[red]failed:[/] {event.worker.error}")
        elif self.state in TRAINING:
            self.set_state(Phase.INTERRUPTED, "Training ended.")

    def on_trainer_events(self, message: TrainerEvents) -> None:
        steps: list[Step] = []
        for event in message.events:
            if isinstance(event, Step):
                steps.append(event)
                continue
            if steps:
                self.monitor.show_steps(steps)
                steps = []
            self.monitor.show_event(event)
            self.follow(event)
        if steps:
            self.monitor.show_steps(steps)

    def follow(self, event: Event) -> None:
        """The phase and status line an event brings."""
        if isinstance(event, Started):
            self.run_dir = event.run_dir
            self.run_folder = folder_id(event.run_dir)  # one stat, to follow a rename once the run ends
            self.set_state(Phase.RUNNING, f"Training {event.run_dir.name} on {event.device}.")
        elif isinstance(event, Compiling):
            self.set_state(Phase.RUNNING, "Compiling the model (torch.compile): the first steps wait for it…")
        elif isinstance(event, Paused):
            self.set_state(Phase.PAUSED, f"Paused at iteration {event.iter}: ctrl+t resumes.")
        elif isinstance(event, Unpaused):
            self.set_state(Phase.RUNNING, f"Training {self.run_dir.name if self.run_dir else ''}.")
        elif isinstance(event, Finished):
            self.ended = event
            self.show_ended()
            if self.resume_path is not None and self.resume_path.parent == self.run_dir:
                self.form.resume_trained_to(event.iter)  # Start again resumes from here
            self.notify(f"{event.reason} at iteration {event.iter}; checkpoint in {paths.shown(self.run_dir)}", title="Training finished")
        elif isinstance(event, Failed):
            self.show_failure(event.message)
            if event.kind == "in_use" and event.path:
                self.offer_to_watch(Path(event.path))

    def offer_to_watch(self, run_dir: Path) -> None:
        """Another process trains that run: watch it (and steer it) instead of fighting over its folder."""

        def answer(yes: bool | None) -> None:
            if yes:
                self.post_message(WatchRun(run_dir))

        question = f"Run {run_dir.name!r} is being trained by another process. Watch it here instead?"
        self.app.push_screen(ConfirmModal(question), answer)

    def show_ended(self) -> None:
        assert self.ended is not None
        where = paths.shown(self.run_dir) if self.run_dir else "a run folder since deleted"
        self.set_state(Phase.FINISHED, f"Finished ({self.ended.reason}) at iteration {self.ended.iter}; checkpoint in {where}.")

    def show_failure(self, error: str) -> None:
        self.set_state(Phase.FAILED, f"Training failed: {error}")
        self.notify(error, title="Training failed", severity="error", timeout=15)

    # -- keys ---------------------------------------------------------------------------------------

    def action_pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def action_unpause(self) -> None:
        if self.trainer is not None:
            self.trainer.unpause()

    def action_stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()
            self.monitor.write_log("stopping: saving a checkpoint…")

    def action_save_now(self) -> None:
        if self.trainer is not None:
            self.trainer.save_now()

    def action_sample_now(self) -> None:
        if self.trainer is not None:
            self.trainer.sample_now()

    def action_log_scale(self) -> None:
        self.monitor.plot.toggle_log_scale()

    def action_x_axis(self) -> None:
        self.monitor.plot.cycle_x_mode()
