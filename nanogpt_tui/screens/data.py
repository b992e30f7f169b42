"""The Data screen: prepare a dataset from Tiny Shakespeare, a file (text, JSON lines, Parquet), a folder or a
Hugging Face dataset, and browse prepared ones.

Its fields are nanogpt_tui.widgets.prepare_form's PrepareForm. `data.prepare.prepare` runs in a thread
worker (the workers' side is nanogpt_tui.screens.data_messages); its progress callback posts messages, and
the handlers here own every widget. Cancelling sets the
worker's cancel event: prepare stops at its next chunk (or kills the BPE trainer) and leaves nothing behind.
A dataset with a learned BPE opens its merges (nanogpt_tui.screens.merges) with m.

The selected dataset shows one training example as the model sees it (widgets/batch_view.py: a window of
the Train screen's block_size and its targets shifted by one); `e` draws another.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Button, DataTable, Input, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from core.common import paths
from core.common.formatting import human_size
from core.dataset.format import DatasetError, DatasetInfo, DatasetStats, delete_dataset
from core.tokens.bpe import KIND as BPE_KIND
from core.tokens.tokenizers import tokenizer_name
from data.prepare import Progress
from nanogpt_tui import listings
from nanogpt_tui.messages import DatasetsListed
from nanogpt_tui.screens import data_messages
from nanogpt_tui.screens.base import AppScreen
from nanogpt_tui.screens.data_messages import DetailsLoaded, ExampleDrawn, PrepareDone, PrepareProgress
from nanogpt_tui.screens.merges import MergesScreen
from nanogpt_tui.widgets.batch_view import BatchView
from nanogpt_tui.widgets.dialogs import ConfirmModal
from nanogpt_tui.widgets.footer import KeyFooter
from nanogpt_tui.widgets.prepare_form import PrepareForm, PrepareRequest
from nanogpt_tui.widgets.screen_tabs import ScreenTabs
from nanogpt_tui.widgets.settings_form import DEFAULT_CONFIG  # the Train screen's first settings
from nanogpt_tui.widgets.tables import current_row_key

STAGES = {"download": "Downloading", "read": "Reading and checking", "learn": "Learning the BPE: reading train",
          "merge": "Learning the BPE", "encode": "Encoding"}


def describe(info: DatasetInfo, stats: DatasetStats) -> Text:
    """The figures of one dataset, for the details panel."""
    kind = tokenizer_name(info.tokenizer)
    learned = info.tokenizer.get("kind") == BPE_KIND
    lines = [
        ("Source", paths.shown(info.source)),
        ("Tokenizer", f"{kind}, vocabulary {info.vocab_size:,} ({info.dtype})"
                      + (f", learned from train, split like {str(info.tokenizer.get('pattern')).upper()}: "
                         "m shows its merges" if learned else "")),
        ("Characters", f"{info.chars:,}" if info.chars is not None else "unknown (nanoGPT folder)"),
        ("Tokens", f"{info.train_tokens:,} train + {info.val_tokens:,} val = {info.tokens:,}"),
        ("Chars/token", f"{stats.chars_per_token:.2f}" if stats.chars_per_token else "—"),
        ("Bytes/token", f"{info.bytes_per_token:.2f}" if info.bytes_per_token else "— (not recorded)"),
        ("Validation", f"{info.val_fraction:.0%}" if info.val_fraction is not None else "—"),
        ("Untrained", f"{len(stats.unused_ids):,} of {info.vocab_size:,} ids never occur in train"),
        ("Created", info.created),
        ("Folder", paths.shown(info.path)),
    ]
    text = Text()
    for label, value in lines:
        text.append(f"{label:<12}", "bold")
        text.append(f"{value}\n")
    return text


def per_token(value: float | None) -> str:
    """Chars or bytes per token as the table shows it ("—" for a dataset that does not record it)."""
    return f"{value:.2f}" if value else "—"


def progress_text(progress: Progress) -> str:
    """"Encoding: 12.0 MiB of 100.0 MiB, 8.1 MiB/s, 0:11 left" (in merges for a learned BPE's merges)."""
    stage = STAGES.get(progress.stage, progress.stage)
    if progress.unit != "bytes":
        return f"{stage}: {progress.done:,} of {progress.total:,} {progress.unit}"
    size = f"{human_size(progress.done)} of {human_size(progress.total)}" if progress.total else f"{human_size(progress.done)} so far"
    rate = f", {human_size(round(progress.rate))}/s" if progress.rate else ""
    eta = progress.eta
    left = f", {int(eta) // 60}:{int(eta) % 60:02d} left" if eta is not None else ""
    return f"{stage}: {size}{rate}{left}"


class DataScreen(AppScreen):
    """Prepare datasets and see what is prepared."""

    CSS_PATH = "data.tcss"
    BINDINGS = [
        Binding("ctrl+r", "prepare", "Prepare", id="data.prepare"),
        Binding("escape", "cancel", "Cancel prepare", id="data.cancel"),
        Binding("d,delete", "delete", "Delete dataset", id="data.delete"),
        Binding("m", "merges", "Merges", id="data.merges"),
        Binding("e", "example", "Another example", id="data.example"),
    ]
    # The preparation running, if any: its worker (cancel cancels it) and what the footer offers.
    preparing: reactive[Worker[None] | None] = reactive(None, bindings=True, init=False)

    def __init__(self) -> None:
        super().__init__()
        # Table row key -> the dataset, or (folder, error) for a broken one.
        self.datasets: dict[str, DatasetInfo | tuple[Path, str]] = {}
        self._signature: tuple[object, ...] | None = None  # of the listing the table shows
        self._select: str | None = None  # the dataset to move to once the next listing is in

    def compose(self) -> ComposeResult:
        yield ScreenTabs()
        with Horizontal(id="data-main"):
            with Vertical(id="data-form"):
                with VerticalScroll(id="data-fields"):
                    yield PrepareForm()
                # Below the fields, not among them: Prepare and how it went stay in view in a short terminal.
                with Vertical(id="data-actions"):
                    yield Button("Prepare (ctrl+r)", id="data-prepare", variant="primary")
                    # Shown only while preparing and after: an idle indeterminate bar animates (and costs CPU) forever.
                    bar = ProgressBar(id="data-progress", show_eta=False)
                    bar.display = False
                    yield bar
                    yield Static("", id="data-status")
            with Vertical(id="data-list"):
                yield Static(id="data-home")
                yield DataTable(id="data-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="data-details")
                with VerticalScroll(id="data-preview-box"):
                    yield BatchView(id="data-example")
                    yield Static("", id="data-preview")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#data-preview-box").border_title = "A training example (e: another), then the start of train"
        self.query_one("#data-home", Static).update(
            Text.assemble(("Data folder: ", "bold"), paths.shown(paths.home()), ("  (datasets in ", "dim"),
                          (paths.shown(paths.datasets_dir()), "dim"), (")", "dim"))
        )  # fmt: skip
        self.refresh_datasets()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.refresh_datasets()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Cancel is in the footer only while a preparation runs: the footer has room for what can be done.
        if action == "cancel":
            return self.preparing is not None
        return True

    def _selected_learned(self) -> DatasetInfo | None:
        """The selected dataset if its tokenizer is a learned BPE (the one with merges to show)."""
        item = self.datasets.get(self._selected_name() or "")
        return item if isinstance(item, DatasetInfo) and item.tokenizer.get("kind") == BPE_KIND else None

    def action_merges(self) -> None:
        info = self._selected_learned()
        if info is None:
            self.notify("Select a dataset whose tokenizer is a learned BPE (prepare one with the bpe tokenizer)",
                        title="No merges", severity="warning")
            return
        self.app.push_screen(MergesScreen(info))

    # Preparing

    def action_prepare(self) -> None:
        if self.preparing is not None:
            self.notify("A dataset is being prepared already; escape cancels it", severity="warning")
            return
        try:
            request = self.query_one(PrepareForm).read_form()
        except ValueError as error:
            self._status(str(error), error=True)
            self.notify(str(error), title="Cannot prepare", severity="error")
            return
        name = request.name or self.query_one(PrepareForm).default_name()
        existing = self.datasets.get(name)
        if existing is None:
            self._start_prepare(request)
            return
        what = (f"{tokenizer_name(existing.tokenizer)}, {existing.train_tokens:,} train + {existing.val_tokens:,} val tokens"
                if isinstance(existing, DatasetInfo) else "broken")
        question = (
            f"A dataset called {name!r} exists already ({what}).\n"
            f"Replace it? Its files are replaced once the new ones are written; runs trained on it keep "
            f"their checkpoints (resumed, they train on the new data). No keeps it: choose another name."
        )

        def replace(yes: bool | None) -> None:
            if yes:
                self._start_prepare(dataclasses.replace(request, overwrite=True))
            else:
                self.query_one("#data-name", Input).focus()

        self.app.push_screen(ConfirmModal(question), replace)

    def _start_prepare(self, request: PrepareRequest) -> None:
        bar = self.query_one("#data-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#data-prepare", Button).disabled = True
        self._status("Starting…")
        self.preparing = self.run_prepare(request)

    @on(Button.Pressed, "#data-prepare")
    def _prepare_pressed(self) -> None:
        self.action_prepare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="prepare")
    def run_prepare(self, request: PrepareRequest) -> None:
        worker = get_current_worker()
        self.post_message(data_messages.run_prepare(request, self.post_message, worker.cancelled_event))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A failure prepare() did not foresee still reaches the user instead of ending the app.
        if event.state == WorkerState.ERROR and event.worker is self.preparing:
            self.post_message(PrepareDone(error=f"unexpected error: {event.worker.error!r}"))

    def on_prepare_progress(self, message: PrepareProgress) -> None:
        progress = message.progress
        if self.preparing is None:
            return
        self.query_one("#data-progress", ProgressBar).update(total=progress.total or None, progress=progress.done)
        self._status(progress_text(progress))

    def on_prepare_done(self, message: PrepareDone) -> None:
        self.preparing = None
        self.query_one("#data-prepare", Button).disabled = False
        bar = self.query_one("#data-progress", ProgressBar)
        if message.info is not None:
            info = message.info
            bar.update(total=1, progress=1)
            summary = f"Prepared {info.name}: {info.train_tokens:,} train + {info.val_tokens:,} val tokens"
            self._status(summary)
            self.notify(summary, title="Dataset ready")
            self.refresh_datasets(select=info.name)
        elif message.cancelled:
            bar.display = False
            self._status("Cancelled; nothing was written")
            self.notify("Preparation cancelled; nothing was written", severity="warning")
        else:
            bar.display = False
            self._status(message.error or "failed", error=True)
            self.notify(message.error or "failed", title="Preparation failed", severity="error")

    def action_cancel(self) -> None:
        if self.preparing is None:
            return
        self._status("Cancelling…")
        self.preparing.cancel()

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#data-status", Static)
        status.update(text)
        status.set_class(error, "error")
        if error:  # the bar of an earlier preparation (its 100%) is not this one's
            self.query_one("#data-progress", ProgressBar).display = False

    # The list of datasets

    def refresh_datasets(self, select: str | None = None) -> None:
        """List the datasets in a worker, keeping (or moving to) the selected one.

        The listing is cached by the files' stats (`nanogpt_tui.listings`): a revisit with nothing
        changed reads no file and leaves the table as it is.
        """
        if select is not None:
            self._select = select
        self.list_datasets_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-list")
    def list_datasets_worker(self) -> None:
        signature, items = listings.datasets()
        self.post_message(DatasetsListed(signature, items))

    def on_datasets_listed(self, message: DatasetsListed) -> None:
        select, self._select = self._select, None
        if message.signature == self._signature and select is None:
            return  # nothing changed on disk
        self._signature = message.signature
        current = select or self._selected_name()
        self.datasets = {item.name if isinstance(item, DatasetInfo) else item[0].name: item for item in message.items}
        self._fill_table()
        if not self.datasets:
            self._show_details(Text("No datasets yet: choose a source and press ctrl+r to prepare one."), "")
            return
        if current in self.datasets:
            self.query_one("#data-table", DataTable).move_cursor(row=list(self.datasets).index(current))
        self._load_details(self._selected_name())

    def _fill_table(self) -> None:
        """One row per dataset, with the columns that fit the panel whole (a figure is shown whole or not
        at all; every figure is in the details below). A broken dataset's problem comes right after its
        name, cut to the room there is (the whole reason is in the details): never out of view. The
        Problem column is there only while a dataset is broken; chars and bytes per token come last."""
        table = self.query_one("#data-table", DataTable)
        broken = any(isinstance(item, tuple) for item in self.datasets.values())
        width = table.size.width or 10_000  # not laid out yet: all (a Resize follows)
        pad = 2 * table.cell_padding
        names = ["Name", *(["Problem"] if broken else []), "Tokenizer", "Vocab", "Train", "Val", "Chars/tok", "Bytes/tok"]
        columns: dict[str, list[str | Text]] = {name: [] for name in names}
        figures = [(tokenizer_name(item.tokenizer), f"{item.vocab_size:,}", f"{item.train_tokens:,}", f"{item.val_tokens:,}")
                   for item in self.datasets.values() if isinstance(item, DatasetInfo)]
        figures_width = sum(max([len(label), *(len(row[i]) for row in figures)]) + pad
                            for i, label in enumerate(("Tokenizer", "Vocab", "Train", "Val")))
        name_width = max((len(name) for name in self.datasets), default=4) + pad
        # The problem shares the row with every figure when that leaves it room enough; else it takes the
        # row and the figures go (they are in the details).
        room = width - name_width - figures_width - pad - 1
        room = room if room >= 24 else max(16, width - name_width - pad - 1)
        for name, item in self.datasets.items():
            if isinstance(item, DatasetInfo):
                cells: list[str | Text] = [name, *([""] if broken else []), tokenizer_name(item.tokenizer),
                                           f"{item.vocab_size:,}", f"{item.train_tokens:,}", f"{item.val_tokens:,}",
                                           per_token(item.chars_per_token), per_token(item.bytes_per_token)]
            else:
                folder, error = item
                cells = [name, Text(listings.short_reason(error, folder, width=room), "red"),
                         Text("broken", "bold red"), "—", "—", "—", "—", "—"]
            for column, cell in zip(names, cells):
                columns[column].append(cell)
        shown, used = [], 0
        for column, cells in columns.items():
            used += max([len(column), *(len(str(cell)) for cell in cells)]) + pad
            if shown and used > width:
                break  # this column and those after it would be cut: leave them out
            shown.append(column)
        table.clear(columns=True)
        table.add_columns(*shown)
        for index, name in enumerate(self.datasets):
            table.add_row(*(columns[column][index] for column in shown), key=name)

    def on_resize(self) -> None:
        # The columns that fit, and a problem's cut, follow the panel's width.
        if self.datasets:
            current = self._selected_name()
            self._fill_table()
            if current in self.datasets:
                self.query_one("#data-table", DataTable).move_cursor(row=list(self.datasets).index(current))

    def _selected_name(self) -> str | None:
        return current_row_key(self.query_one("#data-table", DataTable))

    @on(DataTable.RowHighlighted, "#data-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._load_details(event.row_key.value)

    def _load_details(self, name: str | None) -> None:
        item = self.datasets.get(name) if name else None
        if item is None:
            return
        if isinstance(item, tuple):
            folder, error = item
            self._show_details(Text.assemble((f"{folder.name} is broken: ", "bold red"), error), "")
            return
        self._show_details(Text(f"Loading {item.name}…"), "")
        self.read_details(item)

    @work(thread=True, exclusive=True, exit_on_error=False, group="details")
    def read_details(self, info: DatasetInfo) -> None:
        self.post_message(data_messages.read_details(info))

    def on_details_loaded(self, message: DetailsLoaded) -> None:
        if message.name != self._selected_name():
            return  # the user moved on
        info = self.datasets.get(message.name)
        if message.error or message.stats is None or not isinstance(info, DatasetInfo):
            self._show_details(Text.assemble((f"{message.name}: ", "bold red"), message.error or "unreadable"), "")
            return
        self._show_details(describe(info, message.stats), message.preview)
        self.action_example()

    # A training example

    def action_example(self) -> None:
        """Draw another training example of the selected dataset, with the Train screen's block_size."""
        info = self.datasets.get(self._selected_name() or "")
        if not isinstance(info, DatasetInfo):
            return
        config = self.app.train_config
        block = config.block_size if config is not None else DEFAULT_CONFIG.block_size
        self.draw_example(info, block)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-example")
    def draw_example(self, info: DatasetInfo, block_size: int) -> None:
        self.post_message(data_messages.draw_example(info, block_size))

    def on_example_drawn(self, message: ExampleDrawn) -> None:
        if message.name != self._selected_name():
            return
        view = self.query_one("#data-example", BatchView)
        if message.example is None:
            view.clear_example(f"No training example: {message.error}")
        else:
            view.show(message.example)

    def _show_details(self, details: Text, preview: str) -> None:
        self.query_one("#data-details", Static).update(details)
        self.query_one("#data-preview", Static).update(Text(preview))
        if not preview:
            self.query_one("#data-example", BatchView).clear_example()

    def action_delete(self) -> None:
        name = self._selected_name()
        if name is None:
            self.notify("No dataset selected", severity="warning")
            return

        def delete(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_dataset(name)
            except (DatasetError, OSError) as error:
                self.notify(str(error), title="Cannot delete", severity="error")
                return
            self.notify(f"Deleted dataset {name}")
            self.refresh_datasets()

        self.app.push_screen(ConfirmModal(f"Delete dataset {name!r} and its files?"), delete)
