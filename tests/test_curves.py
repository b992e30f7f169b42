"""Curves like TensorBoard: the math of core.runs.curves, metrics.read_curves, and the LossPlot widget driven by keys."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding

from core.runs import metrics
from core.runs.curves import (
    CLIP_MIN_POINTS,
    DEFAULT_SMOOTHING,
    EMA,
    SMOOTHING_LEVELS,
    TIME_STEPS,
    downsample,
    nearest,
    next_level,
    nice_ticks,
    robust_range,
    settings_diff,
    tick_label,
    with_recorded_lr,
)
from nanogpt_tui.widgets.footer import KeyFooter, key_hints
from nanogpt_tui.widgets.loss_plot import LossPlot

# -- the math ----------------------------------------------------------------------------------------


def debiased_ema(values: list[float], weight: float, span: int = 1) -> list[float]:
    """Each value's smoothed value, as a LossPlot series computes them one at a time."""
    ema = EMA(weight)
    return [ema.add(v, span) for v in values]


def test_debiased_ema_is_tensorboards_formula() -> None:
    values, w = [4.0, 3.0, 2.5, 2.6, 2.2], 0.6
    smoothed = debiased_ema(values, w)
    # TensorBoard: the weighted mean of the values so far, weights w^(t-i) (1-w), divided by 1 - w^t.
    for t in range(1, len(values) + 1):
        numerator = sum(w ** (t - i) * (1 - w) * values[i - 1] for i in range(1, t + 1))
        assert smoothed[t - 1] == pytest.approx(numerator / (1 - w**t))
    # By hand: the first point is the first value (no lag from starting at 0), the second 3.375.
    assert smoothed[0] == pytest.approx(4.0)
    assert smoothed[1] == pytest.approx((0.6 * 0.4 * 4.0 + 0.4 * 3.0) / (1 - 0.36))


def test_ema_skips_non_finite_and_a_span_counts_as_that_many_steps() -> None:
    assert math.isnan(debiased_ema([2.0, math.nan, 1.0], 0.9)[1])
    assert debiased_ema([2.0, math.nan, 1.0], 0.9)[2] == pytest.approx(debiased_ema([2.0, 1.0], 0.9)[1])
    once, twice = EMA(0.9), EMA(0.9)
    once.add(3.0, span=2)
    twice.add(3.0)
    assert once.add(1.0, span=2) == pytest.approx((twice.add(3.0), twice.add(1.0), twice.add(1.0))[-1])


def test_smoothing_levels_step_and_stop_at_the_ends() -> None:
    assert next_level(SMOOTHING_LEVELS[0], -1) == SMOOTHING_LEVELS[0]
    assert next_level(SMOOTHING_LEVELS[-1], 1) == SMOOTHING_LEVELS[-1]
    for lower, upper in pairwise(SMOOTHING_LEVELS):
        assert next_level(lower, 1) == upper and next_level(upper, -1) == lower
    assert SMOOTHING_LEVELS[0] < next_level(0.85, 1) and next_level(0.85, -1) < 0.85


@pytest.mark.parametrize("lo,hi", [(0, 408.5), (0, 612), (3, 17), (0, 1), (1000, 1_000_000), (0, 2999)])
def test_nice_ticks_are_integers_that_cover_the_range(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi, count=5)
    assert len(ticks) >= 2 and all(isinstance(t, int) for t in ticks)
    steps = {b - a for a, b in pairwise(ticks)}
    assert len(steps) == 1
    step = steps.pop()
    assert step / 10 ** math.floor(math.log10(step)) in (1, 2, 5)  # 1, 2 or 5 times a power of ten
    assert lo <= ticks[0] < lo + step and hi - step < ticks[-1] <= hi


def test_time_ticks_are_round_times_and_labels_are_short() -> None:
    ticks = nice_ticks(0, 200, count=5, integer=False, time=True)
    assert ticks[1] - ticks[0] in TIME_STEPS and ticks[0] == 0 and ticks[-1] <= 200
    assert [tick_label(t, time=True) for t in (45, 90, 120, 3600, 5400)] == ["45s", "1m30s", "2m", "1h", "1h30m"]
    assert [tick_label(t) for t in (0, 500, 1500, 2_000_000)] == ["0", "500", "1.5k", "2M"]


