"""The Train screen driven as a user would, plus the LossPlot widget and the event throttle on their own."""

from __future__ import annotations

import re
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from pilot_helpers import notices, wait_for, workers_done
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, RichLog, Select, Static

from core.common import paths
from data.prepare import prepare
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.train import TrainScreen
from nanogpt_tui.throttle import EventThrottle
from nanogpt_tui.widgets.loss_plot import MAX_POINTS, SMOOTHING, LossPlot

# A model small enough that a few dozen iterations take well under a second on one core.
TINY = {"n_layer": "1", "n_embd": "16", "block_size": "16", "batch_size": "4", "eval_interval": "10", "eval_iters": "2"}




def shown(widget: Widget) -> str:
    """The text a widget shows on screen now."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def shown_iteration(screen: TrainScreen) -> int:
    """The iteration figure as the screen shows it ("iteration 12 / 3000")."""
    text = shown(screen.query_one("#figures", Static))
    return int(text.split("iteration", 1)[1].split("/")[0])


@pytest.fixture
def dataset(small_text: Path) -> str:
    return prepare(str(small_text), "char", name="small").name


async def open_train(app: NanoGPTApp, pilot: Pilot) -> TrainScreen:
    await pilot.press("f3")
    await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.state == "idle")
    return app.screen


async def choose_tiny_preset(pilot: Pilot, screen: TrainScreen) -> None:
    """Open the preset list and pick "tiny", the option after "cpu"."""
    select = screen.query_one("#preset", Select)
    select.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: select.expanded)
    await pilot.press("down", "enter")
    await wait_for(pilot, lambda: select.value == "tiny")


async def type_into(pilot: Pilot, screen: TrainScreen, settings: dict[str, str]) -> None:
    """Replace each setting's text the way a user would: go to the start, delete to the end, type."""
    for name, text in settings.items():
        screen.query_one(f"#cfg-{name}", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k", *text)
    await pilot.pause()


async def test_train_pause_resume_stop(dataset: str) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        assert screen.query_one("#dataset", Select).value == dataset
        await choose_tiny_preset(pilot, screen)
        await type_into(pilot, screen, {**TINY, "max_iters": "3000"})
        assert screen.form.problems == {} and not screen.query_one("#start", Button).disabled

        await pilot.press("ctrl+r")
        plot = screen.query_one("#loss-plot", LossPlot)
        await wait_for(pilot, lambda: screen.state == "running" and plot.steps.points)
        await wait_for(pilot, lambda: shown_iteration(screen) >= 5)
        assert app.trainer is not None
        assert "train" in shown(plot) and "smoothed" in shown(plot)
        # The training process's memory, read in that process (its RSS on a CPU), and what it means.
        figures = screen.query_one("#figures", Static)
        await wait_for(pilot, lambda: re.search(r"(?<!peak )memory +[\d.]+ [KMG]iB", shown(figures)))
        assert re.search(r"peak memory +[\d.]+ [KMG]iB", shown(figures)) and "GPU util" in shown(figures)
        assert any("resident memory (RSS)" in line.text for line in screen.query_one("#log", RichLog).lines)

        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: screen.state == "paused")
        assert "Paused" in shown(screen.query_one("#status", Static))
        paused_at = shown_iteration(screen)
        for _ in range(10):  # the figure must not move while paused: time passes, part of what is tested
            await pilot.pause(0.05)
            assert shown_iteration(screen) == paused_at

        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: shown_iteration(screen) > paused_at + 5)
        await pilot.press("ctrl+b")
        await workers_done(app)
        await wait_for(pilot, lambda: screen.state == "finished")

        assert "Finished (stopped)" in shown(screen.query_one("#status", Static))
        assert app.trainer is None
        (run_dir,) = paths.runs_dir().iterdir()
        assert (run_dir / "ckpt.pt").is_file()
        assert shown_iteration(screen) < 3000


