"""Messages shared by several screens."""

from __future__ import annotations

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