def test_robust_range_ignores_the_initial_spike() -> None:
    bulk = [1.5 + 0.3 * math.exp(-i / 50) + 0.05 * math.sin(i) for i in range(300)]
    spike = [4.2, 3.6, 3.0]
    lo, hi = robust_range(spike + bulk)
    assert lo == min(bulk)
    assert max(sorted(bulk)[: int(0.9 * len(bulk))]) <= hi < min(spike)
    # Too few points to tell a spike from the curve, or nothing sticking out: no clipping.
    assert robust_range(spike + bulk[: CLIP_MIN_POINTS - 4]) is None
    assert robust_range([2.0] * 100) is None


def test_downsample_nearest_and_settings_diff() -> None:
    points = list(range(1001))
    thinned = downsample(points, 100)
    assert len(thinned) <= 101 and thinned[-1] == 1000 and len({b - a for a, b in pairwise(thinned)}) == 1
    assert downsample(points[:50], 100) == points[:50]
    xs = [0, 10, 20, 40]
    assert [nearest(xs, x) for x in (-5, 4, 6, 29, 31, 100)] == [0, 0, 1, 2, 3, 3]
    assert nearest([], 3) == -1
    a = {"lr": 1e-3, "n_embd": 32, "seed": 1, "muon": False}
    b = {"lr": 2e-3, "n_embd": 32, "seed": 1, "wsd": True}
    assert settings_diff([a, b]) == [("lr", [1e-3, 2e-3]), ("muon", [False, None]), ("wsd", [None, True])]
    assert settings_diff([a, dict(a)]) == []


def test_read_curves_skips_broken_lines(tmp_path: Path) -> None:
    assert metrics.read_curves(tmp_path) is None
    step = {"type": "step", "iter": 0, "loss": 4.2, "lr": 1e-4, "grad_norm": None, "tokens_per_sec": 1.0,
            "iter_ms": 1.0, "tokens_seen": 256, "elapsed_s": 0.5}
    lines = [json.dumps(step), json.dumps({**step, "iter": 1, "loss": None}),
             json.dumps({"type": "eval", "iter": 1, "train_loss": 3.0, "val_loss": 3.1, "best_val_loss": 3.1}),
             json.dumps({"type": "step", "iter": 2}), '{"type": "step", "it']
    (tmp_path / metrics.METRICS_FILE).write_text("\n".join(lines), encoding="utf-8")
    curves = metrics.read_curves(tmp_path)
    assert curves is not None
    assert curves["steps"][0] == [0, 4.2, 256, 0.5, 1e-4] and math.isnan(curves["steps"][1][1])
    assert len(curves["steps"]) == 2 and curves["evals"] == [[1, 3.0, 3.1]]


def test_with_recorded_lr_adds_what_metrics_recorded() -> None:
    history = {"steps": [[0, 4.0, 10, 0.1], [1, 3.0, 20, 0.2]], "evals": [[1, 3.0, 3.1]]}
    with_lr = with_recorded_lr(history, {"steps": [[1, 3.0, 20, 0.2, 5e-4]], "evals": []})
    assert with_lr["steps"] == [[0, 4.0, 10, 0.1], [1, 3.0, 20, 0.2, 5e-4]] and with_lr["evals"] == history["evals"]
    assert with_recorded_lr(history, None) == history


# -- the widget, as a user drives it -------------------------------------------------------------------

STEPS = [[i, 1.5 + 2.7 * math.exp(-i / 25) + 0.1 * math.sin(1.7 * i), 64 * (i + 1), 0.25 * (i + 1),
          1e-3 * min(1.0, (i + 1) / 50)] for i in range(600)]
EVALS = [[i, STEPS[i][1], STEPS[i][1] + 0.1] for i in range(0, 600, 100)]


class PlotApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossPlot(title="loss", id="plot")
        yield KeyFooter()


