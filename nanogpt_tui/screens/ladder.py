"""The Ladder screen: "Let's build GPT" as an experiment, each step trained in turn, their curves overlaid.

Opened from the Train screen (ctrl+y) or the command palette ("Ladder"). Pick a dataset and the iterations
per step; ctrl+r trains the steps of core.training.ladder's plan one after another, each an ordinary run
in a child process (core.training.process.TrainerProcess, as the Train screen trains), so they show on
the Checkpoints screen. The table says what each step reached (val loss, its change from the step
before, bits per byte), the plot overlays their curves with the dataset's reference lines, and `c` opens
the Compare screen on the runs. ctrl+b stops the step training (it saves) and the steps after it.

The app installs the screen once: escape goes back and the ladder goes on training; opening it again
shows it. The trainer of the step training is the app's `trainer` (quitting stops it and waits for its
checkpoint); the Train screen starts nothing while it is set.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Select, Static
from textual.worker import get_current_worker

from core.dataset.format import DatasetInfo
from core.runs.events import Eval, Event, Failed, Finished, Step
from core.runs.files import LATEST
from core.settings.train_config import ConfigError, TrainConfig
from core.training.ladder import DEFAULT_ITERS, LadderResults, ladder_plan, ladder_steps
from nanogpt_tui import listings
from nanogpt_tui.messages import DatasetsListed
from nanogpt_tui.screens.train_messages import UPDATE_INTERVAL
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.loss_plot import LossPlot
from nanogpt_tui.widgets.screen_tabs import ScreenTabs

COLUMNS = ("step", "adds", "params", "val loss", "change", "bits/byte", "status")


@dataclass
class LadderStepStarted(Message):
    index: int
    trainer: Any  # TrainerProcess


@dataclass
class LadderEvents(Message):
    index: int
    events: list[Event]


@dataclass
class LadderStepEnded(Message):
    index: int
    seconds: float


@dataclass
class LadderEnded(Message):
    error: str | None = None


@dataclass
class BytesPerToken(Message):
    """The dataset's val bytes per token (core.dataset.baseline), for the bits-per-byte column."""

    dataset: str
    value: float


@dataclass
class RunsSummarised(Message):
    summaries: list[Any]  # CheckpointSummary


