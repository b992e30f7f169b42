"""LossPlot: a training loss curve (raw and smoothed), validation points, log scale, x in steps/tokens/time.

Fed live by the Train screen (`add_steps`, `add_eval`) or all at once from a checkpoint's saved history
(`load_history`, used by the Checkpoints screen). Memory is bounded whatever the run's length: when the
step buffer fills, every other point is dropped and from then on only every other step is kept, so the
whole curve stays visible at a coarser grain (the smoothed line still sees every step).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

X_MODES = ("steps", "tokens", "time")
X_LABELS = {"steps": "iteration", "tokens": "tokens seen", "time": "seconds"}
SMOOTHING = 0.9  # EMA weight of the past: TensorBoard's default-ish smoothing
MAX_POINTS = 2000  # per series; plotext draws on the UI thread, so the point count bounds its cost


@dataclass
class Point:
    """One plotted step or eval: where it is on each x axis and its y values."""

    iter: int
    tokens: int
    seconds: float
    y: float
    y2: float = math.nan  # smoothed loss for steps, train loss for evals


class DecimatingBuffer:
    """Keeps at most `capacity` points spread over the whole series: when full, halve and keep 1 in 2."""

    def __init__(self, capacity: int = MAX_POINTS) -> None:
        self.capacity = capacity
        self.points: list[Point] = []
        self.stride = 1
        self._seen = 0

    def append(self, point: Point) -> None:
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self.points.append(point)
        if len(self.points) >= self.capacity:
            self.points = self.points[::2]
            self.stride *= 2

    def clear(self) -> None:
        self.points.clear()
        self.stride = 1
        self._seen = 0


def thin(points: list[Point], most: int) -> list[Point]:
    """At most about `most` evenly spaced points, always ending with the latest one."""
    stride = math.ceil(len(points) / max(1, most))
    return points[::-1][::stride][::-1] if stride > 1 else points


class LossPlot(PlotextPlot):
    """Train loss per step (raw and EMA-smoothed) and val loss points."""

    log_scale: reactive[bool] = reactive(False)
    x_mode: reactive[str] = reactive("steps")

    def __init__(self, *, title: str = "loss", id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.steps = DecimatingBuffer()
        self.evals = DecimatingBuffer()
        self._ema = 0.0
        self._ema_weight = 0.0  # for the bias correction of the EMA's start
        self._last: Point | None = None  # latest step: places evals on the tokens/time axes

    # -- feeding -------------------------------------------------------------------------------------

    def add_steps(self, steps: Iterable[Sequence[float]], redraw: bool = True) -> None:
        """Add steps as (iter, loss, tokens, seconds) rows, the checkpoint history's layout."""
        for it, loss, tokens, seconds in steps:
            if math.isfinite(loss):
                self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * loss
                self._ema_weight = SMOOTHING * self._ema_weight + (1 - SMOOTHING)
            smooth = self._ema / self._ema_weight if self._ema_weight else math.nan
            self._last = Point(int(it), int(tokens), float(seconds), float(loss), smooth)
            self.steps.append(self._last)
        if redraw:
            self.replot()

    def add_eval(self, it: int, train_loss: float, val_loss: float, redraw: bool = True) -> None:
        """Add a validation point at iteration `it` (placed at the latest step's tokens and time)."""
        tokens, seconds = (self._last.tokens, self._last.seconds) if self._last else (0, 0.0)
        self.evals.append(Point(int(it), tokens, seconds, float(val_loss), float(train_loss)))
        if redraw:
            self.replot()

    def load_history(self, history: dict[str, Any]) -> None:
        """Replace the plot with a saved history: {"steps": [[iter, loss, tokens, seconds]], "evals": [[iter, train, val]]}."""
        self.clear(redraw=False)
        steps = history.get("steps") or []
        self.add_steps(steps, redraw=False)
        # An eval sits at the tokens and time of the last step at or before its iteration.
        rows = sorted((int(r[0]), int(r[2]), float(r[3])) for r in steps)
        iters = [r[0] for r in rows]
        for it, train_loss, val_loss in history.get("evals") or []:
            i = bisect.bisect_right(iters, int(it)) - 1
            tokens, seconds = (rows[i][1], rows[i][2]) if i >= 0 else (0, 0.0)
            self.evals.append(Point(int(it), tokens, seconds, float(val_loss), float(train_loss)))
        self.replot()

    def clear(self, redraw: bool = True) -> None:
        """Forget every point."""
        self.steps.clear()
        self.evals.clear()
        self._ema = self._ema_weight = 0.0
        self._last = None
        if redraw:
            self.replot()

    # -- view options --------------------------------------------------------------------------------

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale

    def cycle_x_mode(self) -> None:
        self.x_mode = X_MODES[(X_MODES.index(self.x_mode) + 1) % len(X_MODES)]

    def watch_log_scale(self) -> None:
        self.replot()

    def watch_x_mode(self) -> None:
        self.replot()

    @property
    def caption(self) -> str:
        """The plot's title line: what is drawn and how (it changes with the view options)."""
        scale = "log" if self.log_scale else "linear"
        return f"{self.title} · x: {self.x_mode} · y: {scale}"

    # -- drawing -------------------------------------------------------------------------------------

    def _x(self, point: Point) -> float:
        if self.x_mode == "tokens":
            return point.tokens
        if self.x_mode == "time":
            return point.seconds
        return point.iter

    def replot(self) -> None:
        """Redraw from the buffers on the next refresh."""
        self.refresh()

    def render(self) -> RenderResult:
        # The figure is rebuilt at every render: plotext log-scales its data in place while building,
        # so building the same figure twice would scale it twice.
        self._draw()
        return super().render()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(self.caption)
        plt.xlabel(X_LABELS[self.x_mode])
        # Log scale needs positive values; a NaN/inf step (a failing run) is left out of every series.
        steps = [p for p in self.steps.points if math.isfinite(p.y) and p.y > 0]
        evals = [p for p in self.evals.points if math.isfinite(p.y) and p.y > 0]
        # plotext cannot log-scale an empty figure (it fails on the missing data): linear until there is some.
        plt.yscale("log" if self.log_scale and (steps or evals) else "linear")
        if steps:
            # Drawing is pure Python on the UI thread, so draw no more than the terminal can show:
            # the raw loss as braille dots, two per column (dense enough to read as a line, and
            # dots skip plotext's line interpolation), the smoothed loss as a line through one per column.
            raw = thin(steps, 2 * self.size.width)
            plt.scatter([self._x(p) for p in raw], [p.y for p in raw], label="train", color="blue+", marker="braille")
            smooth = [p for p in thin(steps, self.size.width) if math.isfinite(p.y2)]
            plt.plot([self._x(p) for p in smooth], [p.y2 for p in smooth], label="smoothed", color="orange", marker="braille")
        if evals:
            plt.scatter([self._x(p) for p in evals], [p.y for p in evals], label="val", color="green+", marker="dot")