def shown(widget) -> str:
    return widget.render().plain


def y_labels(plot: LossPlot) -> list[float]:
    """The numbers on the left y axis, as drawn."""
    return [float(line.split("┤")[0]) for line in shown(plot).splitlines() if "┤" in line and line.split("┤")[0].strip()]


def x_labels(plot: LossPlot) -> list[str]:
    lines = shown(plot).splitlines()
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    return lines[axis + 1].split()


async def test_plot_keys_change_smoothing_clipping_lr_and_ticks() -> None:
    async with PlotApp().run_test(size=(100, 30)) as pilot:
        plot = pilot.app.query_one(LossPlot)
        plot.load_history({"steps": STEPS, "evals": EVALS})
        plot.focus()
        await pilot.pause()
        # While it has focus the footer shows its cursor key (the others are in F1 help and the palette).
        footer = {hint.description: hint.keys for hint in key_hints(pilot.app.screen)}
        assert footer["Cursor"] == "←→" and not {"Smooth −", "Smooth +", "Clip spike", "LR curve"} & footer.keys()
        assert f"smoothing {DEFAULT_SMOOTHING:g} " in shown(plot) and "spike clipped" in shown(plot)
        # Nice integer ticks on the iteration axis, inside the run's range.
        assert all(label.isdigit() for label in x_labels(plot)) and int(x_labels(plot)[-1]) <= 599
        # The spike is clipped: the top of the y axis is well below the initial loss.
        assert max(y_labels(plot)) < STEPS[0][1] - 0.5

        await pilot.press("right_square_bracket")
        more = next_level(DEFAULT_SMOOTHING, 1)
        assert more > DEFAULT_SMOOTHING and f"smoothing {more:g} " in shown(plot)
        losses = [row[1] for row in STEPS]
        assert [p.y2 for p in plot.steps.points] == pytest.approx(debiased_ema(losses, more))
        await pilot.press("left_square_bracket", "left_square_bracket")
        less = next_level(DEFAULT_SMOOTHING, -1)
        assert less < DEFAULT_SMOOTHING and f"smoothing {less:g} " in shown(plot)
        assert plot.steps.points[-1].y2 == pytest.approx(debiased_ema(losses, less)[-1])

        await pilot.press("y")
        assert "never clipped" in shown(plot) and max(y_labels(plot)) >= max(losses) - 0.01

        assert "lr" not in shown(plot).split("\n", 1)[1]
        await pilot.press("l")
        assert "lr: right axis" in shown(plot)  # the title says where it is (the legend leaves it out)

        # A history without learning rates (a checkpoint's) says so rather than drawing nothing silently.
        plot.load_history({"steps": [row[:4] for row in STEPS], "evals": EVALS})
        await pilot.pause()
        assert "lr: not recorded" in shown(plot)


def legend(plot: LossPlot) -> dict[str, Text]:
    """The legend's entries as drawn, by label: each entry's line from its markers on."""
    labels = ("train (raw)", "train (smoothed)", "val", *(f"{s.name} {what}" for s in plot.series for what in ("train", "val")))
    entries = {}
    for line in plot.render().split():
        for label in labels:
            at = line.plain.find(f" {label} ")  # an entry: " ", two marker cells, " ", its label
            if at >= 3 and line.plain[at - 3] == " " and line.plain[at - 2 : at].strip() and label not in entries:
                entries[label] = line[at - 2 : at + len(label) + 1]
    return entries


def marker_colour(entry: Text) -> str:
    return str(entry.get_style_at_offset(Console(), 0).color)


