"""The Compare screen: several runs' loss curves overlaid, their last eval, and the settings in which they differ.

Runs with different tokenizers have losses in different units (nats per char token, per BPE token): the
results table shows each run's last val loss also in bits per byte, which does not depend on the tokenizer.

Opened from the Checkpoints screen with the runs marked there. A run's curves come from its
metrics.jsonl (every logged step, with its learning rate), read in a thread worker; its settings from
the marked checkpoint's summary (`listings.checkpoint_summary`: the one the Checkpoints listing read,
so no checkpoint is loaded again unless its file changed since). A run without metrics.jsonl (a nanoGPT
out_dir) or whose checkpoint cannot be read says so and is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from core.runs import metrics
from core.runs.curves import settings_diff
from nanogpt_tui import listings
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.loss_plot import LossPlot
from nanogpt_tui.widgets.screen_tabs import ScreenTabs

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary


@dataclass
class ComparedRun:
    """One run as the Compare screen shows it: what could be read of it, or why not."""

    name: str  # in the legend and the diff's header; unique among the compared runs
    checkpoint: Path
    run_dir: Path
    curves: dict[str, list[list[float]]] | None = None  # metrics.read_curves; None: no metrics.jsonl
    config: dict[str, Any] | None = None  # the checkpoint's TrainConfig fields
    tokenizer: str = ""  # its tokenizer's short name
    error: str | None = None  # why the checkpoint could not be read


@dataclass
class RunsRead(Message):
    """The compared runs' curves and settings, read by the worker."""

    runs: list[ComparedRun]


DIFF_ROWS = 12  # the most lines the diff table takes (header included); more rows scroll
RESULT_COLUMNS = ("run", "tokenizer", "iter", "val loss", "val bits/byte")


def unique_names(summaries: list[CheckpointSummary]) -> list[str]:
    """The runs' folder names, numbered where two are the same (two nanoGPT out_dirs called `out`)."""
    names: list[str] = []
    for summary in summaries:
        name, n = summary.name, 2
        while name in names:
            name, n = f"{summary.name} ({n})", n + 1
        names.append(name)
    return names


def show_value(value: Any) -> str:
    return "–" if value is None else str(value)


def last_eval(curves: dict[str, list[list[float]]] | None) -> tuple[str, str, str]:
    """(iter, val loss, val bits per byte) of a run's last eval, as shown; "–" for what it lacks."""
    evals, bpb = (curves or {}).get("evals") or [], (curves or {}).get("bpb") or []
    if not evals:
        return "–", "–", "–"
    it, _, val = evals[-1]
    bits = next((row[2] for row in reversed(bpb) if row[0] == it), math.nan)
    return f"{int(it):,}", f"{val:.4f}", "–" if math.isnan(bits) else f"{bits:.4f}"


