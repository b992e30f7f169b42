"""CheckpointTable: the Checkpoints screen's table, a row per checkpoint file keyed by the file's path.

A row shows what the listing summarized (core.runs.listing.CheckpointSummary): a checkpoint that cannot be
read shows its error last; the kind cell says when a process trains the run now or the screen works on its
folder (RunTask: sizing or deleting it); the name cell has a mark when the row is marked for comparing.
The screen decides what is listed, marked or under way; this widget keeps it and draws it.
"""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from core.common.formatting import human_count, human_size
from nanogpt_tui import listings
from nanogpt_tui.widgets.tables import current_row_key

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary

# What tells runs apart comes first, so a narrow terminal shows it without scrolling sideways.
COLUMNS = ("name", "kind", "iters", "best val", "date", "dataset", "tokenizer", "params", "size", "problem")
NAME, KIND = COLUMNS.index("name"), COLUMNS.index("kind")
ERROR_WIDTH = 60  # characters of a corrupt checkpoint's error shown in its row


class RunTask(str, enum.Enum):
    """Work the screen does on a run folder in a worker (its rows say so; its keys leave that run alone
    meanwhile), worded as "Run 'x' is <value>"."""

    SIZING = "being sized"  # its files counted in a worker, before the delete dialog asks
    DELETING = "being deleted"  # shutil.rmtree in a worker

    def __str__(self) -> str:
        return self.value


class CheckpointTable(DataTable[Any]):
    """Checkpoints, the runs trained now, the work under way on run folders, and the marks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.add_columns(*COLUMNS)
        self.summaries: dict[str, CheckpointSummary] = {}  # row key (the file's path) -> summary
        self.training: frozenset[str] = frozenset()  # run folders a process trains now
        self.busy: dict[Path, RunTask] = {}  # run folder -> what the screen does to it now
        self.marked: set[str] = set()  # row keys marked for comparing

    @property
    def current_key(self) -> str | None:
        return current_row_key(self)

    def show(self, summaries: list[CheckpointSummary], training: frozenset[str]) -> bool:
        """List these checkpoints (the screen puts the cursor back); a row no longer listed loses its mark.

        A run being deleted keeps its rows, where they were, until the deletion ends: a listing meanwhile
        finds it half gone or gone. Returns whether the rows are the listing's as it is (no row kept)."""
        deleting = {run for run, task in self.busy.items() if task is RunTask.DELETING}
        if deleting:
            keys = list(self.summaries)
            kept = [s for s in self.summaries.values() if s.run_dir in deleting]
            summaries = [s for s in summaries if s.run_dir not in deleting]
            at = min((keys.index(str(s.path)) for s in kept), default=len(summaries))
            summaries[at:at] = kept
        self.clear()
        self.summaries = {str(s.path): s for s in summaries}
        self.training = training
        for key, summary in self.summaries.items():
            self.add_row(*self.cells(summary), key=key)
        self.marked &= self.summaries.keys()
        return not deleting

    def cells(self, summary: CheckpointSummary) -> tuple[Any, ...]:
        """A row: a checkpoint that cannot be read says so, with its error."""
        date = summary.modified.strftime("%Y-%m-%d %H:%M") if summary.modified else ""
        if summary.error:
            # Last, so a long message does not push the other columns aside; the path is the row's already.
            problem = Text(listings.short_reason(summary.error, summary.path, ERROR_WIDTH), style="red")
            return (self.name_cell(summary), self.kind_cell(summary), "", "", date, "", "", "",
                    human_size(summary.size_bytes), problem)
        best = f"{summary.best_val_loss:.4f}" if math.isfinite(summary.best_val_loss) else "-"
        return (
            self.name_cell(summary), self.kind_cell(summary), f"{summary.iter_num:,}", best, date, summary.dataset,
            summary.tokenizer, human_count(summary.n_params), human_size(summary.size_bytes), "",
        )

    def name_cell(self, summary: CheckpointSummary) -> str | Text:
        return Text.assemble(("✓ ", "bold green"), summary.name) if str(summary.path) in self.marked else summary.name

    def kind_cell(self, summary: CheckpointSummary) -> Text:
        if summary.error:
            kind = Text("no checkpoint" if summary.kind == "none" else "corrupt", style="bold red")
        else:
            kind = Text(summary.kind)
        task = self.busy.get(summary.run_dir)
        if task is not None:
            kind.append(f" · {task}…", style="bold red" if task == RunTask.DELETING else "dim")
        elif str(summary.run_dir) in self.training:
            kind.append(" · training", style="bold yellow")
        return kind

    def redraw(self, key: str) -> None:
        """Draw the row's name and kind cells again (its mark or its run's work changed)."""
        row = self.get_row_index(key)
        summary = self.summaries[key]
        self.update_cell_at(Coordinate(row, NAME), self.name_cell(summary), update_width=True)
        self.update_cell_at(Coordinate(row, KIND), self.kind_cell(summary), update_width=True)

    def toggle_mark(self, key: str) -> None:
        self.marked ^= {key}
        self.redraw(key)

    def set_busy(self, run_dir: Path, task: RunTask | None) -> None:
        """Say that `task` is under way on `run_dir` (None: nothing is); its rows show it."""
        if task is None:
            self.busy.pop(run_dir, None)
        else:
            self.busy[run_dir] = task
        for key, summary in self.summaries.items():
            if summary.run_dir == run_dir:
                self.redraw(key)
