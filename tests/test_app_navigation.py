"""Where am I, and how do I get elsewhere: every screen names all six screens with their keys and marks the
current one (the tabs at the top), the Watch and Compare screens say where they are and how to go back,
and F1 names keys as they are printed on the keyboard. Assertions read the lines the widgets draw."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.widgets import Markdown, Static

from nanogpt_tui import listings
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens import SCREENS
from nanogpt_tui.screens.compare import CompareScreen
from nanogpt_tui.screens.help import HelpScreen
from nanogpt_tui.widgets.screen_tabs import MARK, ScreenTabs
from pilot_helpers import wait_for

SMALL = (100, 30)


def tabs_line(app: NanoGPTApp) -> str:
    """The top line of the screen shown, as drawn."""
    tabs = app.screen.query_one(ScreenTabs)
    assert tabs.region.y == 0 and tabs.region.width == app.size.width  # the whole top line
    line = tabs.render_line(0).text
    assert len(line) <= app.size.width
    return line


def assert_names_every_screen(line: str, current: str) -> None:
    """All six `key title` in the table's order, the current one (and only it) marked."""
    at = 0
    for mode, (key, title, _) in SCREENS.items():
        found = line.find(f"{key} {title}", at)
        assert found >= at, (key, title, line)
        marked = line[found - 2: found] == f"{MARK} "
        assert marked == (mode == current), (mode, line)
        at = found
    assert line.count(MARK) == 1


@pytest.mark.parametrize("mode", list(SCREENS))
async def test_each_screen_names_every_screen_and_marks_itself_at_100_columns(mode: str) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press(SCREENS[mode][0])
        await pilot.pause()
        assert app.current_mode == mode
        assert_names_every_screen(tabs_line(app), mode)


async def test_wide_the_tabs_also_name_the_app_and_a_click_on_a_tab_switches_to_it() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(200, 50)) as pilot:
        for mode, (key, _, _) in SCREENS.items():
            await pilot.press(key)
            await pilot.pause()
            line = tabs_line(app)
            assert_names_every_screen(line, mode)
            assert line.rstrip().endswith("nanoGPT TUI")
        await pilot.click(ScreenTabs, offset=(line.index("f6 Tokens"), 0))
        await wait_for(pilot, lambda: app.current_mode == "tokens")
        assert_names_every_screen(tabs_line(app), "tokens")


async def test_watch_and_compare_say_where_they_are_and_how_to_go_back(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f4")
        checkpoints = app.screen
        app.watch_run(tiny_run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "WatchScreen")
        await pilot.pause()
        line = tabs_line(app)
        assert_names_every_screen(line, "checkpoints")  # over the Checkpoints screen
        assert f"› Watch {tiny_run.name} · esc back" in line
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is checkpoints)

        summary = listings.checkpoint_summary(tiny_run / "ckpt.pt")
        app.push_screen(CompareScreen([summary, summary]))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause()
        line = tabs_line(app)
        assert_names_every_screen(line, "checkpoints")
        assert "› Compare 2 runs · esc back" in line
        await pilot.click(ScreenTabs, offset=(line.index("esc back"), 0))  # the way back is a link too
        await wait_for(pilot, lambda: app.screen is checkpoints)


def shown_text(widget: Static) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def test_help_names_keys_as_printed_and_numbers_only_keys() -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("f7")  # the Model screen: [ ] , . bindings
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        keys = shown_text(app.screen.query_one("#help-screen-keys", Static))
        assert "Keys on the Model screen" in keys
        assert "[ / pgup" in keys and "] / pgdn" in keys and ", / alt+←" in keys and "ctrl+t" in keys
        for name in ("left_square_bracket", "right_square_bracket", "comma", "full_stop", "pageup"):
            assert name not in keys
        tour = app.screen.query_one(Markdown).source
        assert not re.search(r"^\s*\d+\.", tour, re.M)  # no numbered list: the only numbers are f-keys
        for key, title, _ in SCREENS.values():
            assert f"**{key} {title}**" in tour


async def test_a_screen_shown_again_is_not_restyled_from_scratch(monkeypatch: pytest.MonkeyPatch, char_dataset) -> None:
    """Once a screen has settled after its first view, switching back to it does not make Textual refresh
    the app's whole stylesheet (that refresh was most of a slow first switch back while training)."""
    from textual.app import App

    refreshed: list[str] = []  # the mode shown at each refresh of the app's CSS
    refresh_css = App.refresh_css

    def recording(app: App, animate: bool = True) -> None:
        refreshed.append(app.current_mode)
        refresh_css(app, animate)

    monkeypatch.setattr(App, "refresh_css", recording)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        first = app.current_mode
        other = "checkpoints" if first != "checkpoints" else "tokens"
        await pilot.press(SCREENS[other][0])
        # Textual refreshes once as it shows a new screen, before the screen is mounted; the screen's
        # own refresh follows once its first view is painted.
        await wait_for(pilot, lambda: app.current_mode == other and refreshed.count(other) >= 2)
        await pilot.press(SCREENS[first][0])  # back to a screen shown before: no new one is made
        await wait_for(pilot, lambda: app.current_mode == first)
        await pilot.pause()
        refreshed.clear()
        await pilot.press(SCREENS[other][0])
        await wait_for(pilot, lambda: app.current_mode == other)
        await pilot.pause()
        assert refreshed == []


def note_warm_up(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """A list that gets an item once the app has handled the end of its warm-up (`on_warmed_up`)."""
    warmed: list[bool] = []
    warm_up_done = NanoGPTApp.on_warmed_up

    def noting(app: NanoGPTApp) -> None:
        warm_up_done(app)
        warmed.append(True)

    monkeypatch.setattr(NanoGPTApp, "on_warmed_up", noting)
    return warmed


async def test_no_first_visit_reads_its_stylesheet_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the app has warmed up, every screen's stylesheet is read: a first visit does not read its file
    and parse the whole stylesheet again. (The paths are the ones Textual gives each screen.)"""
    from textual.css.stylesheet import Stylesheet

    read: list[str] = []
    original = Stylesheet.read

    def recording(stylesheet: Stylesheet, filename: str) -> None:
        read.append(str(filename))
        original(stylesheet, filename)

    monkeypatch.setattr(Stylesheet, "read", recording)
    warmed = note_warm_up(monkeypatch)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: bool(warmed))
        read.clear()
        for mode, (key, _, _) in SCREENS.items():
            await pilot.press(key)
            await wait_for(pilot, lambda: app.current_mode == mode)
            assert all(app.stylesheet.has_source(str(path)) for path in app.screen.css_path), mode
        assert read == []


async def test_a_missing_stylesheet_does_not_stop_the_app_warming_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install (a screen's .tcss gone) is the screen's to report on its visit, not the launch's."""
    from nanogpt_tui.screens.model import ModelScreen

    monkeypatch.setattr(ModelScreen, "CSS_PATH", "missing.tcss")
    warmed = note_warm_up(monkeypatch)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: bool(warmed))
        await pilot.press(SCREENS["chat"][0])
        await wait_for(pilot, lambda: app.current_mode == "chat")
        assert all(app.stylesheet.has_source(str(path)) for path in app.screen.css_path)
