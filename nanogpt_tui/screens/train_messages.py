"""The Train screen's workers' side (nanogpt_tui.screens.train): the messages they post, the slow work some
of them do (`find_devices`, `read_resume`: torch imported, nothing here touches a widget), and the phases a
run goes through (`Phase`: the Train screen's, and the Watch screen's for a run trained elsewhere)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from core.common.disk import FolderSize
from core.runs.events import Event
from core.settings.train_config import TrainConfig
from core.training.process import TrainerProcess
from nanogpt_tui.run_folders import FolderId, folder_id

# Seconds between UI updates from a stream of Step events. Every update costs CPU time on a core the
# trainer's threads also use (`bench tui` shows how much): 4 a second reads as live and keeps it cheap.
UPDATE_INTERVAL = 0.25


class Phase(str, enum.Enum):  # (enum.StrEnum is Python 3.11+; the project supports 3.10)
    """What a run is doing, as the Train screen (its own run) or the Watch screen (another process's, from its
    records) knows it; formats as its value ("idle"), as a StrEnum would. Watch uses the run's phases only."""

    LOADING = "loading"  # Train: looking for devices (torch is importing)
    IDLE = "idle"  # Train: no run yet
    STARTING = "starting"  # no Started event yet (Watch: no record of one)
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # the trainer ended without a Finished event (Train: its worker; Watch: its process)
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


TRAINING = (Phase.STARTING, Phase.RUNNING, Phase.PAUSED)


@dataclass
class DevicesReady(Message):
    """torch is imported: the devices (core.common.devices.DeviceInfo), the dtypes each takes, the default."""

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
    history: dict[str, Any]  # its loss history (core.runs.checkpoint), drawn until the resumed run starts
    best_val_loss: float


@dataclass
class ResumeFailed(Message):
    path: Path
    error: str


@dataclass
class ExistingRun(Message):
    """Start was pressed with the name of a trained run: what its folder holds (the dialog asks what to do)."""

    config: TrainConfig
    run: Path
    size: FolderSize


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


def find_devices() -> DevicesReady | DevicesFailed:
    """Import torch (seconds: call it in a worker); the devices, the dtypes each takes, the default."""
    try:
        from core.common import devices

        found = devices.list_devices()
        dtypes = {d.name: devices.supported_dtypes(devices.resolve_device(d.name)) for d in found if d.available}
        default = str(devices.resolve_device("auto"))
    except Exception as error:  # the app must stay up: the screen says it instead
        return DevicesFailed(f"{type(error).__name__}: {error}")
    return DevicesReady(found, dtypes, default)


def read_resume(path: Path) -> ResumeLoaded | ResumeFailed:
    """The settings and iteration of the checkpoint at `path` (a run folder or a file), read in a worker."""
    try:
        from core.runs.checkpoint import load_checkpoint, resolve_checkpoint

        resolved = resolve_checkpoint(str(path))
        ckpt = load_checkpoint(resolved)
    except Exception as error:
        return ResumeFailed(path, str(error))
    config = {**ckpt.get("config", {}), **ckpt.get("model_args", {})}
    return ResumeLoaded(path, resolved, config, int(ckpt.get("iter_num", 0)), folder_id(resolved.parent),
                        ckpt["history"], float(ckpt.get("best_val_loss", float("inf"))))