async def test_train_and_val_differ_by_style_and_each_run_names_both_in_the_legend() -> None:
    other = [[row[0], row[1] + 0.3, *row[2:]] for row in STEPS]
    async with PlotApp().run_test(size=(100, 30)) as pilot:
        plot = pilot.app.query_one(LossPlot)
        plot.set_runs([("run-a", {"steps": STEPS, "evals": EVALS}), ("run-b", {"steps": other, "evals": EVALS})])
        plot.show_lr = True
        await pilot.pause()
        entries = legend(plot)
        assert set(entries) == {"run-a train", "run-a val", "run-b train", "run-b val"}
        for run in ("run-a", "run-b"):  # a line's marker for train, a dot for val, in the run's colour
            train, val = entries[f"{run} train"].plain, entries[f"{run} val"].plain
            assert train[:2] != val[:2] and val.startswith("••")
            assert marker_colour(entries[f"{run} train"]) == marker_colour(entries[f"{run} val"])
        assert marker_colour(entries["run-a train"]) != marker_colour(entries["run-b train"])
        # With the lr axis on, the legend's lines carry no axis glyphs (plotext's L and ⅃).
        drawn = shown(plot)
        assert "⅃" not in drawn and not any(line.lstrip("0123456789.│┤ ").startswith("L ") for line in drawn.splitlines())

        # One run: raw and smoothed train in different colours, val as dots.
        plot.load_history({"steps": STEPS, "evals": EVALS})
        await pilot.pause()
        entries = legend(plot)
        assert {"train (raw)", "train (smoothed)", "val"} <= set(entries)
        assert marker_colour(entries["train (raw)"]) != marker_colour(entries["train (smoothed)"])
        assert entries["val"].plain.startswith("••") and not entries["train (smoothed)"].plain.startswith("•")


async def test_a_narrow_plot_keeps_a_short_title() -> None:
    async with PlotApp().run_test(size=(44, 20)) as pilot:
        plot = pilot.app.query_one(LossPlot)
        plot.load_history({"steps": STEPS, "evals": EVALS})
        plot.focus()
        await pilot.press("l", "y")
        title = shown(plot).splitlines()[0].strip()
        assert len(plot.caption) > 44 and title == plot.fitted_caption(42)
        assert title.startswith("loss · sm ") and "full y" in title and "lr" in title


async def test_plot_cursor_reads_the_point_under_it() -> None:
    async with PlotApp().run_test(size=(100, 30)) as pilot:
        plot = pilot.app.query_one(LossPlot)
        plot.load_history({"steps": STEPS, "evals": EVALS})
        plot.focus()
        await pilot.pause()
        assert "iter " not in shown(plot)
        await pilot.press("left")  # the cursor appears on the latest step
        readout = shown(plot).splitlines()[-1]
        last = STEPS[-1]
        assert f"iter {last[0]}" in readout and f"train {last[1]:.4f}" in readout
        assert f"val {EVALS[-1][2]:.4f} @{EVALS[-1][0]}" in readout and tick_label(last[2]) in readout

        await pilot.press("left", "left", "left")
        at = plot.cursor
        assert at is not None and at < last[0]
        readout = shown(plot).splitlines()[-1]
        row = STEPS[at]
        assert f"iter {at}" in readout and f"train {row[1]:.4f}" in readout
        assert f"{tick_label(row[3], time=True)}" in readout
        val = [e for e in EVALS if e[0] <= at][-1]
        assert f"val {val[2]:.4f}" in readout

        await pilot.press("escape")
        assert plot.cursor is None and "iter " not in shown(plot)


async def test_plot_redraws_only_when_something_changed() -> None:
    async with PlotApp().run_test(size=(80, 24)) as pilot:
        plot = pilot.app.query_one(LossPlot)
        plot.add_steps(STEPS[:10])
        await pilot.pause()
        renders = 0
        render = plot.render

        def counted():
            nonlocal renders
            renders += 1
            return render()

        plot.render = counted  # type: ignore[method-assign]
        plot.replot()
        plot.add_steps([])
        await pilot.pause()
        assert renders == 0
        plot.add_steps(STEPS[10:12])
        await pilot.pause()
        assert renders == 1


def test_every_plot_key_has_an_id_and_a_description() -> None:
    from nanogpt_tui.screens.compare import CompareScreen

    for owner in (LossPlot, CompareScreen):
        bindings = [b for b in owner.BINDINGS if isinstance(b, Binding)]
        assert len(bindings) == len(owner.BINDINGS)
        assert all(b.id and b.description for b in bindings)
        assert len({b.id for b in bindings}) == len(bindings)
