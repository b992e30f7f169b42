"""The app's screens, one module each, and the table of the six main ones (Textual modes).

`SCREENS` drives the app's function keys, the command palette, the help page and the screen tabs at the top
of every screen (widgets/screen_tabs.py). Screen modules are imported by name (`screen_class`), so this
package imports none of them: the first paint waits only for the first screen's module.
"""

from __future__ import annotations

import importlib

from textual.screen import Screen

# mode name -> (key, title, what it is for), in the order of the tabs.
SCREENS: dict[str, tuple[str, str, str]] = {
    "data": ("f2", "Data", "Prepare a dataset from Tiny Shakespeare, a file or a folder"),
    "train": ("f3", "Train", "Train a model and watch its loss fall"),
    "checkpoints": ("f4", "Checkpoints", "Browse, inspect, resume and delete trained models"),
    "chat": ("f5", "Chat", "Generate text from a checkpoint"),
    "tokens": ("f6", "Tokens", "See how text splits into tokens"),
    "model": ("f7", "Model", "Look inside a model: parameters, attention, what each layer predicts"),
}

# mode name -> the screen's module and class. Only the first screen's module is imported before the first
# paint; the app's `warm_up` imports the others in the background, and a visit before that imports its own.
SCREEN_CLASSES: dict[str, str] = {
    "data": "nanogpt_tui.screens.data:DataScreen",
    "train": "nanogpt_tui.screens.train:TrainScreen",
    "checkpoints": "nanogpt_tui.screens.checkpoints:CheckpointsScreen",
    "chat": "nanogpt_tui.screens.chat:ChatScreen",
    "tokens": "nanogpt_tui.screens.tokens:TokensScreen",
    "model": "nanogpt_tui.screens.model:ModelScreen",
    "help": "nanogpt_tui.screens.help:HelpScreen",
    "watch": "nanogpt_tui.screens.watch:WatchScreen",  # pushed over a screen (the app's watch_run), not a mode
}


def screen_class(mode: str) -> type[Screen]:
    """The screen class of `mode` (or "help", "watch"), importing its module if need be."""
    module, _, name = SCREEN_CLASSES[mode].partition(":")
    return getattr(importlib.import_module(module), name)
