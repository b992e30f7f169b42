"""The Checkpoints screen: every run's checkpoints (and opened nanoGPT out_dirs) in one table.

The selected checkpoint shows its settings, its loss curve and a sample (widgets/checkpoint_details.py).
Keys chat with it, resume its training, watch its run live (screens/watch.py), rename or delete its run
folder, export it (nanoGPT or Hugging Face), open a nanoGPT checkpoint, or refresh the table; space marks
runs and C compares the marked ones (nanogpt_tui.screens.compare).
Reading checkpoints imports torch, so the listing, the details and the sample come from thread workers.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Header
from textual.worker import get_current_worker

from core import paths, run_lock
from core.formatting import human_count, human_size
from core.run_watch import WatchError, resolve_run
from nanogpt_tui import listings
from nanogpt_tui.messages import WorkFailed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.screens.compare import CompareScreen
from nanogpt_tui.widgets.checkpoint_details import CheckpointDetails
from nanogpt_tui.widgets.dialogs import ConfirmModal, TextModal, TextPrompt
from nanogpt_tui.widgets.export_dialog import ExportChoice, ExportModal
from nanogpt_tui.widgets.footer import Footer
from nanogpt_tui.widgets.tables import current_row_key

if TYPE_CHECKING:
    from core.checkpoint import CheckpointSummary

# What tells runs apart comes first, so a narrow terminal shows it without scrolling sideways.
COLUMNS = ("name", "kind", "iters", "best val", "date", "dataset", "tokenizer", "params", "size", "problem")
DEBOUNCE_S = 0.15  # the cursor rests this long on a row before its details are read
ERROR_WIDTH = 60  # characters of a corrupt checkpoint's error shown in its row


class Listed(Message):
    """The checkpoints found: every run's plus the opened ones, the listing's signature, and the run
    folders a process trains now (their locks are held)."""

    def __init__(
        self, summaries: list[CheckpointSummary], signature: tuple[Any, ...] | None = None,
        training: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.summaries = summaries
        self.signature = None if signature is None else (*signature, tuple(sorted(training)))
        self.training = training


class Opened(Message):
    """A path the user opened resolved to this checkpoint file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

class ExportDone(Message):
    """An export wrote these files; `note` tells about the vocabulary."""

    def __init__(self, files: list[Path], note: str) -> None:
        super().__init__()
        self.files = files
        self.note = note


