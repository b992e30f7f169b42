"""AppScreen: the base of the main screens, shown again without restyling every widget (the help screen
shares that through `KeepStyles`)."""

from __future__ import annotations

import gc

from textual import events
from textual.screen import Screen


class KeepStyles:
    """For a screen shown many times: showing it again skips Textual's restyling of every widget.

    Textual re-applies the stylesheet to every widget of a screen each time it is shown again (measured:
    about half of a warm switch on the Train screen, which has ~150 widgets). Ours change no styles while
    hidden: a widget whose classes change restyles itself then, and a stylesheet change (a theme) makes
    Textual refresh the CSS of the screen it shows anyway. So resuming skips that pass.
    """

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        event.refresh_styles = False
        super()._on_screen_resume(event)  # type: ignore[misc]  (the Screen's)


class AppScreen(KeepStyles, Screen):
    """One of the app's main screens (a Textual mode), switched to and from many times."""

    def on_mount(self) -> None:
        self.app.opened_screens[type(self)] = self  # type: ignore[attr-defined]  (NanoGPTApp's)
        # A screen's widgets live as long as the app: once it is drawn, move them (and what else is alive)
        # out of the garbage collector's full passes, which otherwise walk them all, again and again,
        # while the next screen is built (measured: 50-170 ms of a first visit).
        self.call_after_refresh(gc.freeze)
