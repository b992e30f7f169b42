"""Comparing runs: mark them on the Checkpoints screen, press C, see their curves overlaid and their settings' diff."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pilot_helpers import notices, wait_for
from textual.widgets import DataTable, Static

from core.common import paths
from core.runs import metrics
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.screens.compare import CompareScreen
from nanogpt_tui.widgets.checkpoint_details import SAMPLE_TOKENS
from nanogpt_tui.widgets.loss_plot import LossPlot

# What run-b changes from run-a (besides its name): the diff must show exactly these.
CHANGED = {"learning_rate": 3e-3, "n_embd": 48}


def train(dataset: str, name: str, **changes) -> Path:
    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer

    config = from_preset(
        "tiny", dataset=dataset, run_name=name, max_iters=10, eval_interval=5, eval_iters=2, warmup_iters=2,
        device="cpu", **changes,
    )
    events: list = []
    Trainer(config, events.append).run()
    assert not [e for e in events if isinstance(e, Failed)]
    return Path(events[0].run_dir)


@pytest.fixture
def runs(char_dataset) -> tuple[Path, Path]:
    return train(char_dataset.name, "run-a"), train(char_dataset.name, "run-b", **CHANGED)


def spy_on_checkpoint_loads(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """From now on, the worker group of each load_checkpoint call (None outside a worker)."""
    from textual.worker import NoActiveWorker, get_current_worker

    from core.runs import checkpoint
    from core.runs import listing as checkpoint_list

    groups: list[str | None] = []
    load = checkpoint.load_checkpoint

    def spy(*args, **kwargs):
        try:
            groups.append(get_current_worker().group)
        except NoActiveWorker:
            groups.append(None)
        return load(*args, **kwargs)

    for owner in (checkpoint, checkpoint_list):  # a load, and a summary's (which imports the name)
        monkeypatch.setattr(owner, "load_checkpoint", spy)
    return groups


def name_cell(screen: CheckpointsScreen, path: Path) -> str:
    table = screen.query_one("#ckpt-table", DataTable)
    return str(table.get_row(str(path))[0])


async def mark(pilot, screen: CheckpointsScreen, path: Path) -> None:
    table = screen.query_one("#ckpt-table", DataTable)
    table.move_cursor(row=table.get_row_index(str(path)))
    await pilot.press("space")


async def test_mark_two_runs_and_compare_them(runs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run_a, run_b = runs
    no_metrics = paths.runs_dir() / "run-c"  # a run folder without metrics.jsonl, as a nanoGPT out_dir
    shutil.copytree(run_a, no_metrics)
    (no_metrics / metrics.METRICS_FILE).unlink()
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and len(app.screen.summaries) == 6)
        screen = app.screen

        # The Checkpoints screen's sample is long enough to judge: every token of a char model is a character.
        sample = screen.query_one("#ckpt-sample", Static)
        await wait_for(pilot, lambda: str(sample.render()).startswith("sample ("))
        assert SAMPLE_TOKENS >= 200 and len(str(sample.render()).split("\n", 1)[1]) == SAMPLE_TOKENS

        # One marked run is not enough: a warning, no compare screen.
        await mark(pilot, screen, run_a / "ckpt.pt")
        assert name_cell(screen, run_a / "ckpt.pt") == "✓ run-a" and name_cell(screen, run_b / "ckpt.pt") == "run-b"
        await pilot.press("C")
        assert app.screen is screen and any("Mark two or more" in n.message for n in notices(app))

        # The same run's best.pt adds nothing; run-b does. Unmarking works too.
        await mark(pilot, screen, run_a / "best.pt")
        await mark(pilot, screen, run_b / "ckpt.pt")
        await mark(pilot, screen, no_metrics / "ckpt.pt")
        await mark(pilot, screen, no_metrics / "ckpt.pt")
        assert name_cell(screen, no_metrics / "ckpt.pt") == "run-c"
        await mark(pilot, screen, no_metrics / "ckpt.pt")
        # The listing read every checkpoint's settings: comparing loads none of them again.
        loaded_by = spy_on_checkpoint_loads(monkeypatch)
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        plot = compare.query_one("#compare-plot", LossPlot)
        await wait_for(pilot, lambda: len(plot.series) == 2)
        await pilot.pause()

        # Both runs in the legend, each curve from its metrics.jsonl.
        drawn = plot.render().plain
        assert "run-a" in drawn and "run-b" in drawn and "run-c" not in drawn
        by_name = {"run-a": run_a, "run-b": run_b}
        for series in plot.series:
            steps = metrics.read_curves(by_name[series.name])["steps"]
            assert [(p.iter, p.y) for p in series.steps.points] == [(row[0], row[1]) for row in steps]
        notes = str(compare.query_one("#compare-notes", Static).render())
        assert "run-c: no metrics.jsonl" in notes

        # Each run's last eval, also in bits per byte (as its metrics.jsonl recorded it); run-c has no record.
        results = compare.query_one("#compare-results", DataTable)
        assert [str(c.label) for c in results.columns.values()][-1] == "val bits/byte"
        for name, run in by_name.items():
            last = [r for _, r in metrics.records(run / metrics.METRICS_FILE) if r["type"] == "eval"][-1]
            row = [str(cell) for cell in results.get_row(name)]
            assert row == [name, "char", f"{last['iter']:,}", f"{last['val_loss']:.4f}", f"{last['val_bpb']:.4f}"]
        assert [str(cell) for cell in results.get_row("run-c")][2:] == ["–", "–", "–"]

        # The settings diff: exactly what run-b changed, and the names; one column per run.
        table = compare.query_one("#compare-diff", DataTable)
        columns = [str(c.label) for c in table.columns.values()]
        assert columns[0] == "setting" and sorted(columns[1:]) == ["run-a", "run-b", "run-c"]
        assert {key.value for key in table.rows} == {"run_name", *CHANGED}
        n_embd = dict(zip(columns, table.get_row("n_embd"), strict=True))
        assert (n_embd["run-a"], n_embd["run-b"], n_embd["run-c"]) == ("32", "48", "32")  # run-c: a copy of run-a
        assert "compare-read" not in loaded_by

        # The cursor (the plot has focus) reads each run's smoothed loss at the same point.
        await pilot.press("left")
        readout = plot.render().plain.splitlines()[-1]
        assert all(f"{s.name} {s.steps.points[-1].y2:.4f}" in readout for s in plot.series)

        # x cycles steps -> tokens -> time; escape hides the cursor, then goes back to the table, marks kept.
        await pilot.press("x")
        assert plot.x_mode == "tokens" and "x: tokens" in plot.render().plain  # the readout has the label's line
        await pilot.press("escape")
        assert app.screen is compare and plot.cursor is None
        assert plot.render().plain.splitlines()[-1].strip() == "tokens seen"  # the x axis's label again
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert name_cell(screen, run_b / "ckpt.pt") == "✓ run-b"
