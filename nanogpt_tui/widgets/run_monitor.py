"""RunMonitor: a training run as it happens: status line, loss plot, figures (device memory too), samples and log.

Fed the events of core.runs.events (`show_steps`, `show_event`) by the Train screen and the Watch screen,
which own the run's state and the status text; this widget only draws. Updating it never re-lays out the
screen: the figures have a fixed height (set again only when the widget is resized), the logs keep bounded
buffers.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

from rich.markup import escape
from rich.table import Table
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import RichLog, Static

from core.common import paths
from core.common.formatting import human_size
from core.runs.events import (
    CheckpointSaved,
    DeviceReading,
    Eval,
    Event,
    Failed,
    Finished,
    Paused,
    Sample,
    Started,
    Step,
    Unpaused,
)
from nanogpt_tui.widgets.loss_plot import LossPlot

FIGURES = ("iteration", "tokens/sec", "iter ms", "lr", "grad norm", "train loss", "val loss", "best val", "elapsed", "ETA",
           "device", "memory", "reserved", "peak memory", "GPU util")
# What "memory" is on each kind of device, said once in the log when the first reading comes.
MEMORY_MEANING = {
    "cuda": "memory: torch's allocated GPU memory; reserved: what its caching allocator holds; peak: the most "
            "allocated since the start; GPU util: NVML's (needs nvidia-ml-py)",
    "mps": "memory: torch's allocated memory on MPS; reserved: the Metal driver's; peak: the process's resident peak",
    "cpu": "memory: the training process's resident memory (RSS); peak: its most since it started",
}
VALUE_WIDTH = 13  # the widest figure value: "cuda bfloat16", "12000 / 20000"
# The plot is the costliest thing to draw (pure Python, ~14 ms): while steps stream in it is redrawn at
# most this often; events, keys and the end of a run redraw it at once.
PLOT_INTERVAL = 1.0
LOG_LINES = 500
SAMPLE_LINES = 300


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


class RunMonitor(Vertical):
    """The live view of one run: what it is doing, its curve, its figures, what it writes."""

    DEFAULT_CSS = """
    RunMonitor #status { height: auto; padding: 0 1; text-style: bold; }
    RunMonitor #status.state-paused, RunMonitor #status.state-stalled { color: $warning; }
    RunMonitor #status.state-failed, RunMonitor #status.state-interrupted { color: $error; }
    RunMonitor #status.state-finished { color: $success; }
    RunMonitor #loss-plot { height: 3fr; min-height: 8; }
    /* rows for the columns that fit (on_resize); updating the figures never re-lays out */
    RunMonitor #figures { height: 4; padding: 0 1; background: $boost; }
    RunMonitor #train-bottom { height: 2fr; min-height: 7; max-height: 14; }
    RunMonitor #samples, RunMonitor #log { width: 1fr; border: round $primary-background; }
    """

    def __init__(self, *, status: str = "Looking for devices (loading torch)…", plot_title: str = "loss",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial_status = status
        self.status_text = status  # what the status line says
        self.plot_title = plot_title
        self.max_iters = 0  # 0: not known yet (a watched run before its first session record)
        # Who trains the run, for the "started" line: None for this app's own trainer, else "pid … on host".
        self.trainer: str | None = None
        # False while the Watch screen catches up with a run's history: the plot is drawn once, at replot().
        self.live = True
        self.figures = dict.fromkeys(FIGURES, "–")
        self.columns = 3  # figure columns: as many as the width holds (on_resize)
        self.plot_drawn_at = 0.0  # when streaming steps last redrew the plot (time.monotonic)
        self.memory_explained = False  # MEMORY_MEANING said in the log for this run

    def compose(self) -> ComposeResult:
        yield Static(self.initial_status, id="status")
        yield LossPlot(title=self.plot_title, id="loss-plot")
        yield Static("", id="figures")
        with Horizontal(id="train-bottom"):
            yield RichLog(id="samples", max_lines=SAMPLE_LINES, wrap=True, markup=False, min_width=20)
            yield RichLog(id="log", max_lines=LOG_LINES, wrap=True, markup=True, min_width=20)

    def on_mount(self) -> None:
        self.query_one("#samples", RichLog).border_title = "Samples"
        self.query_one("#log", RichLog).border_title = "Log"

    def on_resize(self, event: events.Resize) -> None:
        # A column is a label, a value and the gaps; at 100 terminal columns two fit, not three.
        label = max(map(len, FIGURES))
        columns = max(1, min(4, (event.size.width - 2) // (label + VALUE_WIDTH + 2)))
        if columns != self.columns:
            self.columns = columns
            self.show_figures({})
        rows = math.ceil(len(FIGURES) / self.columns)
        figures = self.query_one("#figures", Static)
        if figures.styles.height is None or figures.styles.height.value != rows:
            figures.styles.height = rows

    @property
    def plot(self) -> LossPlot:
        return self.query_one("#loss-plot", LossPlot)

    def set_status(self, text: str, state: str) -> None:
        self.status_text = text
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_classes(f"state-{state}")

    def write_log(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)

    def clear_log(self) -> None:
        self.query_one("#log", RichLog).clear()

    def begin(self, max_iters: int) -> None:
        """A new start: clear the curve, the samples and the figures."""
        self.plot.clear()
        self.query_one("#samples", RichLog).clear()
        self.max_iters = max_iters
        self.memory_explained = False
        self.show_figures(dict.fromkeys(FIGURES, "–"))

    def show_steps(self, steps: Sequence[Step]) -> None:
        now = time.monotonic()
        redraw = self.live and now - self.plot_drawn_at >= PLOT_INTERVAL
        if redraw:
            self.plot_drawn_at = now
        self.plot.add_steps(((s.iter, s.loss, s.tokens_seen, s.elapsed_s, s.lr) for s in steps), redraw)
        last = steps[-1]
        iter_ms = sum(s.iter_ms for s in steps) / len(steps)
        eta = (self.max_iters - last.iter - 1) * iter_ms / 1000 if self.max_iters else math.inf
        self.show_figures({
            "iteration": f"{last.iter + 1} / {self.max_iters or '?'}",
            "tokens/sec": f"{last.tokens_per_sec:,.0f}",
            "iter ms": f"{iter_ms:.1f}",
            "lr": f"{last.lr:.3g}",
            "grad norm": format_number(last.grad_norm),
            "train loss": format_number(last.loss),
            "elapsed": format_duration(last.elapsed_s),
            "ETA": format_duration(eta),
        })

    def show_event(self, event: Event) -> None:
        """Draw what an event (other than Step) says; the screen words the status."""
        plot = self.plot
        if isinstance(event, (Paused, Finished, Failed)):
            plot.replot()  # show the steps held back by PLOT_INTERVAL
        if isinstance(event, Started):
            self.max_iters = event.max_iters
            plot.show_dataset(event.config.dataset)  # its reference lines: a uniform guess, the count bigram
            self.show_figures({"device": f"{event.device} {event.dtype}", "iteration": f"{event.start_iter} / {event.max_iters}"})
            if event.resumed:  # draw the curve this run continues, and its best so far
                evals = event.history["evals"]
                if event.history["steps"] or evals:  # a watched run's history is already drawn, from its file
                    plot.load_history(event.history)
                self.show_figures({"best val": format_number(event.best_val_loss)})
                if evals:
                    self.show_figures({"val loss": format_number(evals[-1][2])})
            verb = f"resumed at iteration {event.start_iter}" if event.resumed else "started"
            if self.trainer:
                verb += f" by {self.trainer}"
            self.write_log(f"{verb}: {event.n_params / 1e6:.2f}M parameters, run folder {paths.shown(event.run_dir)}")
            if event.plan:  # what a time budget chose, and why
                self.write_log(escape(event.plan))
            incompatible = event.config.nanogpt_incompatible()
            if incompatible:
                self.write_log(f"[dim]uses {', '.join(incompatible)}: nanoGPT's model.py cannot load this run's checkpoints[/]")
        elif isinstance(event, Eval):
            plot.add_eval(event.iter, event.train_loss, event.val_loss, redraw=self.live)
            self.show_figures({"val loss": format_number(event.val_loss), "best val": format_number(event.best_val_loss)})
            self.write_log(f"iter {event.iter}: train {event.train_loss:.4f}, val {event.val_loss:.4f} ({event.seconds:.1f} s)")
        elif isinstance(event, DeviceReading):
            self.show_reading(event)
        elif isinstance(event, Sample):
            self.query_one("#samples", RichLog).write(f"── iteration {event.iter} ──\n{event.text}")
        elif isinstance(event, CheckpointSaved):
            self.write_log(f"iter {event.iter}: saved {event.kind} checkpoint {event.path.name}")
        elif isinstance(event, Paused):
            self.write_log(f"paused at iteration {event.iter}")
        elif isinstance(event, Unpaused):
            self.write_log(f"resumed at iteration {event.iter}")
        elif isinstance(event, Finished):
            self.write_log(f"[green]finished ({event.reason})[/] at iteration {event.iter}")
        elif isinstance(event, Failed):
            self.write_log(f"[red]failed:[/] {event.message}")
            if event.details:
                self.write_log(event.details)

    def show_reading(self, reading: DeviceReading) -> None:
        """The device's memory and utilisation figures (a GPU's counters; the process's RSS on a CPU)."""
        def size(value: int | None) -> str:
            return "–" if value is None else human_size(value)

        gpu = reading.allocated is not None
        self.show_figures({
            "memory": size(reading.allocated if gpu else reading.rss),
            "reserved": size(reading.reserved),
            "peak memory": size(reading.peak),
            "GPU util": "–" if reading.utilization is None else f"{reading.utilization:.0f}%",
        })
        if not self.memory_explained:
            self.memory_explained = True
            kind = reading.device.split(":")[0]
            self.write_log(f"[dim]{MEMORY_MEANING.get(kind, MEMORY_MEANING['cpu'])}[/]")

    def show_figures(self, changed: dict[str, str]) -> None:
        """Update some figures; the others keep their last value."""
        self.figures.update(changed)
        grid = Table.grid(padding=(0, 1))
        for _ in range(self.columns):
            grid.add_column(style="bold", justify="right", no_wrap=True)
            grid.add_column(min_width=VALUE_WIDTH, no_wrap=True)
        cells = [cell for name, value in self.figures.items() for cell in (name, value)]
        for row in range(0, len(cells), 2 * self.columns):
            grid.add_row(*cells[row : row + 2 * self.columns])
        self.query_one("#figures", Static).update(grid, layout=False)  # fixed height: no relayout
