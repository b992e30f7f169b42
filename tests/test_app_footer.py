"""The footer fits: at 100 columns every screen's footer shows all its keys, whole, with f1 Help first and
the palette's key on the right; narrower, one space between keys, then the last keys are left out whole.
Assertions read the line the footer draws (`render_line`), as the terminal shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.widgets.footer import KeyFooter, KeyHint
from nanogpt_tui.widgets.loss_plot import LossPlot
from pilot_helpers import wait_for
from test_app import palette_offers

SMALL = (100, 30)


def drawn(hint: KeyHint) -> str:
    return f"{hint.keys} {hint.description}"


def footer_line(app: NanoGPTApp) -> tuple[KeyFooter, str]:
    """The screen's footer and the line it draws."""
    footer = app.screen.query_one(KeyFooter)
    return footer, footer.render_line(0).text


async def settled(pilot: Pilot) -> None:
    """Let the footer take the screen's keys and draw them."""
    for _ in range(3):
        await pilot.pause()


def assert_footer_drawn_whole(app: NanoGPTApp) -> tuple[KeyFooter, str]:
    """The keys drawn are the first of those on offer, each whole and in order, Help first, the palette's
    key at the right end, all within the screen's width on its last line."""
    footer, line = footer_line(app)
    width = app.size.width
    assert footer.region.bottom == app.size.height and footer.region.width == width
    assert len(line) == width
    assert footer.hints and footer.hints[0].description == "Help" and footer.hints[0].keys == "f1"
    assert footer.shown == footer.hints[: len(footer.shown)] and footer.shown
    assert footer.palette is not None and line.rstrip().endswith(drawn(footer.palette))
    at = 0
    for hint in footer.shown:
        found = line.find(drawn(hint), at)
        assert found > at - 1, (drawn(hint), line)
        at = found + len(drawn(hint))
    assert at <= line.rstrip().rfind(drawn(footer.palette))
    for hint in footer.hints[len(footer.shown):]:  # left out whole: not even a piece of it
        assert drawn(hint) not in line and f" {hint.keys} " not in line
    return footer, line


def assert_all_keys_fit(app: NanoGPTApp) -> None:
    footer, _ = assert_footer_drawn_whole(app)
    left_out = [drawn(hint) for hint in footer.hints[len(footer.shown):]]
    assert not left_out, f"left out at {app.size.width} columns: {left_out}"


@pytest.mark.parametrize("key", ["f2", "f3", "f5", "f6", "f7"])
async def test_every_screens_footer_fits_at_100_columns(key: str) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press(key)
        await settled(pilot)
        assert_all_keys_fit(app)


async def test_checkpoints_and_watch_footers_fit_at_100_columns(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        await settled(pilot)
        assert_all_keys_fit(app)
        app.watch_run(tiny_run)
        await settled(pilot)
        assert type(app.screen).__name__ == "WatchScreen"
        assert_all_keys_fit(app)


async def test_the_footer_is_roomy_when_there_is_room_and_leaves_out_the_last_keys_when_not(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("f4")
        await settled(pilot)
        footer, line = assert_footer_drawn_whole(app)
        assert footer.shown == footer.hints
        assert "  ".join(drawn(hint) for hint in footer.hints) in line  # two spaces apart
        everything = footer.hints
        for width in (100, 80, 60, 40, 24):
            await pilot.resize_terminal(width, 30)
            await settled(pilot)
            footer, line = assert_footer_drawn_whole(app)
            assert footer.hints == everything
            if footer.shown != footer.hints:  # keys left out: only once one space apart did not fit
                assert " ".join(drawn(hint) for hint in footer.shown) in line
        assert footer.shown == footer.hints[:1]  # at 24 columns: Help alone, never left out
        await pilot.resize_terminal(200, 50)
        await settled(pilot)
        footer, line = assert_footer_drawn_whole(app)
        assert footer.shown == footer.hints and "  ".join(drawn(hint) for hint in footer.hints) in line


async def test_narrower_the_last_keys_are_left_out_whole_and_help_stays() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(60, 30)) as pilot:
        await pilot.press("f3")
        app.screen.query_one(LossPlot).focus()  # the plot's keys join the screen's
        await settled(pilot)
        footer, _ = assert_footer_drawn_whole(app)
        assert footer.shown[0].keys == "f1" and len(footer.shown) < len(footer.hints)
        assert footer.shown[1].description == "Cursor"  # the focused widget's keys come before the screen's
        assert footer.hints[-1] not in footer.shown


async def test_a_click_on_a_key_presses_it() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f5")
        screen = app.screen
        await settled(pilot)
        _, line = footer_line(app)
        session = screen.session
        await pilot.click(KeyFooter, offset=(line.index("New chat"), 0))
        await wait_for(pilot, lambda: screen.session is not session)
        await pilot.click(KeyFooter, offset=(line.index("f1 Help"), 0))
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")


async def test_the_palette_offers_the_focused_plots_keys_the_footer_leaves_out() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        plot = app.screen.query_one(LossPlot)
        plot.focus()
        await settled(pilot)
        assert "Clip spike" not in [hint.description for hint in footer_line(app)[0].hints]
        clipped = plot.clip_y
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"))
        await pilot.press(*"Clip spike")
        await wait_for(pilot, lambda: palette_offers(app)[:1] == ["Clip spike"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: plot.clip_y != clipped)
