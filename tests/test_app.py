"""The app as a whole: screen keys, help, command palette, bindings, quitting during training."""

from __future__ import annotations

import pytest
from pilot_helpers import notices, wait_for
from textual.binding import Binding
from textual.color import Color
from textual.command import CommandList
from textual.widgets import Input, Markdown

from core.common import paths
from core.runs.checkpoint import load_checkpoint
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens import SCREENS, screen_class
from nanogpt_tui.screens.help import HelpScreen
from nanogpt_tui.screens.train import TrainScreen
from nanogpt_tui.widgets.dialogs import ConfirmModal, TextModal
from nanogpt_tui.widgets.loss_plot import LossPlot


async def test_function_keys_reach_every_screen_and_help() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        for mode, (key, _title, _what) in SCREENS.items():
            await pilot.press(key)
            assert app.current_mode == mode
            assert type(app.screen) is screen_class(mode)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        help_text = app.screen.query_one(Markdown).source
        for key, title, _ in SCREENS.values():
            assert f"| {key} | {title} |" in help_text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        # Help is built once and shown again (its Markdown is not parsed on every visit).
        shown = app.screen
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen) and app.screen.query_one(Markdown).source == help_text
        await pilot.press("f1")
        assert app.screen is shown


async def test_a_screen_shown_again_keeps_styles_that_changed_while_hidden() -> None:
    """Screens resume without Textual's restyling pass (AppScreen): what changed while hidden must still show."""
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        status = app.screen.query_one("#status")
        plain = status.styles.color
        await pilot.press("f2")
        status.set_classes("state-failed")  # as a failure reported while the user looks at another screen
        await pilot.press("f3")
        await pilot.pause()
        failed = status.styles.color
        assert failed != plain and failed == Color.parse(app.current_theme.to_color_system().generate()["error"])


def palette_offers(app: NanoGPTApp) -> list[str]:
    """The names of the commands the open command palette lists."""
    return [option.hit.text for option in app.screen.query_one(CommandList).options]


async def test_command_palette_switches_screens() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.current_mode == "data"
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"))
        await pilot.press(*"Checkpoints screen")
        await wait_for(pilot, lambda: palette_offers(app)[:1] == ["Checkpoints screen (f4)"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "checkpoints")


async def test_command_palette_offers_the_screens_actions() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.state == "idle")
        screen = app.screen
        plot = screen.query_one("#loss-plot", LossPlot)
        assert not plot.log_scale
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"))
        # Every key the footer offers now is there by its description (Start needs a dataset: not now).
        await wait_for(pilot, lambda: {"Log scale", "X axis"} <= set(palette_offers(app)))
        assert "Start" not in palette_offers(app)
        await pilot.press(*"Log scale")
        await wait_for(pilot, lambda: palette_offers(app)[:1] == ["Log scale"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: plot.log_scale)
        assert app.screen is screen


@pytest.mark.parametrize(
    "owner", [NanoGPTApp, *map(screen_class, NanoGPTApp.MODES), HelpScreen, ConfirmModal, TextModal], ids=lambda c: c.__name__
)
def test_every_binding_has_an_id_and_a_description(owner: type) -> None:
    bindings = [b for b in owner.BINDINGS if isinstance(b, Binding)]
    assert bindings and len(bindings) == len(owner.BINDINGS)
    for binding in bindings:
        assert binding.id, f"{owner.__name__}: {binding.key} has no id"
        assert binding.description, f"{owner.__name__}: {binding.key} has no description"
    ids = [b.id for b in bindings]
    assert len(ids) == len(set(ids))


async def test_quitting_during_training_keeps_the_latest_checkpoint(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.state == "idle")
        screen = app.screen
        for name, text in {"n_layer": "1", "n_embd": "16", "n_head": "2", "block_size": "16", "batch_size": "4",
                           "eval_interval": "100000", "max_iters": "100000", "warmup_iters": "10"}.items():
            screen.query_one(f"#cfg-{name}", Input).focus()
            await pilot.press("ctrl+a", "ctrl+k", *text)
        await pilot.pause()
        assert screen.form.problems == {}
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.trainer is not None and app.trainer.iter_num >= 5)
        # Exiting alone would also end the run (it cancels the worker): the quit key must stop it first.
        trainer = app.trainer
        stop = trainer.stop
        stopped = []
        trainer.stop = lambda: (stopped.append(trainer.iter_num), stop())[1]
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running)
        assert stopped and any(n.title == "Quitting" for n in notices(app))
    (run_dir,) = paths.runs_dir().iterdir()
    ckpt = load_checkpoint(run_dir / "ckpt.pt")
    # No eval ran (eval_interval is huge): this checkpoint was written by the stop that quitting asked for.
    assert 5 <= ckpt["iter_num"] < 100000
