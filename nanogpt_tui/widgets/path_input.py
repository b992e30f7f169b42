"""PathInput: an Input that completes filesystem paths as you type and checks that the path exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from textual.binding import Binding
from textual.suggester import Suggester
from textual.validation import ValidationResult, Validator
from textual.widgets import Input

PathKind = Literal["file", "dir", "any", "new"]  # "new": a file to write (need not exist yet)


def expand(value: str) -> Path:
    """The path a user typed, with ~ expanded."""
    return Path(value.strip()).expanduser()


class PathSuggester(Suggester):
    """Suggests the first entry of the typed folder whose name starts with the typed last part."""

    def __init__(self, input: PathInput) -> None:
        # No cache: the filesystem changes under us, and listing one folder is cheap.
        super().__init__(use_cache=False, case_sensitive=True)
        self.input = input

    async def get_suggestion(self, value: str) -> str | None:
        folder_text, _, prefix = value.rpartition(os.sep)
        folder = expand(folder_text + os.sep) if folder_text or value.startswith(os.sep) else Path(".")
        # Hidden entries only when asked for with a leading dot, like a shell.
        try:
            names = sorted(
                entry.name + (os.sep if entry.is_dir() else "")
                for entry in os.scandir(folder)
                if entry.name.startswith(prefix)
                and (prefix.startswith(".") or not entry.name.startswith("."))
                and (self.input.kind != "dir" or entry.is_dir())
            )
        except OSError:
            return None
        longer = [name for name in names if len(name) > len(prefix)]
        return value + longer[0][len(prefix) :] if longer else None


class PathExists(Validator):
    """Valid when the path exists and is of the input's kind (file, folder, or either); for "new", when it
    is not a folder (a file to write: whether to overwrite one is the caller's question)."""

    def __init__(self, input: PathInput) -> None:
        super().__init__()
        self.input = input

    def validate(self, value: str) -> ValidationResult:
        if not value.strip():
            return self.failure("Type a path")
        path = expand(value)
        kind = self.input.kind
        if kind == "new":
            return self.failure(f"{path} is a folder") if path.is_dir() else self.success()
        if not path.exists():
            return self.failure(f"{path} does not exist")
        if kind == "file" and not path.is_file():
            return self.failure(f"{path} is not a file")
        if kind == "dir" and not path.is_dir():
            return self.failure(f"{path} is not a folder")
        return self.success()


class PathInput(Input):
    """A path field: → or Tab accepts the suggested completion; the value is validated as typed."""

    BINDINGS = [Binding("tab", "complete", "Complete path", show=False, id="path_input.complete")]

    def __init__(self, value: str = "", *, kind: PathKind = "any", **kwargs) -> None:
        self.kind: PathKind = kind
        super().__init__(value, suggester=PathSuggester(self), validators=[PathExists(self)], **kwargs)

    @property
    def path(self) -> Path:
        return expand(self.value)

    def set_kind(self, kind: PathKind) -> None:
        """Expect a file, a folder or either from now on, and re-check the current value."""
        self.kind = kind
        self.validate(self.value)

    def action_complete(self) -> None:
        """Accept the completion if one is shown, else move on to the next field like Tab does."""
        if self.cursor_at_end and len(self._suggestion) > len(self.value):
            self.action_cursor_right()
        else:
            self.screen.focus_next()
