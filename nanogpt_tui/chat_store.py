"""What the Chat screen keeps on disk: its settings and its conversations (no Textual, no torch).

- Settings: one small JSON object in the config dir (`core.common.paths.config_dir()`, `chat.json`): the
  sampling settings, stop strings, precision and colouring, as the panel stores them.
- Sessions: one JSON file per conversation in `core.common.paths.sessions_dir()`, named by the session's id:
  `{"version": 1, "id", "checkpoint" (path or null), "created", "updated" (ISO 8601),
  "turns": [{"prompt": str, "reply": [[token_id, text, prob], ...]}, ...]}`.

Every file is written atomically (a temporary file in the same folder, then `os.replace`), so a crash
leaves the old version or the new one, never half of one; and in the order the data was taken
(`NewestWins`): an older snapshot whose write ends last is dropped. Reading and writing block on the
disk: call these from thread workers.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.common import paths

SETTINGS_FILE = "chat.json"
SESSION_VERSION = 1
PieceData = tuple[int, str, float]  # a generated token as saved: id, the text it released, its probability


class StoreError(Exception):
    """A settings or session file that cannot be read or does not hold what it should."""


def _json_beside(path: Path, data: Any) -> Path:
    """`data` as JSON in a new temporary file beside `path` (to be moved over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file, ensure_ascii=False, indent=1)
        os.chmod(temp, 0o644)  # mkstemp makes it 0600; these are ordinary user files
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)


class NewestWins:
    """Atomic JSON writes of files that several worker threads write: each write carries a version taken
    when its data was snapshotted (on the UI thread, `new_version`), and a write older than the last one
    that reached its file is dropped, so a slow write of an old snapshot never lands over a newer one.

    The JSON is written outside the lock (no writer waits on another's disk); the check and `os.replace`
    are one step under it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions = itertools.count(1)  # for the whole process: every write in one order
        self._written: dict[Path, int] = {}  # the newest version that reached each file

    def new_version(self) -> int:
        """A number for data about to be written, newer than any before it."""
        return next(self._versions)

    def write(self, path: Path, data: Any, version: int) -> bool:
        """Write `data` to `path` atomically unless a newer version got there first; True if it was written."""
        temp = _json_beside(path, data)
        with self._lock:
            newest = version > self._written.get(path, 0)
            if newest:
                try:
                    os.replace(temp, path)
                except BaseException:
                    temp.unlink(missing_ok=True)
                    raise
                self._written[path] = version
        if not newest:
            temp.unlink()
        return newest


_writes = NewestWins()
new_version = _writes.new_version


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; StoreError when it cannot be read, is not JSON, or is not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StoreError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: not a JSON object")
    return data


# -- settings --------------------------------------------------------------------------------------------


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


def read_settings() -> dict[str, Any]:
    """The saved settings ({} when none were saved); StoreError for a file that cannot be used."""
    path = settings_path()
    if not path.exists():
        return {}
    return read_json_object(path)


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
    return _session(path, read_json_object(path))


def _session(path: Path, data: dict[str, Any]) -> Session:
    try:
        turns = [(str(turn["prompt"]), [_piece(piece) for piece in turn["reply"]]) for turn in data["turns"]]
        checkpoint = data.get("checkpoint")
        return Session(str(data["id"]), str(checkpoint) if checkpoint else None, str(data.get("created", "")), turns)
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
            data = read_json_object(path)
            session = _session(path, data)
        except StoreError as error:
            bad.append(SessionSummary(path, error=str(error)))
            continue
        updated = str(data.get("updated", session.created))
        summary = SessionSummary(path, updated, session.checkpoint, len(session.turns), title_of(session.turns))
        good.append((updated, summary))
    good.sort(key=lambda item: item[0], reverse=True)
    return [summary for _, summary in good] + bad
