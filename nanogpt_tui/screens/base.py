"""AppScreen: the base of the main screens, shown again without restyling every widget (the help screen
shares that through `KeepStyles`), with `self.app` typed as the NanoGPTApp whose reactives they share."""

from __future__ import annotations

import gc

from textual import events, getters, on
from textual.screen import Screen

from nanogpt_tui.app import NanoGPTApp


class KeepStyles(Screen):
    """For a screen shown many times: showing it again skips Textual's restyling of every widget.

    Textual re-applies the stylesheet to every widget of a screen each time it is shown again (measured:
    about half of a warm switch on the Train screen, which has ~150 widgets). Ours change no styles while
    hidden: a widget whose classes change restyles itself then, and a stylesheet change (a theme) makes
    Textual refresh the CSS of the screen it shows anyway. So resuming skips that pass.
    """

    @on(events.ScreenResume)
    def keep_styles(self, event: events.ScreenResume) -> None:
        # Textual calls each class's handlers, most derived first (a screen's own on_screen_resume too):
        # this one runs before the Screen's, which reads the flag.
        event.refresh_styles = False


CSS_SETTLE_S = 0.5  # after a screen mounts: its first view is painted by then (first visits: 0.2-0.35 s on 2 cores)


class AppScreen(KeepStyles):
    """One of the app's main screens (a Textual mode), switched to and from many times."""

    app = getters.app(NanoGPTApp)

    def on_mount(self) -> None:
        # A screen's widgets live as long as the app: once it is drawn, move them (and what else is alive)
        # out of the garbage collector's full passes, which otherwise walk them all, again and again,
        # while the next screen is built (measured: 50-170 ms of a first visit).
        self.call_after_refresh(gc.freeze)
        self.set_timer(CSS_SETTLE_S, self.settle_css)

    def settle_css(self) -> None:
        """Let Textual count this screen's styles as up to date, while the user looks at its first view.

        Textual refreshes the app's CSS when it first shows a screen, but before the screen is mounted, so it
        does not count the screen as up to date and refreshes the whole stylesheet again the next time the
        screen is shown (measured while training: 55-90 ms of the first switch back to Train or Model).
        Refreshed here, once the first view is painted (a switch holds the screen's first paint for 50 ms),
        that next switch is as quick as any other; done before the paint, it would delay the paint instead.
        """
        if self.app.screen is self:
            self.app.refresh_css(animate=False)
