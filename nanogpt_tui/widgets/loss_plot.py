"""LossPlot: loss curves drawn as TensorBoard draws them, for one run or several overlaid.

Train loss is a line, val loss markers (•), whatever the colours. One run (the Train screen live, the
Checkpoints screen from a saved history): the raw train loss as grey dots, its debiased-EMA smoothing as an
orange line, val as green markers, the learning rate on a right-hand axis when asked (the title says so:
left out of the legend, which would otherwise mark every entry with its axis, `L` and `⅃`). Several runs
(`set_runs`, the Compare screen): each run's smoothed train line and val markers in a colour of its own,
both named in the legend ("run-a train", "run-a val"). With focus the plot takes keys (its BINDINGS: the cursor's
in the footer, all in F1 help and the command palette): smoothing, y clipping, the lr curve, and a cursor
that reads the values at a point.

Reference lines (`show_dataset`): a uniform guess's loss, ln(vocab), and the dataset's count-based bigram
(core.dataset.baseline, counted in a thread worker, cached), labelled in the legend; `b` hides or shows them.

Each run is a core.runs.curves.Series, its memory bounded whatever the run's length. Drawing is pure Python
on the UI thread, so it draws at most two points per column, and only when something changed since the
last drawing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import RenderResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from core.runs.curves import (
    DEFAULT_SMOOTHING,
    DecimatingBuffer,
    Point,
    Reference,
    Series,
    downsample,
    finite,
    nearest,
    next_level,
    nice_ticks,
    quantile,
    reference_lines,
    robust_range,
    tick_label,
)
from core.runs.curves import MAX_POINTS as MAX_POINTS  # re-exported: the bench sizes its runs by it

X_MODES = ("steps", "tokens", "time")
X_LABELS = {"steps": "iteration", "tokens": "tokens seen", "time": "seconds of training"}
SMOOTHING = DEFAULT_SMOOTHING
TICK_WIDTH = 16  # columns per x tick label, about
Color = tuple[int, int, int]
# One colour per run (the first is the single run's); each with a dim twin for its raw points.
PALETTE: tuple[Color, ...] = (
    (255, 140, 0), (70, 150, 255), (80, 200, 100), (220, 90, 220), (60, 200, 210), (235, 80, 80), (220, 200, 60),
)
VAL_COLOR: Color = (80, 200, 100)  # a single run's val (its train is PALETTE[0])
RAW_COLOR: Color = (130, 130, 130)  # a single run's raw train loss: grey, so it never reads as the smoothed line
VAL_MARKER = "dot"  # plotext's •: val is markers, train a line
LR_COLOR: Color = (150, 150, 170)
CURSOR_COLOR: Color = (200, 200, 200)
REFERENCE_COLORS: tuple[Color, ...] = ((160, 160, 160), (110, 110, 125))  # uniform guess, count bigram
REFERENCE_MARKER = "╌"  # dashed: a reference, not a run's curve


@dataclass
class ReferencesFound(Message):
    """The reference lines of the dataset a plot was asked to show (`LossPlot.show_dataset`)."""

    dataset: str
    lines: list[Reference]


def dim(color: Color) -> Color:
    """A quieter twin of a run's colour (its lr curve in Compare): halfway to a dark grey."""
    return tuple((c + 70) // 2 for c in color)  # type: ignore[return-value]


class LossPlot(PlotextPlot, can_focus=True):
    """Train loss per step (raw and smoothed) and val loss, for one run or several."""

    DEFAULT_CSS = """
    LossPlot:focus { tint: $accent 6%; }
    """
    BINDINGS = [
        Binding("left", "cursor(-1)", "Cursor", id="plot.cursor_left", key_display="←→"),
        Binding("right", "cursor(1)", "Cursor right", id="plot.cursor_right", show=False),
        Binding("shift+left", "cursor(-10)", "Cursor far left", id="plot.cursor_far_left", show=False),
        Binding("shift+right", "cursor(10)", "Cursor far right", id="plot.cursor_far_right", show=False),
        Binding("escape", "hide_cursor", "Hide cursor", id="plot.hide_cursor"),
        Binding("left_square_bracket", "smoothing(-1)", "Smooth −", id="plot.smoothing_less", key_display="[", show=False),
        Binding("right_square_bracket", "smoothing(1)", "Smooth +", id="plot.smoothing_more", key_display="]", show=False),
        Binding("y", "clip_y", "Clip spike", id="plot.clip_y", show=False),
        Binding("l", "learning_rate", "LR curve", id="plot.learning_rate", show=False),
        Binding("b", "references", "Reference lines", id="plot.references", show=False),
    ]

    log_scale: reactive[bool] = reactive(False)
    x_mode: reactive[str] = reactive("steps")
    smoothing: reactive[float] = reactive(SMOOTHING)
    clip_y: reactive[bool] = reactive(True)  # applied once there are enough points (core.runs.curves)
    show_lr: reactive[bool] = reactive(False)
    cursor: reactive[int | None] = reactive(None, bindings=True)  # the iteration it reads; None: hidden
    show_references: reactive[bool] = reactive(True)

    def __init__(self, *, title: str = "loss", id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.series: list[Series] = [Series("train", PALETTE[0])]
        self._changed = True  # something to draw since the last drawing
        self._clipped = False  # whether the last drawing left points above its y range
        self._y_top = None  # the top of the last drawing's clipped y range (None: not clipped)
        self._lr_drawn = False  # whether it drew a learning rate (a checkpoint's history has none)
        self.references: list[Reference] = []  # of `reference_dataset`
        self.reference_dataset: str | None = None

    # -- feeding -------------------------------------------------------------------------------------

    @property
    def steps(self) -> DecimatingBuffer:
        """The (first) run's steps."""
        return self.series[0].steps

    @property
    def evals(self) -> DecimatingBuffer:
        """The (first) run's evals."""
        return self.series[0].evals

    def add_steps(self, steps: Iterable[Sequence[float]], redraw: bool = True) -> None:
        """Add steps as (iter, loss, tokens, seconds[, lr]) rows, the checkpoint history's layout."""
        if self.series[0].add_steps(steps):
            self._changed = True
        if redraw:
            self.replot()

    def add_eval(self, it: int, train_loss: float, val_loss: float, redraw: bool = True) -> None:
        """Add a validation point at iteration `it` (placed at the latest step's tokens and time)."""
        self.series[0].add_eval(it, train_loss, val_loss)
        self._changed = True
        if redraw:
            self.replot()

    def load_history(self, history: dict[str, Any]) -> None:
        """Replace the plot with one run's saved history (see Series.load)."""
        self.set_runs([("train", history)])

    def set_runs(self, runs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Replace the plot with these runs' histories, each named (in the legend) and in its own colour."""
        self.series = []
        for i, (name, history) in enumerate(runs):
            self.series.append(Series(name, PALETTE[i % len(PALETTE)], self.smoothing))
            self.series[-1].load(history)
        if not self.series:
            self.series = [Series("train", PALETTE[0], self.smoothing)]
        self.cursor = None
        self._changed = True
        self.replot()

    def clear(self, redraw: bool = True) -> None:
        """Forget every point (and every run but the first)."""
        del self.series[1:]
        self.series[0].clear()
        self.cursor = None
        self._changed = True
        if redraw:
            self.replot()

    # -- reference lines -----------------------------------------------------------------------------

    def show_dataset(self, dataset: str | None) -> None:
        """Draw the reference lines of `dataset` (a name or folder; None: none), counted in a worker."""
        if dataset == self.reference_dataset:
            return
        self.reference_dataset, self.references = dataset, []
        self._view_changed()
        if dataset:
            self.find_references(dataset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plot-references")
    def find_references(self, dataset: str) -> None:
        from core.dataset.baseline import baseline
        from core.dataset.format import load_dataset

        try:
            found = baseline(load_dataset(dataset))
        except Exception:  # a dataset deleted or damaged since: no lines, the curves still show
            return
        self.post_message(ReferencesFound(dataset, reference_lines(found.vocab_size, found.bigram)))

    def on_references_found(self, message: ReferencesFound) -> None:
        message.stop()
        if message.dataset == self.reference_dataset:
            self.references = message.lines
            self._view_changed()

    def action_references(self) -> None:
        self.show_references = not self.show_references

    # -- view options --------------------------------------------------------------------------------

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale

    def cycle_x_mode(self) -> None:
        self.x_mode = X_MODES[(X_MODES.index(self.x_mode) + 1) % len(X_MODES)]

    def action_smoothing(self, direction: int) -> None:
        self.smoothing = next_level(self.smoothing, direction)

    def action_clip_y(self) -> None:
        self.clip_y = not self.clip_y

    def action_learning_rate(self) -> None:
        self.show_lr = not self.show_lr

    def _cursor_steps(self) -> list[Point]:
        """The steps the cursor moves along: the longest run's (so it reaches every run's end)."""
        return max((s.steps.points for s in self.series), key=lambda points: points[-1].iter if points else -1)

    def _cursor_point(self) -> Point | None:
        points = self._cursor_steps()
        if self.cursor is None or not points:
            return None
        return points[nearest([p.iter for p in points], self.cursor)]

    def action_cursor(self, delta: int) -> None:
        """Show the cursor at the latest step, or move it by `delta` columns' worth of steps."""
        points = self._cursor_steps()
        if not points:
            return
        if self.cursor is None:
            self.cursor = points[-1].iter
            return
        per_column = max(1, round(len(points) / max(1, self.size.width)))
        i = nearest([p.iter for p in points], self.cursor) + delta * per_column
        self.cursor = points[min(max(i, 0), len(points) - 1)].iter

    def action_hide_cursor(self) -> None:
        self.cursor = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape hides a cursor; with none shown it is the screen's (Compare closes, Chat stops).
        return self.cursor is not None if action == "hide_cursor" else True

    def watch_smoothing(self, weight: float) -> None:
        for series in self.series:
            series.resmooth(weight)
        self._view_changed()

    def _view_changed(self) -> None:
        self._changed = True
        self.replot()

    watch_log_scale = watch_x_mode = watch_clip_y = watch_show_lr = watch_cursor = watch_show_references = _view_changed

    @property
    def caption(self) -> str:
        """The plot's title line: what is drawn and how (it changes with the view options)."""
        scale = "log" if self.log_scale else "linear"
        if self._clipped:
            scale += ", spike clipped"
        elif not self.clip_y:
            scale += ", never clipped"
        lr = (" · lr: right axis" if self._lr_drawn else " · lr: not recorded") if self.show_lr else ""
        return f"{self.title} · smoothing {self.smoothing:g} · x: {self.x_mode} · y: {scale}{lr}"

    def fitted_caption(self, width: int) -> str:
        """The caption, shortened to fit `width` columns (plotext leaves out a title that does not fit)."""
        if len(self.caption) <= width:
            return self.caption
        parts = [self.title, f"sm {self.smoothing:g}", self.x_mode]
        if self.log_scale:
            parts.append("log")
        if self._clipped or not self.clip_y:
            parts.append("clipped" if self._clipped else "full y")
        if self.show_lr:
            parts.append("lr→" if self._lr_drawn else "no lr")
        short = " · ".join(parts)
        return short if len(short) <= width else short[: max(0, width - 1)] + "…"

    def cursor_readout(self) -> Text | None:
        """What the cursor reads: where it is, then each run's train (raw, smoothed) and val loss there."""
        at = self._cursor_point()
        if at is None:
            return None
        text = Text.assemble(
            ("▏", "bold"), f"iter {at.iter:,} · {tick_label(at.tokens)} tokens · {tick_label(at.seconds, time=True)}"
        )
        x, single = self._x(at), len(self.series) == 1
        for series in self.series:
            steps = series.steps.points
            if not steps:
                continue
            color = "rgb({},{},{})".format(*series.color)
            if single:
                step = at
                text.append("  │ ", style="dim")
                text.append(f"train {step.y:.4f}", style=color)
                text.append(f" (smoothed {step.y2:.4f})")
            else:  # each run's smoothed loss, the curve drawn; nothing past a run's end
                step = steps[nearest([self._x(p) for p in steps], x)]
                text.append("  │ ", style="dim")
                text.append(series.name, style=color)
                if x > self._x(steps[-1]) and step is not at:
                    text.append(" –")
                    continue
                text.append(f" {step.y2:.4f}")
            # the latest eval at or before the step: the val loss as it stood then
            evals = [e for e in series.evals.points if e.iter <= step.iter]
            if evals:
                where = "" if evals[-1].iter == step.iter else f" @{evals[-1].iter:,}"
                text.append(f" val {evals[-1].y:.4f}{where}")
            if self.show_lr and math.isfinite(step.lr):
                text.append(f" lr {step.lr:.3g}")
        return text

    # -- drawing -------------------------------------------------------------------------------------

    def _x(self, point: Point) -> float:
        if self.x_mode == "tokens":
            return point.tokens
        if self.x_mode == "time":
            return point.seconds
        return point.iter

    def replot(self) -> None:
        """Redraw on the next refresh, if anything changed since the last drawing."""
        if self._changed:
            self.refresh()

    def render(self) -> RenderResult:
        # The figure is rebuilt at every render: plotext log-scales its data in place while building,
        # so building the same figure twice would scale it twice. A cursor's readout takes the bottom
        # line, the x axis's label.
        self._changed = False
        self._draw(self.size.width)
        text = super().render()  # textual-plotext sizes the figure to the widget and builds it
        readout = self.cursor_readout()
        if readout is None or not isinstance(text, Text):
            return text
        lines = text.split()  # plotext's rows (its last newline dropped)
        lines[-1] = readout
        return Text("\n").join(lines)

    def _draw(self, width: int) -> None:
        plt = self.plt
        plt.clear_data()
        plt.xlabel(X_LABELS[self.x_mode])
        single = len(self.series) == 1
        drawn = [(s, finite(s.steps.points, self.log_scale), finite(s.evals.points, self.log_scale)) for s in self.series]
        # plotext cannot log-scale an empty figure (it fails on the missing data): linear until there is some.
        plt.yscale("log" if self.log_scale and any(steps or evals for _, steps, evals in drawn) else "linear")
        signals: list[list[float]] = []  # each loss curve's y values (the lr has an axis of its own)
        xs: list[float] = []
        lr_values: list[float] = []
        for series, steps, evals in drawn:
            color = series.color
            if steps and single:
                # Raw loss as grey braille dots, two per column (dense enough to read as a cloud).
                raw = downsample(steps, 2 * width)
                plt.scatter([self._x(p) for p in raw], [p.y for p in raw], label="train (raw)", color=RAW_COLOR,
                            marker="braille")
            smooth = [p for p in downsample(steps, width) if math.isfinite(p.y2)]
            if smooth:
                label = "train (smoothed)" if single else f"{series.name} train"
                plt.plot([self._x(p) for p in smooth], [p.y2 for p in smooth], label=label, color=color, marker="braille")
            if evals:
                points = downsample(evals, width)
                plt.scatter([self._x(p) for p in points], [p.y for p in points], label="val" if single else f"{series.name} val",
                            color=VAL_COLOR if single else color, marker=VAL_MARKER)
            signals += [[p.y for p in steps], [p.y2 for p in smooth], [p.y for p in evals]]
            xs += [self._x(p) for p in steps[:1] + steps[-1:] + evals[:1] + evals[-1:]]
            if self.show_lr:
                lrs = [p for p in downsample(steps, width) if math.isfinite(p.lr)]
                if lrs:
                    # No label: one on the right axis makes plotext mark every legend entry with its axis.
                    plt.plot([self._x(p) for p in lrs], [p.lr for p in lrs], color=LR_COLOR if single else dim(color),
                             marker="braille", yside="right")
                    lr_values += [p.lr for p in lrs]
        self._limit_y(signals)
        self._draw_references(xs)
        self._lr_drawn = bool(lr_values)
        plt.title(self.fitted_caption(width - 2))  # last: it says what the drawing did (clipped, lr)
        self._ticks(xs, width)
        if lr_values:  # short labels on the lr axis (plotext writes 0.00100)
            ticks = nice_ticks(min(lr_values), max(lr_values), 4, integer=False)
            plt.yticks(ticks, [f"{t:.2g}" for t in ticks], yside="right")
        at = self._cursor_point()
        if at is not None:
            plt.vline(self._x(at), CURSOR_COLOR)

    def _draw_references(self, xs: list[float]) -> None:
        """The reference lines across the curves' x range, dashed, each named in the legend with its value."""
        if not (self.show_references and self.references and xs):
            return
        lo, hi = min(xs), max(xs)
        if hi <= lo:  # one point so far: no width to draw across
            return
        for line, color in zip(self.references, REFERENCE_COLORS):
            # Not a line above a clipped y range: plotext drops its points and then fails on its legend entry.
            if self._y_top is None or line.loss <= self._y_top:
                self.plt.plot([lo, hi], [line.loss, line.loss], label=line.label, color=color, marker=REFERENCE_MARKER)

    def _limit_y(self, signals: list[list[float]]) -> None:
        """Clip the y range's top to leave out the first steps' spike, keeping at least half of every curve
        in view (a run of higher loss, a val curve above train). plotext's limits are in log10 units in
        log scale."""
        self._clipped = False
        self._y_top = None
        if not self.clip_y:
            return
        if self.log_scale:
            signals = [[math.log10(y) for y in ys] for ys in signals]
        limits = robust_range([y for ys in signals for y in ys])
        if limits is None:
            return
        lo, hi = limits
        hi = max([hi] + [quantile(sorted(ys), 0.5) for ys in signals if ys])
        if hi < max(y for ys in signals for y in ys):
            # Reference lines below the curves widen the range down to them (how far there is to go).
            below = [r.loss for r in self.references if self.show_references and r.loss > 0]
            lo = min([lo] + [v for v in (math.log10(b) if self.log_scale else b for b in below) if v < hi])
            self.plt.ylim(lo, hi)
            self._clipped = True
            self._y_top = 10**hi if self.log_scale else hi

    def _ticks(self, xs: list[float], width: int) -> None:
        """Round x ticks (whole iterations and tokens, round times) with short labels."""
        if not xs:
            self.plt.xticks([])
            return
        time = self.x_mode == "time"
        ticks = nice_ticks(min(xs), max(xs), max(2, width // TICK_WIDTH), integer=not time, time=time)
        self.plt.xticks(ticks, [tick_label(t, time=time) for t in ticks])
