"""The footer fits: at 100 columns every screen's footer shows all its keys, whole, with f1 Help first and
the palette's key on the right; at 200 it has room for the roomy style; narrower, the last keys are
hidden whole rather than cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.widgets.footer import Footer
from nanogpt_tui.widgets.loss_plot import LossPlot
from pilot_helpers import wait_for
from test_app import palette_offers

SMALL = (100, 30)


def footer_keys(app: NanoGPTApp) -> tuple[Footer, list[FooterKey], FooterKey]:
    """The screen's footer, its keys as drawn (palette's aside) and the palette's key."""
    footer = app.screen.query_one(Footer)
    keys = list(footer.query(FooterKey))
    palette = next(key for key in keys if key.has_class("-command-palette"))
    return footer, [key for key in keys if key is not palette], palette


async def settled(pilot: Pilot) -> None:
    """Let the footer recompose and fit itself (a step a frame: roomy, compact, hiding)."""
    for _ in range(4):
        await pilot.pause()


def assert_all_keys_fit(app: NanoGPTApp) -> None:
    footer, keys, palette = footer_keys(app)
    assert keys and keys[0].key == "f1"  # Help first
    hidden = [key.key for key in keys if not key.display]
    assert not hidden, f"hidden at {app.size.width} columns: {hidden}"
    for key in keys:
        # Drawn whole, left of the palette's key, which is drawn whole inside the screen.
        assert key.region.width > 0 and key.region.right <= palette.region.x, (key.key_display, key.description)
    assert palette.region.width > 0 and palette.region.right <= app.size.width
    # Every binding the footer shows has its key drawn (a group's first key stands for the group).
    drawn = {key.key for key in keys}
    missing = [b.binding.key for b in footer.shown_bindings() if b.binding.key not in drawn and b.binding.group is None]
    assert not missing


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


async def test_the_footer_is_roomy_at_200_columns_and_compact_at_100(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("f4")
        await settled(pilot)
        footer, keys, _ = footer_keys(app)
        assert not footer.compact
        assert [key.key_display for key in keys if key.description == ""][:6] == ["f2", "f3", "f4", "f5", "f6", "f7"]
        await pilot.resize_terminal(*SMALL)
        await settled(pilot)
        footer, keys, _ = footer_keys(app)
        assert footer.compact and "f2…f7" in [key.key_display for key in keys]
        assert_all_keys_fit(app)
        await pilot.resize_terminal(200, 50)
        await settled(pilot)
        assert not footer_keys(app)[0].compact  # roomy again once there is room


async def test_narrower_the_last_keys_are_hidden_whole_and_help_stays() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(80, 30)) as pilot:
        await pilot.press("f3")
        app.screen.query_one(LossPlot).focus()  # the plot's keys join the screen's
        await settled(pilot)
        _, keys, palette = footer_keys(app)
        shown = [key for key in keys if key.display]
        assert shown[0].key == "f1" and len(shown) < len(keys)
        assert shown[1].description == "Cursor"  # the focused widget's keys come before the screen's
        assert all(key.region.right <= palette.region.x for key in shown)
        assert not keys[-1].display and keys[-1].description == "Screens"  # the app's go first


async def test_the_palette_offers_the_focused_plots_keys_the_footer_leaves_out() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        plot = app.screen.query_one(LossPlot)
        plot.focus()
        await settled(pilot)
        assert "Clip spike" not in [key.description for key in footer_keys(app)[1]]
        clipped = plot.clip_y
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"))
        await pilot.press(*"Clip spike")
        await wait_for(pilot, lambda: palette_offers(app)[:1] == ["Clip spike"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: plot.clip_y != clipped)