async def test_invalid_setting_shows_error_and_blocks_start(dataset: str) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        await choose_tiny_preset(pilot, screen)
        await type_into(pilot, screen, {"n_embd": "32", "n_head": "3"})

        error = screen.query_one("#error-n_embd", Static)
        assert error.display and "multiple of n_head" in shown(error)
        assert screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert screen.state == "idle" and all(worker.group != "train" for worker in app.workers)
        assert not paths.runs_dir().exists() or not any(paths.runs_dir().iterdir())

        # A block larger than the data is refused too; fixing both enables Start again.
        await type_into(pilot, screen, {"n_head": "2", "block_size": "100000"})
        assert "block_size" in shown(screen.query_one("#error-block_size", Static))
        await type_into(pilot, screen, {"block_size": "16"})
        assert screen.form.problems == {} and not screen.query_one("#start", Button).disabled


async def test_the_form_works_before_torch_has_found_the_devices(dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainScreen, "load_devices", lambda self: None)  # torch never answers
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainScreen) and screen.state == "loading"
        assert screen.query_one("#cfg-n_layer", Input).value == "4"  # the cpu preset, from torch-free core
        await choose_tiny_preset(pilot, screen)
        assert screen.query_one("#cfg-n_layer", Input).value == "2"
        await type_into(pilot, screen, {"n_embd": "32", "n_head": "3", "learning_rate": "fast"})
        assert "multiple of n_head" in shown(screen.query_one("#error-n_embd", Static))
        assert "expected a number" in shown(screen.query_one("#error-learning_rate", Static))
        assert "looking for devices" in shown(screen.query_one("#error-form", Static))
        assert screen.query_one("#start", Button).disabled


async def test_diverging_run_shows_the_failure(dataset: str) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        await choose_tiny_preset(pilot, screen)
        await type_into(pilot, screen, {**TINY, "max_iters": "40", "learning_rate": "1e6"})
        await pilot.press("ctrl+r")
        await workers_done(app)
        await wait_for(pilot, lambda: screen.state == "failed")

        status = shown(screen.query_one("#status", Static))
        assert "Training failed" in status and "NaN" in status
        assert any(n.severity == "error" and "NaN" in n.message for n in notices(app))
        assert app.trainer is None
        # The screen still answers: the settings can be fixed and Start is offered again.
        assert not screen.query_one("#start", Button).disabled


# -- LossPlot ----------------------------------------------------------------------------------------


class PlotApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossPlot(title="loss", id="plot")


async def test_loss_plot_loads_a_history_and_toggles_views() -> None:
    steps = [[i, 3.0 - 0.01 * i, 64 * (i + 1), 0.5 * (i + 1)] for i in range(100)]
    evals = [[0, 3.0, 3.1], [50, 2.5, 2.6], [99, 2.0, 2.2]]
    async with PlotApp().run_test(size=(80, 24)) as pilot:
        plot = pilot.app.query_one(LossPlot)
        plot.load_history({"steps": steps, "evals": evals})
        await pilot.pause()

        assert [p.iter for p in plot.steps.points] == list(range(100))
        # Bias-corrected EMA, computed independently.
        ema = weight = 0.0
        for _, loss, _, _ in steps:
            ema = SMOOTHING * ema + (1 - SMOOTHING) * loss
            weight = SMOOTHING * weight + (1 - SMOOTHING)
        assert plot.steps.points[-1].y2 == pytest.approx(ema / weight)
        # Each eval sits at its iteration's tokens and time.
        assert [(p.iter, p.tokens, p.seconds, p.y) for p in plot.evals.points] == [
            (0, 64, 0.5, 3.1), (50, 64 * 51, 25.5, 2.6), (99, 6400, 50.0, 2.2)
        ]
        assert "x: steps" in shown(plot) and "y: linear" in shown(plot)
        plot.toggle_log_scale()
        plot.cycle_x_mode()
        await pilot.pause()
        assert "x: tokens" in shown(plot) and "y: log" in shown(plot) and "tokens seen" in shown(plot)
        # Drawing again gives the same picture (plotext scales log data in place while building).
        assert plot.render().plain == plot.render().plain
        plot.cycle_x_mode()
        await pilot.pause()
        assert "x: time" in shown(plot) and "seconds" in shown(plot)


