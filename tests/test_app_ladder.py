"""The Ladder screen: from the Train screen (ctrl+y), the lecture's steps trained one after another as runs,
a table of what each reached, their curves overlaid, Compare on them; ctrl+b stops it."""

from __future__ import annotations

import math
from pathlib import Path

from pilot_helpers import WAIT, wait_for
from textual.widgets import DataTable, Input

from core.common import paths
from core.model.arch import ARCHS
from core.runs.checkpoint import load_checkpoint
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.compare import CompareScreen
from nanogpt_tui.screens.ladder import COLUMNS, LadderScreen
from nanogpt_tui.widgets.loss_plot import LossPlot


def rows(screen: LadderScreen) -> list[dict[str, str]]:
    table = screen.query_one("#ladder-table", DataTable)
    return [dict(zip(COLUMNS, map(str, table.get_row_at(i)))) for i in range(table.row_count)]


async def open_ladder(app: NanoGPTApp, pilot, iters: str) -> LadderScreen:
    await pilot.press("f3")
    await pilot.press("ctrl+y")
    await wait_for(pilot, lambda: isinstance(app.screen, LadderScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen.datasets)
    screen.query_one("#ladder-iters", Input).value = iters
    return screen


async def test_the_ladder_trains_every_step_and_compares_them(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_ladder(app, pilot, "3")
        # Before it starts, the table lists every step it will train, waiting.
        assert [(row["step"], row["status"]) for row in rows(screen)] == [(f"{i + 1} {arch}", "waiting")
                                                                          for i, arch in enumerate(ARCHS)]
        await pilot.press("ctrl+r")
        assert screen.running
        await wait_for(pilot, lambda: not screen.running, 8 * WAIT)
        shown = rows(screen)
        assert [row["step"] for row in shown] == [f"{i + 1} {arch}" for i, arch in enumerate(ARCHS)]
        assert all(row["status"].startswith("done") for row in shown), shown
        for step, row in zip(screen.results.steps, shown):
            assert row["val loss"] == f"{step.val_loss:.4f}" and step.val_loss < math.log(char_dataset.vocab_size) + 0.1
            ckpt = load_checkpoint(step.run_dir / "ckpt.pt")
            assert ckpt["iter_num"] == 3 and ckpt["config"]["arch"] == step.arch
            assert math.isclose(ckpt["history"]["evals"][-1][2], step.val_loss, rel_tol=1e-6)
        assert all(row["change"] for row in shown[1:]) and all(row["bits/byte"] for row in shown)
        assert len(screen.query_one("#ladder-plot", LossPlot).series) == len(ARCHS)
        assert app.trainer is None

        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_for(pilot, lambda: len(app.screen.query_one("#compare-plot", LossPlot).series) == len(ARCHS), WAIT)
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, (CompareScreen, LadderScreen)))


async def test_stop_ends_the_step_training_and_skips_the_rest(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_ladder(app, pilot, "100000")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.results.steps[0].status == "training" and screen.histories[0]["steps"], 2 * WAIT)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: not screen.running, 2 * WAIT)
        assert screen.results.steps[0].status == "stopped"
        assert all(step.status == "waiting" for step in screen.results.steps[1:])
        assert [p.name for p in paths.runs_dir().iterdir()] == [screen.results.steps[0].run_name]
        assert (Path(screen.results.steps[0].run_dir) / "ckpt.pt").is_file()  # the stopped step saved
        assert app.trainer is None
