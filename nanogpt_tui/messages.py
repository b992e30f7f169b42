"""Messages shared by several screens, and those a screen posts up to the app for another screen.

A screen never calls another: it posts `OpenChat`, `ResumeTraining` or `WatchRun`, which bubble up to the
app (NanoGPTApp); the app shows the screen that acts on it (and hands the first two on to that screen).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message


class WorkFailed(Message):
    """A worker's error, for the user."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error


class DatasetsListed(Message):
    """The datasets in the data dir (`nanogpt_tui.listings.datasets`) and the listing's signature."""

    def __init__(self, signature: tuple[Any, ...], items: list[Any]) -> None:
        super().__init__()
        self.signature = signature
        self.items = items  # DatasetInfo, or (folder, error) for a broken one


@dataclass
class OpenChat(Message):
    """Chat with `checkpoint`: the app switches to the Chat screen and hands this on to it."""

    checkpoint: Path


@dataclass
class ResumeTraining(Message):
    """Set up resuming `run` (a run folder or checkpoint file): the app switches to the Train screen and
    hands this on to it."""

    run: Path


@dataclass
class WatchRun(Message):
    """Follow and steer the run in `run_dir` live: the app shows the Watch screen over the current one."""

    run_dir: Path
