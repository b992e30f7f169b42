"""Loss curves as TensorBoard draws them: their data and math (torch-free, Textual-free).

LossPlot and the Compare screen draw with it: a run's points in bounded buffers (Series), TensorBoard's
debiased EMA smoothing, nice tick positions and their labels, a y range that ignores the first steps'
spike, downsampling for drawing, the point nearest a cursor, the settings in which runs differ, and the
reference lines a loss is read against (a uniform guess, the dataset's count-based bigram).

Memory is bounded whatever a run's length: when a step buffer fills, every other point is dropped and
from then on only every other step is kept, so the whole curve stays visible at a coarser grain (the
smoothing still sees every step).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# The smoothing weights the plot's `[` and `]` step through. TensorBoard's slider goes 0 to 0.999;
# fixed levels, denser near 1 where each step changes the curve most.
SMOOTHING_LEVELS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
# TensorBoard's default. Per logged step: a higher weight lags behind the fast early drop (0.9 trails
# it by about 9 steps); `]` smooths more for a long, noisy run.
DEFAULT_SMOOTHING = 0.6
MAX_POINTS = 2000  # per series; plotext draws on the UI thread, so the point count bounds its cost
CLIP_MIN_POINTS = 20  # fewer points than this: the y range is never clipped (the spike is the curve)
CLIP_QUANTILE = 0.95  # the y range's top ignores the highest 5% of values...
CLIP_MARGIN = 0.1  # ...plus this fraction of the rest's span as headroom
# Tick spacings for the time axis, in seconds: whole seconds, minutes, hours.
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class EMA:
    """TensorBoard's debiased exponential moving average, fed one value at a time.

    `last = w * last + (1 - w) * value`, reported as `last / (1 - w**n)` after n values: without that
    division the average starts at 0 and climbs, sitting far below (or, pulled by the first high
    values, far above) the points for the first 1 / (1 - w) steps. A non-finite value gives NaN and
    leaves the average alone. `span` lets one value stand for several steps (a thinned series): it
    counts as that many steps of the same value.
    """

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.last = 0.0
        self.steps = 0  # n: steps averaged so far

    def add(self, value: float, span: int = 1) -> float:
        if not math.isfinite(value):
            return math.nan
        decay = self.weight**span
        self.last = decay * self.last + (1 - decay) * value
        self.steps += span
        debias = 1 - self.weight**self.steps
        return self.last / debias if debias > 0 else value


@dataclass
class Point:
    """One plotted step or eval: where it is on each x axis and its y values."""

    iter: int
    tokens: int
    seconds: float
    y: float
    y2: float = math.nan  # smoothed loss for steps, train loss for evals
    lr: float = math.nan  # steps only, where the source records it


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


@dataclass
class Series:
    """One run's steps and evals, and the running smoothing of its train loss."""

    name: str
    color: tuple[int, int, int]
    smoothing: float = DEFAULT_SMOOTHING
    steps: DecimatingBuffer = field(default_factory=DecimatingBuffer)
    evals: DecimatingBuffer = field(default_factory=DecimatingBuffer)
    last: Point | None = None  # latest step: places evals on the tokens/time axes

    def __post_init__(self) -> None:
        self.ema = EMA(self.smoothing)

    def add_steps(self, rows: Iterable[Sequence[float]]) -> int:
        """Rows of (iter, loss, tokens, seconds[, lr]): a checkpoint history's layout, lr optional.
        Returns how many there were."""
        count = 0
        for row in rows:
            count += 1
            it, loss, tokens, seconds = row[:4]
            lr = float(row[4]) if len(row) > 4 else math.nan
            self.last = Point(int(it), int(tokens), float(seconds), float(loss), self.ema.add(float(loss)), lr)
            self.steps.append(self.last)
        return count

    def add_eval(self, it: int, train_loss: float, val_loss: float) -> None:
        tokens, seconds = (self.last.tokens, self.last.seconds) if self.last else (0, 0.0)
        self.evals.append(Point(int(it), tokens, seconds, float(val_loss), float(train_loss)))

    def load(self, history: dict[str, Any]) -> None:
        """A saved history: {"steps": [[iter, loss, tokens, seconds(, lr)]], "evals": [[iter, train, val]]}."""
        steps = history.get("steps") or []
        self.add_steps(steps)
        # An eval sits at the tokens and time of the last step at or before its iteration.
        rows = sorted((int(r[0]), int(r[2]), float(r[3])) for r in steps)
        iters = [r[0] for r in rows]
        for it, train_loss, val_loss in history.get("evals") or []:
            i = bisect.bisect_right(iters, int(it)) - 1
            tokens, seconds = (rows[i][1], rows[i][2]) if i >= 0 else (0, 0.0)
            self.evals.append(Point(int(it), tokens, seconds, float(val_loss), float(train_loss)))

    def resmooth(self, weight: float) -> None:
        """Smooth the kept points again with a new weight; each stands for `stride` steps."""
        self.smoothing, self.ema = weight, EMA(weight)
        for point in self.steps.points:
            point.y2 = self.ema.add(point.y, self.steps.stride)

    def clear(self) -> None:
        self.steps.clear()
        self.evals.clear()
        self.ema = EMA(self.smoothing)
        self.last = None


