"""ScreenTabs: the line at the top of every screen, naming each screen with its key, the current one marked.

 f2 Data ▸ f3 Train  f4 Checkpoints  f5 Chat  f6 Tokens  f7 Model                            nanoGPT TUI

A screen pushed over one (Watch, Compare) says where the user is and which key goes back after the tabs:
"› Watch shakespeare · esc back" (the tab of the screen under it stays marked). A click on a tab switches to
that screen, a click on the way back goes back. The marker is a character, not only a colour, so it shows
in any terminal. One widget drawing one line (no widget per tab): cheap to build on a screen's first visit.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from nanogpt_tui.screens import SCREENS

MARK = "▸"  # before the current screen's tab
TITLE = "nanoGPT TUI"  # on the right, where there is room


class ScreenTabs(Widget):
    """Every screen's key and name; the current one marked; a pushed screen's place and way back."""

    DEFAULT_CSS = """
    ScreenTabs {
        dock: top;
        height: 1;
        background: $panel;
        link-style: none;
        link-background-hover: $primary 40%;
    }
    """

    def __init__(self, place: str = "", back: tuple[str, str] | None = None) -> None:
        """`place`: a pushed screen's name and what it shows ("Watch shakespeare"); `back`: the key that goes
        back from it and the screen's action for it (("esc", "back"))."""
        super().__init__()
        self.place = place
        self.back = back

    def tabs(self) -> Content:
        current = self.app.current_mode
        tabs: list[Content] = []
        for mode, (key, title, _) in SCREENS.items():
            if mode == current:
                tabs.append(Content.styled(f"{MARK} {key} {title} ", "bold $text on $primary"))
            else:
                tabs.append(Content.from_markup(f"[@click=app.switch_mode('{mode}')] $key [b]$title[/b] [/]",
                                                key=key, title=title))
        return Content.assemble(*tabs)

    def way_here(self, room: int) -> Content:
        """" › Watch shakespeare · esc back", the place cut short to fit in `room` cells (the way back is kept)."""
        back = Content()
        if self.back:
            key, action = self.back
            back = Content.from_markup(f" · [@click=screen.{action}]$key back[/]", key=key)
        fits = room - 3 - back.cell_length
        place = self.place if len(self.place) <= fits else self.place[: max(1, fits - 1)] + "…"
        return Content(" › ") + Content.styled(place, "bold") + back

    def render(self) -> Content:
        width = self.size.width
        line = self.tabs()
        if self.place:
            line += self.way_here(width - line.cell_length)
        if line.cell_length + len(TITLE) + 2 <= width:  # the app's name, on the right
            line += Content(" " * (width - line.cell_length - len(TITLE) - 1)) + Content.styled(TITLE, "dim") + " "
        return line