def test_loss_plot_buffer_is_bounded_and_spans_the_run() -> None:
    plot = LossPlot()
    n = 10 * MAX_POINTS
    plot.add_steps(([i, 1.0, i, float(i)] for i in range(n)), redraw=False)
    iters = [p.iter for p in plot.steps.points]
    assert len(iters) < MAX_POINTS
    assert iters[0] == 0 and iters[-1] > n - 2 * plot.steps.stride
    assert len(set(b - a for a, b in zip(iters, iters[1:], strict=False))) == 1  # evenly spread


def test_loss_plot_skips_non_finite_losses() -> None:
    plot = LossPlot()
    plot.add_steps([[0, 2.0, 1, 0.1], [1, math.nan, 2, 0.2], [2, 1.0, 3, 0.3]], redraw=False)
    # The EMA ignores the NaN: it is the smoothing of 2.0 then 1.0.
    expected = (SMOOTHING * (1 - SMOOTHING) * 2.0 + (1 - SMOOTHING) * 1.0) / (1 - SMOOTHING**2)
    assert plot.steps.points[-1].y2 == pytest.approx(expected)


# -- the throttle ------------------------------------------------------------------------------------


def test_event_throttle_batches_steps_and_keeps_order() -> None:
    posts: list[list[object]] = []
    throttle = EventThrottle(posts.append, lambda e: e.kind == "step", interval=0.05)
    started = time.monotonic()
    events = []
    for i in range(20000):
        events.append(SimpleNamespace(kind="step", i=i))
        throttle(events[-1])
        if i % 5000 == 4999:
            events.append(SimpleNamespace(kind="eval", i=i))
            throttle(events[-1])
    throttle.flush()
    elapsed = time.monotonic() - started

    assert [e for batch in posts for e in batch] == events  # nothing lost, nothing reordered
    # At most one step batch per interval, plus one post per eval and the final flush.
    assert len(posts) <= elapsed / 0.05 + 1 + 4 + 1
    assert all(batch[-1].kind == "eval" for batch in posts if any(e.kind == "eval" for e in batch))


async def test_resuming_a_run_continues_its_curve(tiny_run: Path) -> None:
    from core.runs.checkpoint import load_checkpoint

    before = load_checkpoint(tiny_run / "ckpt.pt")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.resume_training(tiny_run / "ckpt.pt")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        await wait_for(pilot, lambda: screen.state == "idle" and screen.form.resume is not None and screen.form.resume.config is not None)
        await pilot.pause()
        await type_into(pilot, screen, {"max_iters": str(before["iter_num"] + 4)})
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state == "finished")
        plot = screen.query_one("#loss-plot", LossPlot)
        # The plot holds the run's earlier steps as well as the new ones, and the best val so far shows.
        iters = [p.iter for p in plot.steps.points]
        assert iters[0] == before["history"]["steps"][0][0] and iters[-1] == before["iter_num"] + 3
        assert "best val" in shown(screen.query_one("#figures", Static))
        assert "–" not in shown(screen.query_one("#figures", Static)).split("best val", 1)[1].split()[0]


async def test_a_resume_that_cannot_load_leaves_a_running_run_alone(dataset: str, tmp_path: Path) -> None:
    corrupt = tmp_path / "broken" / "ckpt.pt"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not a checkpoint")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(app, pilot)
        await type_into(pilot, screen, {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16",
                                        "batch_size": "4", "eval_interval": "100000", "max_iters": "100000"})
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state == "running")
        screen.set_resume(corrupt)
        await wait_for(pilot, lambda: any(n.severity == "error" for n in notices(app)))
        (note,) = [n for n in notices(app) if n.severity == "error"]
        assert str(corrupt) in note.title
        assert screen.state == "running" and screen.resume_path is None
        assert screen.query_one("#start", Button).disabled and app.trainer is not None
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: screen.state in ("finished", "stopped"))
