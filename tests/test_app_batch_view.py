"""What a training example is, on the Data screen: a window of token ids with their text, and the targets
(the same window shifted by one) aligned under it; e draws another."""

from __future__ import annotations

import numpy as np
from pilot_helpers import wait_for
from textual.widgets import DataTable

from core.dataset.example import training_example
from core.dataset.format import open_split
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.screens.data_messages import EXAMPLE_TOKENS
from nanogpt_tui.widgets.batch_view import BatchView, render_example
from nanogpt_tui.widgets.settings_form import DEFAULT_CONFIG


def test_an_example_is_a_window_and_its_shift(char_dataset) -> None:
    example = training_example(char_dataset, 16, seed=3)
    data = np.asarray(open_split(char_dataset, "train"))
    assert example.x == data[example.start : example.start + 16].tolist()
    assert example.y == data[example.start + 1 : example.start + 17].tolist()
    assert example.y[:-1] == example.x[1:] and len(example.x_text) == 16
    short = training_example(char_dataset, 16, seed=3, shown=5)
    assert short.x == example.x[:5] and short.block_size == 16


def test_the_drawing_wraps_to_the_width_keeping_targets_under_inputs(char_dataset) -> None:
    example = training_example(char_dataset, 40, seed=1)
    lines = render_example(example, 50).plain.splitlines()
    rows = [line for line in lines if line.startswith(("x id", "y id"))]
    assert len(rows) >= 4 and all(len(line) <= 50 for line in rows)  # wrapped, never wider than asked
    for x_row, y_row in zip(rows[::2], rows[1::2]):  # each y id under the x id one to its right
        xs, ys = x_row.split()[2:], y_row.split()[2:]
        assert xs[1:] == ys[:-1]
    assert f"when the input is {example.x_text[0]!r}" in render_example(example, 50).plain.replace("·", " ")


async def test_the_data_screen_shows_an_example_and_e_draws_another(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")  # (with a dataset prepared, the app opens on Train)
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen))
        screen = app.screen
        view = screen.query_one("#data-example", BatchView)
        await wait_for(pilot, lambda: view.example is not None)
        first = view.example
        assert first.block_size == DEFAULT_CONFIG.block_size and len(first.x) == EXAMPLE_TOKENS
        data = np.asarray(open_split(char_dataset, "train"))
        assert first.x == data[first.start : first.start + EXAMPLE_TOKENS].tolist()
        shown = str(view.render())
        assert "y id" in shown and "the target is" in shown
        screen.query_one("#data-table", DataTable).focus()
        await pilot.press("e")
        await wait_for(pilot, lambda: view.example is not first)
        assert view.example.y[:-1] == view.example.x[1:]
