"""The Checkpoints screen: every run's checkpoints (and opened nanoGPT out_dirs) in one table.

The selected checkpoint shows its settings, its loss curve and a sample (widgets/checkpoint_details.py).
Keys chat with it, resume its training, watch its run live (screens/watch.py): each posts a message up to
the app (nanogpt_tui.messages), which shows the screen that does it. Others rename or delete its run folder,
export it (nanoGPT or Hugging Face), open a nanoGPT checkpoint, or refresh the table; space marks runs and
C compares the marked ones (nanogpt_tui.screens.compare).
Reading checkpoints imports torch, so the listing, the details and the sample come from thread workers;
a run folder is sized (for the delete dialog) and deleted in workers too: it may hold gigabytes on a slow
disk. Its rows say so meanwhile, and the keys leave that run alone until it is done.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable
from textual.worker import get_current_worker

from core.common import disk, folder_lock, paths
from core.interop.gpt2_files import FORMATS, export_caveat, export_refusals
from core.runs.watch import WatchError, resolve_run
from nanogpt_tui import listings
from nanogpt_tui.messages import OpenChat, ResumeTraining, WatchRun, WorkFailed
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.screens.checkpoints_messages import ExportDone, Listed, Opened, RunDeleted, RunSized
from nanogpt_tui.screens.compare import CompareScreen
from nanogpt_tui.widgets.checkpoint_details import CheckpointDetails
from nanogpt_tui.widgets.checkpoint_table import CheckpointTable, RunTask
from nanogpt_tui.widgets.dialogs import ConfirmModal, TextModal, TextPrompt
from nanogpt_tui.widgets.export_dialog import ExportChoice, ExportModal
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.screen_tabs import ScreenTabs

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary

DEBOUNCE_S = 0.15  # the cursor rests this long on a row before its details are read


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
        self.opened: list[Path] = []  # checkpoint files opened from outside the data folder
        self._select_after_refresh: str | None = None
        self._details_timer: Timer | None = None
        self._signature: tuple[Any, ...] | None = None  # of the listing the table shows, and its runs training

    def compose(self) -> ComposeResult:
        yield ScreenTabs()
        with Horizontal(id="ckpt-body"):
            yield CheckpointTable(id="ckpt-table")
            yield CheckpointDetails(id="ckpt-detail")
        yield KeyFooter()

    @property
    def table(self) -> CheckpointTable:
        return self.query_one(CheckpointTable)

    @property
    def summaries(self) -> dict[str, CheckpointSummary]:
        """The checkpoints listed, by row key (the file's path)."""
        return self.table.summaries

    # -- listing ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        # While shown, look again every few seconds: a run training here or elsewhere saves and finishes.
        self._follow = self.set_interval(listings.FOLLOW_S, self.action_refresh, pause=True)

    def on_screen_resume(self) -> None:
        # Runs come and go while other screens train or delete: list each time we are shown. The
        # listing is cached by the files' stats, so with nothing changed no checkpoint is read again.
        self.action_refresh()
        self._follow.resume()

    def on_screen_suspend(self) -> None:
        self._follow.pause()

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
        training = frozenset(str(folder) for folder in {s.run_dir for s in summaries} if folder_lock.in_use(folder))
        if not get_current_worker().is_cancelled:
            self.post_message(Listed(summaries, signature, training))

    def on_listed(self, message: Listed) -> None:
        # A run that stops training changes no checkpoint, only its lock: that counts as a change too.
        signature = None if message.signature is None else (message.signature, message.training)
        if signature is not None and signature == self._signature and self._select_after_refresh is None:
            return  # nothing changed on disk: the table stays as it is
        self._signature = signature
        table = self.table
        keep = table.current_key
        if not table.show(message.summaries, message.training):
            self._signature = None  # it kept a run being deleted: the listing after that is drawn, changed or not
        # A renamed or opened checkpoint is selected once a listing has it (an older listing may come first).
        if self._select_after_refresh in self.summaries:
            keep, self._select_after_refresh = self._select_after_refresh, None
        if not self.summaries:
            self.query_one(CheckpointDetails).show_none()
            return
        if keep in self.summaries:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_details(table.current_key)

    def selected(self) -> CheckpointSummary | None:
        """The checkpoint under the cursor, unless none is or its run folder is being sized or deleted
        (a notification says so)."""
        summary = self.summaries.get(self.table.current_key or "")
        if summary is None:
            self.notify("No checkpoint selected", severity="warning")
            return None
        task = self.table.busy.get(summary.run_dir)
        if task is not None:
            self.notify(f"Run {summary.name!r} is {task}: wait until that is done", severity="warning")
            return None
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

    def action_mark(self) -> None:
        summary = self.selected_readable()
        if summary is None:
            return
        self.table.toggle_mark(str(summary.path))
        self.table.action_cursor_down()  # mark the next one with the next space

    def action_compare(self) -> None:
        runs: dict[Path, CheckpointSummary] = {}  # each run once, though its ckpt.pt and best.pt be marked
        for key, summary in self.summaries.items():
            if key in self.table.marked:
                runs.setdefault(summary.run_dir, summary)
        if len(runs) < 2:
            marked = f"{len(runs)} run{'' if len(runs) == 1 else 's'} marked"
            self.notify(f"Mark two or more runs with space to compare them ({marked})", severity="warning")
            return
        self.app.push_screen(CompareScreen(list(runs.values())))

    def action_chat(self) -> None:
        summary = self.selected_readable()
        if summary is not None:
            self.post_message(OpenChat(summary.path))

    def action_resume(self) -> None:
        summary = self.selected_readable()
        if summary is not None:
            self.post_message(ResumeTraining(summary.path))

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
        self.post_message(WatchRun(run_dir))

    @on(DataTable.RowSelected, "#ckpt-table")
    def on_row_selected(self) -> None:
        self.action_chat()

    def in_data_folder(self, summary: CheckpointSummary) -> bool:
        """Whether the checkpoint's run folder is one of ours (renaming and deleting touch only those)."""
        return summary.run_dir.resolve().parent == paths.runs_dir().resolve()

    def in_training(self, summary: CheckpointSummary) -> bool:
        """Whether a trainer writes to this run now, the Train screen's or another process's (it cannot be
        renamed or deleted then); says so."""
        trainer = self.app.trainer
        if trainer is not None and trainer.run_dir is not None and trainer.run_dir.resolve() == summary.run_dir.resolve():
            self.notify(f"Run {summary.name!r} is training now: stop it first (f3)", severity="warning")
            return True
        pid = folder_lock.holder(summary.run_dir)
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
        self.table.set_busy(summary.run_dir, RunTask.SIZING)
        self.size_run(summary)

    @work(thread=True, exit_on_error=False, group="checkpoints-size")
    def size_run(self, summary: CheckpointSummary) -> None:
        self.post_message(RunSized(summary, disk.folder_size(summary.run_dir)))  # never raises

    def on_run_sized(self, message: RunSized) -> None:
        summary = message.summary
        self.table.set_busy(summary.run_dir, None)  # sized: the dialog (modal) asks now
        if not self.is_current:  # the user went to another screen meanwhile: no dialog there (d asks again)
            return
        question = f"Delete run {summary.name!r}?\nIts folder {summary.run_dir} ({message.size}) will be removed."

        def delete(yes: bool | None) -> None:
            if not yes or self.in_training(summary):  # a trainer may have taken the run while the dialog was open
                return
            self.table.set_busy(summary.run_dir, RunTask.DELETING)
            self.delete_run(summary.name, summary.run_dir)

        self.app.push_screen(ConfirmModal(question), delete)

    @work(thread=True, exit_on_error=False, group="checkpoints-delete")
    def delete_run(self, name: str, run_dir: Path) -> None:
        try:
            shutil.rmtree(run_dir)
        except OSError as error:  # what could not be removed stays; the listing shows what is left
            self.post_message(RunDeleted(name, run_dir, str(error)))
        else:
            self.post_message(RunDeleted(name, run_dir))

    def on_run_deleted(self, message: RunDeleted) -> None:
        self.table.set_busy(message.run_dir, None)
        if message.error is None:
            self.notify(f"Deleted run {message.name}")
        else:
            self.notify(message.error, title=f"Deleting run {message.name} failed", severity="error")
        self.action_refresh()

    def action_open(self) -> None:
        def open_path(value: str | None) -> None:
            if value:
                self.open_checkpoint(value)

        prompt = TextPrompt("Open a nanoGPT checkpoint: its out_dir (holding ckpt.pt) or a .pt file", paths=True)
        self.app.push_screen(TextModal(prompt), open_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoints-open")
    def open_checkpoint(self, spec: str) -> None:
        from core.runs.checkpoint import CheckpointError, resolve_checkpoint

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

        refusals = export_refusals(summary.recipe_knobs)
        if len(refusals) == len(FORMATS):  # no format takes it: say why, rather than a dialog that must fail
            why = "; ".join(sorted(set(refusals.values())))
            self.notify(f"{summary.name} cannot be exported: {why}", title="Export", severity="warning")
            return
        title = f"Export {summary.name} ({summary.path.name}) as:"
        caveats = {fmt: export_caveat(summary.tokenizer_kind, summary.tokenizer, fmt) for fmt in FORMATS}
        self.app.push_screen(ExportModal(title, paths.home() / "exports" / summary.name, refusals, caveats), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoints-export")
    def export(self, path: Path, choice: ExportChoice) -> None:
        from core.interop.gpt2_weights import ExportExists, export_checkpoint

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