def finite(points: list[Point], positive: bool) -> list[Point]:
    """The points that can be drawn: a NaN/inf step (a failing run) is left out; log scale needs y > 0."""
    return [p for p in points if math.isfinite(p.y) and (p.y > 0 or not positive)]


def next_level(weight: float, direction: int) -> float:
    """The smoothing level after (direction 1) or before (-1) `weight`, staying within the levels."""
    index = bisect.bisect_left(SMOOTHING_LEVELS, weight)
    if direction > 0:
        index += 1 if index < len(SMOOTHING_LEVELS) and SMOOTHING_LEVELS[index] == weight else 0
    else:
        index -= 1
    return SMOOTHING_LEVELS[min(max(index, 0), len(SMOOTHING_LEVELS) - 1)]


def nice_step(span: float, count: int, time: bool = False) -> float:
    """A tick spacing near span / count: 1, 2 or 5 times a power of ten, or a round time in seconds."""
    raw = span / max(1, count)
    if time:
        for step in TIME_STEPS:
            if step >= raw:
                return step
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= raw:
            return multiple * magnitude
    return 10 * magnitude


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = True, time: bool = False) -> list[float]:
    """About `count` evenly spaced round values within [lo, hi], no further than a spacing from each end.

    `integer` keeps them whole numbers (iterations, tokens: never `204.2`); `time` picks round seconds.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    if hi == lo:
        return [round(lo)] if integer else [lo]
    step = nice_step(hi - lo, count, time)
    if integer:
        step = max(1, round(step))
    first = math.ceil(lo / step)
    last = math.floor(hi / step + 1e-9)  # a top that is a tick, up to rounding, is kept
    return [int(i * step) if integer else i * step for i in range(first, last + 1)]


def tick_label(value: float, time: bool = False) -> str:
    """A short label: 1500 -> '1.5k', 2000000 -> '2M'; seconds as '45s', '1m30s', '2h'."""
    if time:
        seconds = round(value)
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
        if minutes:
            return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
        return f"{secs}s"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:g}"


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of already sorted values, interpolated linearly between neighbours."""
    position = q * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (position - below) * (sorted_values[above] - sorted_values[below])


def robust_range(values: Iterable[float], min_points: int = CLIP_MIN_POINTS) -> tuple[float, float] | None:
    """A y range that leaves out the highest few values (the initial loss of ~ln(vocab)), or None when
    there are too few points to tell a spike from the curve, or when it would leave nothing out."""
    finite = sorted(v for v in values if math.isfinite(v))
    if len(finite) < min_points:
        return None
    lo, top = finite[0], finite[-1]
    kept = quantile(finite, CLIP_QUANTILE)
    hi = kept + CLIP_MARGIN * (kept - lo)
    return (lo, hi) if hi < top else None


def downsample(points: Sequence[T], most: int) -> list[T]:
    """At most about `most` evenly spaced points, always ending with the latest one."""
    stride = math.ceil(len(points) / max(1, most))
    return list(points[::-1][::stride][::-1]) if stride > 1 else list(points)


def nearest(xs: Sequence[float], x: float) -> int:
    """The index of the value of sorted `xs` nearest to `x` (the earlier one on a tie); -1 if empty."""
    if not xs:
        return -1
    i = bisect.bisect_left(xs, x)
    if i == 0:
        return 0
    if i == len(xs):
        return len(xs) - 1
    return i if xs[i] - x < x - xs[i - 1] else i - 1


def with_recorded_lr(history: dict[str, Any], curves: dict[str, list[list[float]]] | None) -> dict[str, Any]:
    """A checkpoint's history whose steps also carry the lr that metrics.jsonl (`curves`) recorded for
    them: checkpoints keep [iter, loss, tokens, seconds] only. Steps with no record are left as they are."""
    lrs = {int(row[0]): row[4] for row in (curves or {}).get("steps", [])}
    steps = [list(row[:4]) + [lrs[int(row[0])]] if int(row[0]) in lrs else list(row) for row in history.get("steps", [])]
    return {**history, "steps": steps}


def settings_diff(configs: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The settings whose values are not all the same, with each config's value (None where it has none).

    Keys keep the first config's order, then any others' in theirs.
    """
    keys = list(dict.fromkeys(key for config in configs for key in config))
    missing = object()
    diff = []
    for key in keys:
        values = [config.get(key, missing) for config in configs]
        if any(v != values[0] for v in values[1:]):
            diff.append((key, [None if v is missing else v for v in values]))
    return diff


@dataclass(frozen=True)
class Reference:
    """A horizontal line a loss is read against, with its label."""

    label: str
    loss: float


def reference_lines(vocab_size: int, bigram: float | None) -> list[Reference]:
    """A uniform guess's loss, ln(vocab_size) (where training starts), and the dataset's count-based
    bigram's val loss (core.dataset.baseline: what a model that sees one token back can reach)."""
    lines = [Reference(f"uniform guess ln {vocab_size:,} = {math.log(vocab_size):.2f}", math.log(vocab_size))]
    if bigram is not None and math.isfinite(bigram):
        lines.append(Reference(f"count bigram {bigram:.2f}", bigram))
    return lines
