"""TerminalTimedApp: the app run headless, drawing each screen update as for a terminal, with a callback
for each update written: the screen-switch and training benches time and count screen updates with it.

Textual's headless driver (`run_test`) makes the app skip the drawing: an update is computed, then dropped.
`UpdateCountingDriver` says it is not headless, so the app renders each update to terminal output and
writes it, as to a terminal (updates held back while Textual masks a switch are not written); the driver
calls the app's `written()` for each screen update (not for the terminal commands the app also writes) and
drops the output. Public Textual API only: a Driver subclass, given to `App(driver_class=...)`, and
`run_test(headless=False)`.

Timings differ from those of the benches before (which counted an update once computed, written or not):
a screen's first visit now ends when the terminal would get it, after Textual's 50 ms switch mask.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from textual.drivers.headless_driver import HeadlessDriver

from nanogpt_tui.app import NanoGPTApp

# What the app writes besides screen updates: operating system commands (the mouse pointer's shape, say) and the bell.
OSC, BELL = "\x1b]", "\x07"


class UpdateCountingDriver(HeadlessDriver):
    """A driver with no terminal that the app writes to as to one; see the module docstring."""

    def __init__(self, app: TerminalTimedApp, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.written = app.written

    @property
    def is_headless(self) -> bool:
        return False  # so the app draws its updates and writes them here

    def write(self, data: str) -> None:
        if not data.startswith(OSC) and data != BELL:  # a screen update, not a terminal command
            self.written()


class TerminalTimedApp(NanoGPTApp):
    """NanoGPTApp that calls `written()` for each screen update it writes (run it with run_test(headless=False))."""

    # Textual reads a relative CSS_PATH beside the class that uses it: the app's stylesheet, beside the app.
    CSS_PATH = Path(inspect.getfile(NanoGPTApp)).with_name(str(NanoGPTApp.CSS_PATH))

    def __init__(self, written: Callable[[], None]) -> None:
        super().__init__(driver_class=UpdateCountingDriver)
        self.written = written
