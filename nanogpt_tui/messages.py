"""Messages shared by several screens."""

from __future__ import annotations

from textual.message import Message


class WorkFailed(Message):
    """A worker's error, for the user."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error
