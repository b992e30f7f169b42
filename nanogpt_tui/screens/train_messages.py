"""What the Train screen's workers tell it, and the phases the screen goes through (nanogpt_tui.screens.train)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from core.train_events import Event
from core.train_process import TrainerProcess
from nanogpt_tui.run_folders import FolderId

# Seconds between UI updates from a stream of Step events. Every update costs CPU time on a core the
# trainer's threads also use (`bench tui` shows how much): 4 a second reads as live and keeps it cheap.
UPDATE_INTERVAL = 0.25


class Phase(str, enum.Enum):  # (enum.StrEnum is Python 3.11+; the project supports 3.10)
    """What the screen is doing; formats as its value ("idle"), as a StrEnum would."""

    LOADING = "loading"  # looking for devices (torch is importing)
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"  # the worker ended without a Finished event
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


TRAINING = (Phase.STARTING, Phase.RUNNING, Phase.PAUSED)


@dataclass
class DevicesReady(Message):
    """torch is imported: the devices (core.devices.DeviceInfo), the dtypes each takes, the default."""

    devices: list[Any]
    dtypes: dict[str, dict[str, str | None]]
    default_device: str


@dataclass
class DevicesFailed(Message):
    error: str


@dataclass
class ResumeLoaded(Message):
    """The settings (TrainConfig as a dict) and iteration of the checkpoint to resume."""

    path: Path  # as asked for: a run folder or a checkpoint file
    checkpoint: Path  # the file it resolved to
    config: dict[str, Any]
    iter_num: int
    folder: FolderId | None  # the run folder's folder_id, to follow a rename


@dataclass
class ResumeFailed(Message):
    path: Path
    error: str


@dataclass
class TrainingStarted(Message):
    trainer: TrainerProcess


@dataclass
class TrainerEvents(Message):
    """A batch of trainer events, in order (Steps at most every UPDATE_INTERVAL, others at once)."""

    events: list[Event]


@dataclass
class FoldersMoved(Message):
    """Run folders the screen shows that were renamed (old -> new) or deleted (old -> None)."""

    moved: dict[Path, Path | None]