class CompareScreen(Screen[None]):
    """The marked runs' curves on one plot (one colour each, a legend) and a table of their differences."""

    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("escape", "close", "Back", id="compare.close"),
        Binding("x,ctrl+g", "x_axis", "X axis", id="compare.x_axis"),
        Binding("ctrl+l", "log_scale", "Log scale", id="compare.log_scale"),
    ]

    def __init__(self, summaries: list[CheckpointSummary]) -> None:
        super().__init__()
        self.runs = [
            ComparedRun(name, s.path, s.run_dir) for name, s in zip(unique_names(summaries), summaries, strict=True)
        ]

    def compose(self) -> ComposeResult:
        yield ScreenTabs(f"Compare {len(self.runs)} runs", back=("esc", "close"))
        yield Static(f"Reading {len(self.runs)} runs…", id="compare-notes")
        yield LossPlot(title="train (smoothed) and val loss", id="compare-plot")
        yield Static("", id="compare-results-title")
        results: DataTable[str] = DataTable(id="compare-results", cursor_type="none", zebra_stripes=True)
        yield results
        yield Static("", id="compare-diff-title")
        table: DataTable[str] = DataTable(id="compare-diff", cursor_type="row", zebra_stripes=True)
        yield table
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#compare-plot", LossPlot).focus()
        self.read_runs(self.runs)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-read")
    def read_runs(self, runs: list[ComparedRun]) -> None:
        read = []
        for run in runs:
            found = ComparedRun(run.name, run.checkpoint, run.run_dir)
            try:
                found.curves = metrics.read_curves(run.run_dir)
            except Exception as error:  # a folder deleted or made unreadable meanwhile: said in the notes
                found.error = str(error).splitlines()[0] if str(error) else type(error).__name__
            summary = listings.checkpoint_summary(run.checkpoint)
            if summary.error:  # a file deleted or damaged since it was listed
                found.error = summary.error.splitlines()[0]
            else:
                found.config, found.tokenizer = summary.config, summary.tokenizer
            read.append(found)
        self.post_message(RunsRead(read))

    def on_runs_read(self, message: RunsRead) -> None:
        self.runs = message.runs
        drawn = [run for run in self.runs if run.curves and run.curves["steps"]]
        plot = self.query_one("#compare-plot", LossPlot)
        plot.set_runs([(run.name, run.curves or {}) for run in drawn])
        datasets = {str((run.config or {}).get("dataset", "")) for run in drawn}
        plot.show_dataset(datasets.pop() if len(datasets) == 1 else None)  # reference lines: of one dataset only
        notes = Text(f"Comparing {len(drawn)} of {len(self.runs)} runs: " + ", ".join(r.name for r in drawn))
        for run in self.runs:
            if run.curves is None:
                notes.append(f"\n{run.name}: no metrics.jsonl in {run.run_dir}, so no curves", style="yellow")
            elif not run.curves["steps"]:
                notes.append(f"\n{run.name}: its metrics.jsonl has no steps yet", style="yellow")
            if run.error:
                notes.append(f"\n{run.name}: cannot read {run.checkpoint.name}: {run.error}", style="red")
        self.query_one("#compare-notes", Static).update(notes)
        self.show_results(self.runs)
        self.show_diff([run for run in self.runs if run.config is not None])

    def show_results(self, runs: list[ComparedRun]) -> None:
        """Each run's last eval: its val loss and, comparable across tokenizers, its bits per byte."""
        table = self.query_one("#compare-results", DataTable)
        table.clear(columns=True)
        table.add_columns(*RESULT_COLUMNS)
        for run in runs:
            table.add_row(run.name, run.tokenizer or "–", *last_eval(run.curves), key=run.name)
        table.styles.height = len(runs) + 1
        self.query_one("#compare-results-title", Static).update(Text.assemble(
            ("Last eval", "bold"), ("  bits per byte: the val loss per byte of text, comparable across tokenizers", "dim")
        ))

    def show_diff(self, runs: list[ComparedRun]) -> None:
        """The settings that differ, one row each: setting | run A | run B | ..."""
        table = self.query_one("#compare-diff", DataTable)
        title = self.query_one("#compare-diff-title", Static)
        table.clear(columns=True)
        if len(runs) < 2:
            title.update("Settings: fewer than two runs have readable settings")
            table.display = False
            return
        diff = settings_diff([run.config or {} for run in runs])
        table.display = bool(diff)
        if not diff:
            title.update(Text("Settings: the same in every run", style="bold"))
            return
        title.update(Text(f"Settings that differ ({len(diff)})", style="bold"))
        table.add_columns("setting", *(run.name for run in runs))
        for key, values in diff:
            table.add_row(key, *map(show_value, values), key=key)
        # An explicit height: "auto" can leave a table filled after the first layout at no rows at all.
        table.styles.height = min(len(diff) + 1, DIFF_ROWS)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_x_axis(self) -> None:
        self.query_one("#compare-plot", LossPlot).cycle_x_mode()

    def action_log_scale(self) -> None:
        self.query_one("#compare-plot", LossPlot).toggle_log_scale()
