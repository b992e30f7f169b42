"""Reference lines on the loss plots: a uniform guess (ln vocab) and the dataset's count bigram, labelled,
toggled with b; on the Checkpoints, Watch and Compare screens (the Train screen shares Watch's RunMonitor)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from pilot_helpers import wait_for
from textual.widgets import DataTable

from core.dataset.baseline import compute_baseline
from core.dataset.format import load_dataset
from core.runs.curves import reference_lines
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.screens.compare import CompareScreen
from nanogpt_tui.screens.watch import WatchScreen
from nanogpt_tui.widgets.checkpoint_details import CheckpointDetails
from nanogpt_tui.widgets.loss_plot import LossPlot


def test_the_lines_are_a_uniform_guess_and_the_count_bigram() -> None:
    uniform, bigram = reference_lines(65, 2.4567)
    assert uniform.loss == math.log(65) and uniform.label == "uniform guess ln 65 = 4.17"
    assert bigram.loss == 2.4567 and bigram.label == "count bigram 2.46"
    assert len(reference_lines(50257, None)) == 1


def legend(plot: LossPlot) -> str:
    return plot.render().plain


async def test_the_lines_show_labelled_on_every_plot_and_b_hides_them(tiny_run: Path, char_dataset) -> None:
    expected = reference_lines(char_dataset.vocab_size, compute_baseline(load_dataset(char_dataset.name)).bigram)
    app = NanoGPTApp()
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("f4")
        key = str(tiny_run / "ckpt.pt")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and key in app.screen.summaries)
        table = app.screen.query_one("#ckpt-table", DataTable)
        table.move_cursor(row=table.get_row_index(key))
        plot, details = app.screen.query_one("#ckpt-plot", LossPlot), app.screen.query_one(CheckpointDetails)
        # The run's best.pt may be the row shown first (same dataset, same lines): wait for ckpt.pt's own
        # curves, drawn once the cursor has rested on its row, not for whichever row was drawn before.
        await wait_for(pilot, lambda: details.showing(Path(key)) and plot.references == expected and plot.steps.points)
        assert all(line.label in legend(plot) for line in expected)

        plot.focus()
        await pilot.press("b")
        assert not plot.show_references and "count bigram" not in legend(plot)
        await pilot.press("b")
        assert "count bigram" in legend(plot)

        table.focus()
        await pilot.press("w")  # the Watch screen of this (finished) run
        await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen))
        watched = app.screen.query_one("#loss-plot", LossPlot)
        await wait_for(pilot, lambda: watched.references == expected and watched.steps.points)
        assert "uniform guess ln" in legend(watched)
        await pilot.press("escape")


async def test_compare_shows_the_lines_of_the_runs_one_dataset(tiny_run: Path) -> None:
    other = shutil.copytree(tiny_run, tiny_run.parent / "tiny-copy")
    app = NanoGPTApp()
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen)
                       and str(other / "ckpt.pt") in app.screen.summaries)
        table = app.screen.query_one("#ckpt-table", DataTable)
        for run in (tiny_run, other):
            table.move_cursor(row=table.get_row_index(str(run / "ckpt.pt")))
            await pilot.press("space")
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        plot = app.screen.query_one("#compare-plot", LossPlot)
        await wait_for(pilot, lambda: len(plot.references) == 2 and len(plot.series) == 2)
        assert "count bigram" in legend(plot)


async def test_lines_beyond_a_clipped_range_neither_break_the_plot_nor_hide() -> None:
    """A curve whose start spike is clipped: the uniform line above the range is left out (plotext would
    fail on a legend entry with no point drawn); the bigram line below the curve widens the range to it."""
    from textual.app import App

    class PlotApp(App[None]):
        def compose(self):
            yield LossPlot(id="plot")

    app = PlotApp()
    async with app.run_test(size=(100, 24)) as pilot:
        plot = app.query_one(LossPlot)
        plot.add_steps([[i, 4.2 - 1.4 * (i / 200) ** 0.3, 64 * i, 0.1 * i] for i in range(200)])
        plot.add_eval(199, 2.85, 2.9)
        plot.references = reference_lines(65, 2.5)
        await pilot.pause()
        drawn = legend(plot)
        assert "spike clipped" in plot.caption and "count bigram 2.50" in drawn and "uniform guess" not in drawn
        plot.action_clip_y()  # the whole range: both lines
        await pilot.pause()
        assert "uniform guess ln 65" in legend(plot) and "count bigram" in legend(plot)
