"""At 100x30, a small terminal, every control can be reached and what matters is on screen."""

from __future__ import annotations

from pathlib import Path

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, DataTable

from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.widgets.checkpoint_table import COLUMNS
from pilot_helpers import wait_for

SMALL = (100, 30)
KEY_COLUMNS = ("name", "kind", "iters", "best val", "date")


def on_screen(pilot: Pilot, widget: Widget) -> bool:
    """The whole widget is drawn inside the terminal (not cut off, not scrolled away)."""
    screen = Region(0, 0, *pilot.app.size)
    return widget.region.area > 0 and screen.contains_region(widget.region)


async def tab_to(pilot: Pilot, widget: Widget, limit: int = 40) -> None:
    """Press tab until `widget` has focus, as a keyboard user would."""
    for _ in range(limit):
        if widget.has_focus:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached {widget!r}")


async def test_the_prepare_button_is_reachable_and_shown(small_text: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        button = app.screen.query_one("#data-prepare", Button)
        await tab_to(pilot, button)
        await pilot.pause()
        assert on_screen(pilot, button)


async def test_the_checkpoints_table_shows_its_key_columns(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        await pilot.pause()
        widths = [column.get_render_width(table) for column in table.ordered_columns]
        shown = sum(widths[: COLUMNS.index(KEY_COLUMNS[-1]) + 1])
        assert COLUMNS[: len(KEY_COLUMNS)] == KEY_COLUMNS
        assert shown <= table.scrollable_content_region.width


async def test_tokens_and_model_screens_fit(small_text: Path) -> None:
    from textual.widgets import Input, Tabs, TextArea

    from data.prepare import prepare
    from nanogpt_tui.widgets.token_panel import TokenPanel

    prepare(str(small_text), name="chars")
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f6")
        await wait_for(pilot, lambda: len(app.screen.query(TokenPanel)) == 2)
        await pilot.pause()
        assert on_screen(pilot, app.screen.query_one("#tokens-text", TextArea))
        for panel in app.screen.query(TokenPanel):
            assert on_screen(pilot, panel)  # both tokenizers side by side, whole
        await pilot.press("f7")
        await wait_for(pilot, lambda: bool(app.screen.query("#model-text")))
        await pilot.pause()
        for widget in (app.screen.query_one("#model-text", Input), app.screen.query_one(Tabs)):
            assert on_screen(pilot, widget)
