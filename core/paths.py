"""Where user data lives: datasets, runs (checkpoints), chat sessions, downloads, and the app's settings.

`$NANOGPT_TUI_HOME` overrides the platform's user data dir; the CLI's `--home DIR` sets it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

HOME_ENV = "NANOGPT_TUI_HOME"


def home() -> Path:
    """The root of all user data, created on first use."""
    override = os.environ.get(HOME_ENV)
    root = Path(override).expanduser() if override else Path(platformdirs.user_data_dir("nanogpt-tui"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def set_home(path: str | os.PathLike[str]) -> None:
    """Point this process (and its children) at another data dir."""
    os.environ[HOME_ENV] = str(Path(path).expanduser().resolve())


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    return _sub("datasets")


def runs_dir() -> Path:
    return _sub("runs")


def cache_dir() -> Path:
    return _sub("cache")


def sessions_dir() -> Path:
    """The Chat screen's saved conversations, one JSON file each."""
    return _sub("sessions")


def config_dir() -> Path:
    """The app's settings (e.g. Chat's sampling settings), created on first use.

    The platform's user config dir, unless a data dir was chosen (`--home`, `$NANOGPT_TUI_HOME`): then
    `HOME/config`, so a chosen home (a test's, a benchmark's) keeps everything in one place.
    """
    if os.environ.get(HOME_ENV):
        return _sub("config")
    root = Path(platformdirs.user_config_dir("nanogpt-tui"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def temporary_home(prefix: str = "nanogpt-tui-") -> Iterator[Path]:
    """Point the data dir at a fresh temporary folder for the block (benchmarks), then restore it."""
    previous = os.environ.get(HOME_ENV)
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        os.environ[HOME_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop(HOME_ENV, None)
            else:
                os.environ[HOME_ENV] = previous