class CheckpointsScreen(AppScreen):
    """A table of checkpoints; the selected one's settings, loss curve and sample beside it."""

    CSS_PATH = "checkpoints.tcss"
    BINDINGS = [
        Binding("c", "chat", "Chat", id="checkpoints.chat"),
        Binding("t", "resume", "Resume", id="checkpoints.resume"),
        Binding("w", "watch", "Watch", id="checkpoints.watch"),
        Binding("n", "rename", "Rename", id="checkpoints.rename", show=False),
        Binding("d,delete", "delete", "Delete", id="checkpoints.delete"),
        Binding("x", "export", "Export", id="checkpoints.export"),
        Binding("o", "open", "Open nanoGPT", id="checkpoints.open", show=False),
        Binding("r", "refresh", "Refresh", id="checkpoints.refresh", show=False),
        Binding("space", "mark", "Mark", id="checkpoints.mark"),
        Binding("C", "compare", "Compare", id="checkpoints.compare"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: dict[str, CheckpointSummary] = {}  # row key (the file's path) -> summary
        self.opened: list[Path] = []  # checkpoint files opened from outside the data folder
        self._select_after_refresh: str | None = None
        self._details_timer: Timer | None = None
        self._signature: tuple[Any, ...] | None = None  # of the listing the table shows
        self.marked: set[str] = set()  # row keys of the checkpoints marked for comparing

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="ckpt-body"):
            table: DataTable[Any] = DataTable(id="ckpt-table", cursor_type="row", zebra_stripes=True)
            table.add_columns(*COLUMNS)
            yield table
            yield CheckpointDetails(id="ckpt-detail")
        yield Footer()

    # -- listing ---------------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        # Runs come and go while other screens train or delete: list each time we are shown. The
        # listing is cached by the files' stats, so with nothing changed no checkpoint is read again.
        self.action_refresh()

    def action_refresh(self) -> None:
        self.list_checkpoints(list(self.opened))

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoints-list")
    def list_checkpoints(self, opened: list[Path]) -> None:
        try:
            # summarize() marks a file from nanoGPT itself as "nanogpt"
            signature, summaries = listings.checkpoints(opened)
        except Exception as error:  # an unreadable runs folder, say; the screen reports it
            self.post_message(WorkFailed("Listing checkpoints failed", str(error)))
            return
        # Not cached with the listing: a lock comes and goes without a checkpoint changing.
        training = frozenset(str(folder) for folder in {s.run_dir for s in summaries} if run_lock.in_use(folder))
        if not get_current_worker().is_cancelled:
            self.post_message(Listed(summaries, signature, training))

    def on_listed(self, message: Listed) -> None:
        if (
            message.signature is not None
            and message.signature == self._signature
            and self._select_after_refresh is None
        ):
            return  # nothing changed on disk: the table stays as it is
        self._signature = message.signature
        table = self.query_one("#ckpt-table", DataTable)
        keep = self.current_key()
        table.clear()
        self.summaries = {str(s.path): s for s in message.summaries}
        # A renamed or opened checkpoint is selected once a listing has it (an older listing may come first).
        if self._select_after_refresh in self.summaries:
            keep, self._select_after_refresh = self._select_after_refresh, None
        for key, summary in self.summaries.items():
            table.add_row(*self.row(summary, str(summary.run_dir) in message.training), key=key)
        self.marked &= self.summaries.keys()  # a deleted or renamed run is no longer marked
        for key in self.marked:
            self.show_mark(key)
        if not self.summaries:
            self.query_one(CheckpointDetails).show_none()
            return
        if keep in self.summaries:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_details(self.current_key())

    @staticmethod
    def row(summary: CheckpointSummary, training: bool = False) -> tuple[Any, ...]:
        """A table row; a checkpoint that cannot be read says so, with its error; a run that a process
        trains now says so in its kind."""
        date = summary.modified.strftime("%Y-%m-%d %H:%M") if summary.modified else ""
        if summary.error:
            # Last, so a long message does not push the other columns aside; the path is the row's already.
            reason = summary.error.splitlines()[0].replace(str(summary.path), "").strip()
            problem = Text(reason if len(reason) <= ERROR_WIDTH else reason[: ERROR_WIDTH - 1] + "…", style="red")
            corrupt = Text("no checkpoint" if summary.kind == "none" else "corrupt", style="bold red")
            return (summary.name, corrupt, "", "", date, "", "", "", human_size(summary.size_bytes), problem)
        best = f"{summary.best_val_loss:.4f}" if math.isfinite(summary.best_val_loss) else "-"
        kind = Text.assemble(summary.kind, (" · training", "bold yellow")) if training else summary.kind
        return (
            summary.name, kind, f"{summary.iter_num:,}", best, date, summary.dataset, summary.tokenizer,
            human_count(summary.n_params), human_size(summary.size_bytes), "",
        )

    def current_key(self) -> str | None:
        return current_row_key(self.query_one("#ckpt-table", DataTable))

    def selected(self) -> CheckpointSummary | None:
        """The checkpoint under the cursor (a notification when there is none)."""
        summary = self.summaries.get(self.current_key() or "")
        if summary is None:
            self.notify("No checkpoint selected", severity="warning")
        return summary

    def selected_readable(self) -> CheckpointSummary | None:
        """The selected checkpoint if it can be loaded, else None and a notification why not."""
        summary = self.selected()
        if summary is not None and summary.error:
            self.notify(summary.error, title="This checkpoint cannot be read", severity="error")
            return None
        return summary

    # -- details of the selected checkpoint ----------------------------------------------------------

    @on(DataTable.RowHighlighted, "#ckpt-table")
    def on_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Reading a checkpoint and sampling from it take a while: wait until the cursor rests on a row,
        # so arrowing through the table does not start (and pile up) a load per row passed.
        if self._details_timer is not None:
            self._details_timer.stop()
        key = event.row_key.value
        self._details_timer = self.set_timer(DEBOUNCE_S, lambda: self.show_details(key))

    def show_details(self, key: str | None) -> None:
        summary = self.summaries.get(key or "")
        if summary is not None:
            self.query_one(CheckpointDetails).show(summary)

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(message.error, title=message.what, severity="error")

    # -- actions ---------------------------------------------------------------------------------

    def show_mark(self, key: str) -> None:
        """The row's name cell, with a mark before it when it is marked for comparing."""
        table = self.query_one("#ckpt-table", DataTable)
        name = self.summaries[key].name
        cell = Text.assemble(("✓ ", "bold green"), name) if key in self.marked else name
        table.update_cell_at(Coordinate(table.get_row_index(key), 0), cell, update_width=True)

    def action_mark(self) -> None:
        summary = self.selected_readable()
        if summary is None:
            return
        key = str(summary.path)
        self.marked ^= {key}
        self.show_mark(key)
        self.query_one("#ckpt-table", DataTable).action_cursor_down()  # mark the next one with the next space

    def action_compare(self) -> None:
        runs: dict[Path, CheckpointSummary] = {}  # each run once, though its ckpt.pt and best.pt be marked
        for key, summary in self.summaries.items():
            if key in self.marked:
                runs.setdefault(summary.run_dir, summary)
        if len(runs) < 2:
            marked = f"{len(runs)} run{'' if len(runs) == 1 else 's'} marked"
            self.notify(f"Mark two or more runs with space to compare them ({marked})", severity="warning")
            return
        self.app.push_screen(CompareScreen(list(runs.values())))

    async def action_chat(self) -> None:
        summary = self.selected_readable()
        if summary is not None:
            await self.app.open_chat(summary.path)  # type: ignore[attr-defined]

    async def action_resume(self) -> None:
        summary = self.selected_readable()
        if summary is not None:
            await self.app.resume_training(summary.path)  # type: ignore[attr-defined]

    def action_watch(self) -> None:
        """Follow the run live (trained in another terminal, say) and steer it."""
        summary = self.selected()
        if summary is None:
            return
        try:
            run_dir = resolve_run(str(summary.run_dir))
        except WatchError as error:  # a nanoGPT out_dir, say: nothing records its progress
            self.notify(str(error), title="Cannot watch this run", severity="warning")
            return
        self.app.watch_run(run_dir)  # type: ignore[attr-defined]

    @on(DataTable.RowSelected, "#ckpt-table")
    async def on_row_selected(self) -> None:
        await self.action_chat()

    def in_data_folder(self, summary: CheckpointSummary) -> bool:
        """Whether the checkpoint's run folder is one of ours (renaming and deleting touch only those)."""
        return summary.run_dir.resolve().parent == paths.runs_dir().resolve()

    def in_training(self, summary: CheckpointSummary) -> bool:
        """Whether a trainer writes to this run now, the Train screen's or another process's (it cannot be
        renamed or deleted then); says so."""
        trainer = getattr(self.app, "trainer", None)
        if trainer is not None and trainer.run_dir is not None and trainer.run_dir.resolve() == summary.run_dir.resolve():
            self.notify(f"Run {summary.name!r} is training now: stop it first (f3)", severity="warning")
            return True
        pid = run_lock.holder(summary.run_dir)
        if pid is None:
            return False
        self.notify(f"Run {summary.name!r} is being trained by process {pid}: stop it first (w watches and "
                    "stops it)", severity="warning")
        return True

    def action_rename(self) -> None:
        summary = self.selected()
        if summary is None or self.in_training(summary):
            return
        if not self.in_data_folder(summary):
            self.notify("Only runs in the data folder can be renamed", severity="warning")
            return
        runs = paths.runs_dir()

        def check(name: str) -> str | None:
            try:
                paths.check_name(name, "run name")
            except paths.BadName as error:
                return str(error)
            if (runs / name).exists():
                return f"A run called {name!r} already exists"
            return None

        def rename(name: str | None) -> None:
            if not name or name == summary.name:
                return
            try:
                summary.run_dir.rename(runs / name)
            except OSError as error:
                self.notify(str(error), title="Rename failed", severity="error")
                return
            self._select_after_refresh = str(runs / name / summary.path.name)
            self.notify(f"Renamed {summary.name} to {name}")
            self.action_refresh()

        prompt = TextPrompt(f"New name for run {summary.name!r}:", summary.name, check)
        self.app.push_screen(TextModal(prompt), rename)

    def action_delete(self) -> None:
        summary = self.selected()
        if summary is None or self.in_training(summary):
            return
        if not self.in_data_folder(summary):
            # An opened nanoGPT out_dir is the user's own folder: forget it, leave the files alone.
            self.opened = [p for p in self.opened if p != summary.path]
            self.notify(f"Removed {summary.path} from the list (its files are left alone)")
            self.action_refresh()
            return
        files = [p for p in summary.run_dir.rglob("*") if p.is_file()]
        size = human_size(sum(p.stat().st_size for p in files))
        question = (
            f"Delete run {summary.name!r}?\n"
            f"Its folder {summary.run_dir} ({len(files)} files, {size}) will be removed."
        )

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                shutil.rmtree(summary.run_dir)
            except OSError as error:
                self.notify(str(error), title="Delete failed", severity="error")
            else:
                self.notify(f"Deleted run {summary.name}")
            self.action_refresh()

        self.app.push_screen(ConfirmModal(question), delete)

    def action_open(self) -> None:
        def open_path(value: str | None) -> None:
            if value:
                self.open_checkpoint(value)

        prompt = TextPrompt("Open a nanoGPT checkpoint: its out_dir (holding ckpt.pt) or a .pt file", paths=True)
        self.app.push_screen(TextModal(prompt), open_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoints-open")
    def open_checkpoint(self, spec: str) -> None:
        from core.checkpoint import CheckpointError, resolve_checkpoint

        try:
            path = resolve_checkpoint(str(Path(spec).expanduser()))
        except CheckpointError as error:
            self.post_message(WorkFailed("Cannot open checkpoint", str(error)))
            return
        self.post_message(Opened(path.resolve()))

    def on_opened(self, message: Opened) -> None:
        if message.path not in self.opened:
            self.opened.append(message.path)
        self._select_after_refresh = str(message.path)
        self.action_refresh()

    def action_export(self) -> None:
        summary = self.selected_readable()
        if summary is None:
            return

        def chosen(choice: ExportChoice | None) -> None:
            if choice is not None:
                self.notify(f"Exporting {summary.name} to {choice.folder}…")
                self.export(summary.path, choice)

        title = f"Export {summary.name} ({summary.path.name}) as:"
        self.app.push_screen(ExportModal(title, paths.home() / "exports" / summary.name), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoints-export")
    def export(self, path: Path, choice: ExportChoice) -> None:
        from core.gpt2_weights import ExportExists, export_checkpoint

        try:
            exported = export_checkpoint(path, choice.format, choice.folder, choice.overwrite)
        except ExportExists as error:
            self.post_message(WorkFailed("Export refused", f"{error}: tick 'Overwrite existing files' to replace them"))
        except Exception as error:  # a refused model, an unwritable folder: the user is told why
            self.post_message(WorkFailed("Export failed", str(error)))
        else:
            self.post_message(ExportDone(exported.files, exported.note))

    def on_export_done(self, message: ExportDone) -> None:
        names = ", ".join(path.name for path in message.files)
        self.notify(f"{names} in {message.files[0].parent}\n{message.note}", title="Exported", timeout=10)
