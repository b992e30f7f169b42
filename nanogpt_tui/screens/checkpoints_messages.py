"""What the Checkpoints screen's workers tell it (nanogpt_tui.screens.checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from core.common.disk import FolderSize

if TYPE_CHECKING:
    from core.runs.listing import CheckpointSummary


class Listed(Message):
    """The checkpoints found: every run's plus the opened ones, the listing's signature, and the run
    folders a process trains now (their locks are held)."""

    def __init__(
        self, summaries: list[CheckpointSummary], signature: tuple[Any, ...] | None = None,
        training: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.summaries = summaries
        self.signature = None if signature is None else (*signature, tuple(sorted(training)))
        self.training = training


@dataclass
class Opened(Message):
    """A path the user opened resolved to this checkpoint file."""

    path: Path


@dataclass
class ExportDone(Message):
    """An export wrote these files; `note` tells about the vocabulary."""

    files: list[Path]
    note: str


@dataclass
class RunSized(Message):
    """The run folder the user asked to delete holds this much (the dialog says so before asking)."""

    summary: CheckpointSummary
    size: FolderSize


@dataclass
class RunDeleted(Message):
    """A run folder's deletion ended: `error` is the OSError's text when it failed (part may be gone)."""

    name: str
    run_dir: Path
    error: str | None = None