class LadderScreen(Screen[None]):
    """Train the lecture's steps one after another and compare what each reached."""

    CSS_PATH = "ladder.tcss"
    BINDINGS = [
        Binding("escape", "close", "Back", id="ladder.close"),
        Binding("ctrl+r", "start", "Start", id="ladder.start"),
        Binding("ctrl+b", "stop", "Stop", id="ladder.stop"),
        Binding("c", "compare", "Compare runs", id="ladder.compare"),
    ]

    running: reactive[bool] = reactive(False, bindings=True)

    def __init__(self) -> None:
        super().__init__()
        self.plan: list[TrainConfig] = []
        self.results = LadderResults()
        self.histories: list[dict[str, list[list[float]]]] = []  # per step: its steps and evals so far
        self.bytes_per_token = math.nan
        self.datasets: dict[str, DatasetInfo] = {}
        self.current: int | None = None  # the step training
        self._started = 0.0

    def compose(self) -> ComposeResult:
        yield ScreenTabs("Ladder: from a bigram to the GPT", back=("esc", "close"))
        with Horizontal(id="ladder-top"):
            yield Select[str]([], prompt="Dataset", id="ladder-dataset", compact=True)
            yield Label("iterations per step", id="ladder-iters-label")
            yield Input(str(DEFAULT_ITERS), id="ladder-iters", type="integer", compact=True)
        yield Static("Each step of \"Let's build GPT\" trained on the same data, batch, block, iterations and seed. "
                     "ctrl+r starts.", id="ladder-status")
        table: DataTable[Any] = DataTable(id="ladder-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield LossPlot(title="each step's train (smoothed) and val loss", id="ladder-plot")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#ladder-table", DataTable).add_columns(*COLUMNS)
        self.results = LadderResults(ladder_steps())  # the steps, waiting: what ctrl+r will train
        self.show_table()
        self.list_datasets()

    def on_screen_resume(self) -> None:
        if not self.running:
            self.list_datasets()

    @work(thread=True, exclusive=True, exit_on_error=False, group="ladder-datasets")
    def list_datasets(self) -> None:
        signature, items = listings.datasets()
        self.post_message(DatasetsListed(signature, items))

    def on_datasets_listed(self, message: DatasetsListed) -> None:
        self.datasets = {item.name: item for item in message.items if isinstance(item, DatasetInfo)}
        select = self.query_one("#ladder-dataset", Select)
        chosen = select.value
        select.set_options([(name, name) for name in self.datasets])
        config = self.app.train_config  # the Train screen's dataset, when none is chosen here yet
        wanted = chosen if isinstance(chosen, str) else (config.dataset if config is not None else None)
        if wanted in self.datasets:
            select.value = wanted
        elif self.datasets and not isinstance(chosen, str):
            select.value = next(iter(self.datasets))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return None if self.running else True
        if action == "stop":
            return True if self.running else None
        if action == "compare":
            return True if len(self.results.run_dirs) >= 2 else None
        return True

    def status(self, text: str | Text) -> None:
        self.query_one("#ladder-status", Static).update(text)

    # -- starting ------------------------------------------------------------------------------------

    def action_start(self) -> None:
        if self.running:
            return
        if self.app.trainer is not None:
            self.notify("A run is training (Train screen): stop it first, or wait for it", severity="warning")
            return
        dataset = self.query_one("#ladder-dataset", Select).value
        if not isinstance(dataset, str):
            self.notify("Pick a dataset first (prepare one on the Data screen, f2)", severity="warning")
            return
        text = self.query_one("#ladder-iters", Input).value
        problems = [] if text.strip().isdigit() else [("max_iters", f"iterations per step must be a whole number, not {text!r:.20}")]
        iters = int(text) if not problems else DEFAULT_ITERS
        plan = ladder_plan(dataset, iters)
        problems = problems or plan[0].problems()  # the steps share every setting a problem can concern
        if problems:
            self.notify(str(ConfigError(problems)), title="Cannot start the ladder", severity="error")
            return
        self.plan, self.results = plan, LadderResults.of(plan)
        self.histories = [{"steps": [], "evals": []} for _ in plan]
        self.bytes_per_token = math.nan
        self.running, self.current, self._started = True, None, time.monotonic()
        plot = self.query_one("#ladder-plot", LossPlot)
        plot.set_runs([])
        plot.show_dataset(dataset)
        self.show_table()
        self.status(f"Starting the ladder on {dataset}: {len(plan)} steps of {iters:,} iterations…")
        self.find_bytes_per_token(dataset)
        self.run_ladder(plan)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ladder-bytes")
    def find_bytes_per_token(self, dataset: str) -> None:
        from core.dataset.baseline import baseline
        from core.dataset.format import load_dataset

        try:
            self.post_message(BytesPerToken(dataset, baseline(load_dataset(dataset)).bytes_per_token))
        except Exception:  # the column stays empty; training says what is wrong with the dataset
            return

    def on_bytes_per_token(self, message: BytesPerToken) -> None:
        if self.plan and message.dataset == self.plan[0].dataset:
            self.bytes_per_token = message.value
            self.show_table()

    # "train": quitting the app waits for this worker, as for the Train screen's (its trainer saves first).
    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def run_ladder(self, plan: list[TrainConfig]) -> None:
        """Each step in its child process, one after another, until one does not complete."""
        from core.training.process import TrainerProcess

        worker = get_current_worker()
        for index, config in enumerate(plan):
            if worker.is_cancelled:
                break
            ending: list[Event] = []

            def relay(events: list[Event], index: int = index) -> None:
                self.post_message(LadderEvents(index, events))

            throttle: EventThrottle[Event] = EventThrottle(relay, lambda e: isinstance(e, Step), UPDATE_INTERVAL)

            def on_event(event: Event, throttle: EventThrottle[Event] = throttle, ending: list[Event] = ending) -> None:
                if isinstance(event, (Finished, Failed)):
                    ending.append(event)
                throttle(event)

            trainer = TrainerProcess(config, on_event, cancel=worker.cancelled_event)
            started = time.monotonic()
            self.post_message(LadderStepStarted(index, trainer))
            trainer.run()
            throttle.flush()
            self.post_message(LadderStepEnded(index, time.monotonic() - started))
            if not (ending and isinstance(ending[-1], Finished) and ending[-1].reason == "completed"):
                break  # stopped (ctrl+b, quitting) or failed: the steps after it are not trained
        self.post_message(LadderEnded())

    # -- following it --------------------------------------------------------------------------------

    def on_ladder_step_started(self, message: LadderStepStarted) -> None:
        self.current = message.index
        self.app.trainer = message.trainer  # quitting stops it; the Train screen starts nothing meanwhile
        config = self.plan[message.index]
        self.status(Text.assemble(("step ", "dim"), (f"{message.index + 1}/{len(self.plan)} {config.arch}", "bold"),
                                  (f": {self.results.steps[message.index].adds}", "dim")))

    def on_ladder_events(self, message: LadderEvents) -> None:
        index, history = message.index, self.histories[message.index]
        for event in message.events:
            self.results.record(index, event)
            if isinstance(event, Step):
                history["steps"].append([event.iter, event.loss, event.tokens_seen, event.elapsed_s])
            elif isinstance(event, Eval):
                history["evals"].append([event.iter, event.train_loss, event.val_loss])
            elif isinstance(event, Failed):
                self.notify(event.message, title=f"Step {self.plan[index].arch} failed", severity="error", timeout=15)
        steps = history["steps"]
        if steps:
            config = self.plan[index]
            elapsed = time.monotonic() - self._started
            self.status(Text.assemble(("step ", "dim"), (f"{index + 1}/{len(self.plan)} {config.arch}", "bold"),
                                      (f": iteration {steps[-1][0] + 1:,}/{config.max_iters:,}", ""),
                                      (f" · {elapsed:.0f} s since the ladder started · ctrl+b stops", "dim")))
        self.show_table()
        self.show_curves()

    def on_ladder_step_ended(self, message: LadderStepEnded) -> None:
        self.results.steps[message.index].seconds = message.seconds
        self.app.trainer = None
        self.show_table()

    def on_ladder_ended(self, message: LadderEnded) -> None:
        self.running, self.current = False, None
        self.app.trainer = None
        done = sum(step.status == "done" for step in self.results.steps)
        elapsed = time.monotonic() - self._started
        text = f"{done} of {len(self.plan)} steps trained in {elapsed:.0f} s"
        if done < len(self.plan):
            text += " (stopped or failed: the rest were not trained)"
        self.status(Text.assemble((text, "bold"), ("  ·  c compares the runs (Compare screen); they are on the "
                                                  "Checkpoints screen too", "dim")))
        self.notify(text, title="Ladder finished")
        self.refresh_bindings()

    def show_table(self) -> None:
        table = self.query_one("#ladder-table", DataTable)
        table.clear()
        for i, step in enumerate(self.results.steps):
            change = self.results.change(i)
            bpb = self.bytes_per_token
            bits = step.val_loss / math.log(2) / bpb if math.isfinite(step.val_loss) and math.isfinite(bpb) else math.nan
            val = f"{step.val_loss:.4f}" if math.isfinite(step.val_loss) else "–"
            if step.status == "training" and math.isfinite(step.val_loss):
                val += f" @{step.iters}"
            table.add_row(
                f"{i + 1} {step.arch}", step.adds, f"{step.n_params:,}" if step.n_params else "",
                val, f"{change:+.4f}" if math.isfinite(change) else "", f"{bits:.3f}" if math.isfinite(bits) else "",
                step.status + (f" {step.seconds:.0f} s" if step.seconds else ""),
            )
        table.styles.height = len(self.results.steps) + 1

    def show_curves(self) -> None:
        runs = [(f"{i + 1} {step.arch}", history) for i, (step, history) in enumerate(zip(self.results.steps, self.histories))
                if history["steps"]]
        self.query_one("#ladder-plot", LossPlot).set_runs(runs)

    # -- keys ----------------------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self.running and self.app.trainer is not None:
            self.app.trainer.stop()  # the step saves; its run then ends "stopped", and the ladder with it
            self.status("Stopping: the step saves its checkpoint, the steps after it are not trained…")

    def action_compare(self) -> None:
        self.summarise_runs([run_dir / LATEST for run_dir in self.results.run_dirs])

    @work(thread=True, exclusive=True, exit_on_error=False, group="ladder-compare")
    def summarise_runs(self, checkpoints: list[Path]) -> None:
        self.post_message(RunsSummarised([listings.checkpoint_summary(path) for path in checkpoints]))

    def on_runs_summarised(self, message: RunsSummarised) -> None:
        from nanogpt_tui.screens.compare import CompareScreen

        summaries = [s for s in message.summaries if not s.error]
        if len(summaries) < 2:
            self.notify("Fewer than two of the ladder's runs have a checkpoint yet", severity="warning")
            return
        self.app.push_screen(CompareScreen(summaries))

    def action_close(self) -> None:
        self.app.pop_screen()
