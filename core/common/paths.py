"""Where user data lives: datasets, runs (checkpoints), chat sessions, downloads, and the app's settings.

`$NANOGPT_TUI_HOME` overrides the platform's user data dir; the CLI's `--home DIR` sets it. Each folder is
created on first use where it can be; on a read-only home the paths are returned all the same (readers
find nothing, writers fail with one line) and `home_problem` words what cannot be done.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

HOME_ENV = "NANOGPT_TUI_HOME"
# One folder name: no separators, no leading "." (so no "..", no hidden folders), nothing empty.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")


class BadName(ValueError):
    """A dataset or run name that is not one plain folder name."""


def check_name(name: object, what: str = "name") -> str:
    """`name` if it is one plain folder name (letters, digits, _ . + -, not starting with . or -), else BadName.

    Every name that becomes a folder under the data dir passes here, whether a user typed it or a
    file (dataset.json, a checkpoint) holds it: a name can never lead outside its folder.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BadName(
            f"bad {what} {name!r}: use up to 100 letters, digits, '_', '.', '+' or '-', "
            "starting with a letter, digit or '_'"
        )
    return name


def home() -> Path:
    """The root of all user data, created on first use (where it can be: see `_made`)."""
    override = os.environ.get(HOME_ENV)
    return _made(Path(override).expanduser() if override else Path(platformdirs.user_data_dir("nanogpt-tui")))


def _made(path: Path) -> Path:
    """`path`, created with its parents if it is missing and can be. On a read-only disk (or without the
    permission) it is returned all the same: a reader finds nothing in it, and a writer, which creates the
    folders it writes into, fails with one line saying why (core.common.disk.DiskWriteError)."""
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)
    return path


def home_problem() -> str | None:
    """What cannot be done because the data folder cannot be written (a read-only disk, no permission),
    in a line for the user; None when it can be written."""
    root = home()
    if os.access(root, os.W_OK):
        return None
    why = "is on a read-only file system" if _read_only(root) else "cannot be written (no permission, or missing)"
    return (f"The data folder {shown(root)} {why}: datasets, runs and models there can be looked at, but nothing "
            "can be prepared, trained, downloaded or saved. Choose another with --home DIR or $" + HOME_ENV + ".")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # (no statvfs on Windows)
        return False


def set_home(path: str | os.PathLike[str]) -> None:
    """Point this process (and its children) at another data dir."""
    os.environ[HOME_ENV] = str(Path(path).expanduser().resolve())


def shown(path: str | os.PathLike[str]) -> str:
    """A path as the screens show it: the user's home folder as `~` (shorter, and no user name)."""
    text, user_home = str(path), str(Path.home())
    if user_home not in ("", "/") and (text == user_home or text.startswith(user_home + os.sep)):
        return "~" + text[len(user_home):]
    return text


def _sub(name: str) -> Path:
    return _made(home() / name)


def datasets_dir() -> Path:
    return _sub("datasets")


def runs_dir() -> Path:
    return _sub("runs")


def cache_dir() -> Path:
    return _sub("cache")


def dataset_dir(name: str) -> Path:
    """The folder of dataset `name` (checked: always directly inside datasets/)."""
    return datasets_dir() / check_name(name, "dataset name")


def run_dir(name: str) -> Path:
    """The folder of run `name` (checked: always directly inside runs/)."""
    return runs_dir() / check_name(name, "run name")


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
    return _made(Path(platformdirs.user_config_dir("nanogpt-tui")))


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
