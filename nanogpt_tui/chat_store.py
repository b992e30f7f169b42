"""What the Chat screen keeps on disk: its settings and its conversations (no Textual, no torch).

- Settings: one small JSON object in the config dir (`core.common.paths.config_dir()`, `chat.json`): the
  sampling settings, stop strings, precision and colouring, as the panel stores them.
- Sessions: one JSON file per conversation in `core.common.paths.sessions_dir()`, named by the session's id:
  `{"version": 1, "id", "checkpoint" (path or null), "created", "updated" (ISO 8601),
  "turns": [{"prompt": str, "reply": [[token_id, text, prob], ...]}, ...]}`. A session read back takes
  its id from its file's name, never from the "id" inside (which could name a path elsewhere).

Every file is written atomically (core.common.disk.write_atomic), so a crash leaves the old version or
the new one, never half of one; and in the order the data was taken (`NewestWins`): an older snapshot
whose write ends last is dropped. Every file is read through core.common.safe_files: never through a
link, never a FIFO or device, at most MAX_SETTINGS_BYTES / MAX_SESSION_BYTES, JSON nested at most
safe_files.MAX_DEPTH; a file that fails is a StoreError naming it. Reading and writing block on the
disk: call these from thread workers.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.common import paths, safe_files
from core.common.disk import write_text_atomic

SETTINGS_FILE = "chat.json"
MAX_SETTINGS_BYTES = 64 * 2**10  # the panel's settings and stop strings take well under 1 kB
MAX_SESSION_BYTES = 32 * 2**20  # a reply token is saved in about 30 bytes: a million tokens of conversation
SESSION_VERSION = 1
PieceData = tuple[int, str, float]  # a generated token as saved: id, the text it released, its probability


class StoreError(Exception):
    """A settings or session file that cannot be read or does not hold what it should."""


class NewestWins:
    """Atomic JSON writes of files that several worker threads write: each write carries a version taken
    when its data was snapshotted (on the UI thread, `new_version`), and a write older than the last one
    that reached its file is dropped, so a slow write of an old snapshot never lands over a newer one.

    The JSON is written outside the lock (no writer waits on another's disk); the check and the move
    into place (core.common.disk.write_atomic's `replace` step) are one step under it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions = itertools.count(1)  # for the whole process: every write in one order
        self._written: dict[Path, int] = {}  # the newest version that reached each file

    def new_version(self) -> int:
        """A number for data about to be written, newer than any before it."""
        return next(self._versions)

    def write(self, path: Path, data: Any, version: int) -> bool:
        """Write `data` to `path` atomically unless a newer version got there first; True if it was written.
        DiskWriteError (an OSError) on a full or read-only disk."""
        text = json.dumps(data, ensure_ascii=False, indent=1)

        def replace_if_newest(temp: str, target: Path) -> bool:
            with self._lock:
                if version <= self._written.get(target, 0):
                    return False
                os.replace(temp, target)
                self._written[target] = version
                return True

        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, text, what=f"save {path.name}", replace=replace_if_newest)


_writes = NewestWins()
new_version = _writes.new_version


def read_json_object(path: Path, limit: int) -> dict[str, Any]:
    """The JSON object in `path`, read through core.common.safe_files (a regular file of at most `limit`
    bytes, never through a link, JSON nested at most MAX_DEPTH); StoreError naming the file otherwise."""
    try:
        return safe_files.read_json_object(path, limit)
    except OSError as error:  # UnsafeFile's message names the file; others say why it cannot be read
        raise StoreError(str(error) if isinstance(error, safe_files.UnsafeFile) else f"{path}: {error.strerror or error}") from None


# -- settings --------------------------------------------------------------------------------------------


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


def read_settings() -> dict[str, Any]:
    """The saved settings ({} when none were saved); StoreError for a file that cannot be used."""
    path = settings_path()
    if not (path.exists() or path.is_symlink()):
        return {}
    return read_json_object(path, MAX_SETTINGS_BYTES)


def write_settings(values: dict[str, Any], version: int) -> None:
    """Save the settings; `version` (from new_version, when they were read off the panel) orders writes
    from several threads: older ones are dropped."""
    _writes.write(settings_path(), values, version)


# -- sessions --------------------------------------------------------------------------------------------


@dataclass
class Session:
    """A conversation as saved: its turns as (prompt, reply tokens)."""

    id: str
    checkpoint: str | None
    created: str
    turns: list[tuple[str, list[PieceData]]]

    @property
    def path(self) -> Path:
        return paths.sessions_dir() / f"{self.id}.json"


@dataclass
class SessionSummary:
    """One line of the sessions list; `error` for a file that cannot be read."""

    path: Path
    updated: str = ""
    checkpoint: str | None = None
    turns: int = 0
    title: str = ""
    error: str | None = None


def new_session_id() -> str:
    """Sortable by time, unique enough for one user: 20261126-213000-3fa2."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def save_session(session: Session, version: int) -> Path:
    """Save the session atomically; `version` (from new_version, when the snapshot was taken) makes the
    newest snapshot win when saves overlap."""
    turns = [{"prompt": prompt, "reply": [list(piece) for piece in reply]} for prompt, reply in session.turns]
    data = {
        "version": SESSION_VERSION, "id": session.id, "checkpoint": session.checkpoint,
        "created": session.created, "updated": datetime.now().isoformat(), "turns": turns,
    }
    _writes.write(session.path, data, version)
    return session.path


def _piece(value: Any) -> PieceData:
    token_id, text, prob = value  # ValueError / TypeError for anything else
    if not (isinstance(token_id, int) and isinstance(text, str) and isinstance(prob, (int, float))):
        raise TypeError("a reply token is [id, text, probability]")
    return token_id, text, float(prob)


def load_session(path: Path) -> Session:
    """The session saved in `path`; StoreError naming the file when it is not one."""
    return _session(path, read_json_object(path, MAX_SESSION_BYTES))


def _session(path: Path, data: dict[str, Any]) -> Session:
    try:
        turns = [(str(turn["prompt"]), [_piece(piece) for piece in turn["reply"]]) for turn in data["turns"]]
        checkpoint = data.get("checkpoint")
        # Its id is its file's name, not the one written inside: a session saved again goes back to the
        # file it came from, and an id from a file can never name a path outside the sessions folder.
        return Session(path.stem, str(checkpoint) if checkpoint else None, str(data.get("created", "")), turns)
    except (KeyError, TypeError, ValueError) as error:
        raise StoreError(f"{path}: not a chat session ({type(error).__name__}: {error})") from None


def title_of(turns: list[tuple[str, list[PieceData]]], width: int = 60) -> str:
    """A line that names a conversation: its first prompt, else the start of its first reply."""
    text = next((prompt for prompt, _ in turns if prompt.strip()), "")
    if not text and turns:
        text = "".join(piece[1] for piece in turns[0][1])
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def list_sessions() -> list[SessionSummary]:
    """Every saved session, the most recently updated first; unreadable files last, with their error."""
    good: list[tuple[str, SessionSummary]] = []
    bad: list[SessionSummary] = []
    for path in sorted(paths.sessions_dir().glob("*.json")):
        try:
            data = read_json_object(path, MAX_SESSION_BYTES)
            session = _session(path, data)
        except StoreError as error:
            bad.append(SessionSummary(path, error=str(error)))
            continue
        updated = str(data.get("updated", session.created))
        summary = SessionSummary(path, updated, session.checkpoint, len(session.turns), title_of(session.turns))
        good.append((updated, summary))
    good.sort(key=lambda item: item[0], reverse=True)
    return [summary for _, summary in good] + bad
