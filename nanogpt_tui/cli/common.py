"""What every command shares: the consoles, and which engine errors print as one clear line.

Output is laid out for where it goes (`CommandConsole`). Piped or redirected, each print is its lines as
written: no wrapping, no cropping, no colour codes and no progress bars (`show_progress` is False), so
`| grep` finds a whole result on one line. In a terminal, text wraps at spaces only: a path or a number
is never cut (one longer than the line is left whole for the terminal to fold).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, Protocol

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.text import Text


class Subcommands(Protocol):
    """What `ArgumentParser.add_subparsers` returns, as each command module's `add_commands` uses it
    (argparse's own class for it is private)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


class CommandConsole(Console):
    """rich's Console with the layout above as the default of every `print` (an explicit option still wins)."""

    def print(self, *objects: Any, **options: Any) -> None:
        if not self.is_terminal:
            options.setdefault("soft_wrap", True)  # no wrapping, no cropping: lines as written
        elif len(objects) == 1 and isinstance(objects[0], str) and "soft_wrap" not in options:
            # rich would fold a word longer than the line (a path) into pieces: wrap at spaces here instead.
            text = self.render_str(objects[0], markup=options.pop("markup", None), highlight=options.pop("highlight", None))
            objects, options["soft_wrap"] = (wrap_at_spaces(text, self.width),), True
        super().print(*objects, **options)

    @property
    def show_progress(self) -> bool:
        """Whether a progress bar may be drawn: only in a terminal (piped, it would be written as text)."""
        return self.is_terminal

    def print_whole(self, renderable: RenderableType) -> None:
        """Print a table or tree to fit a terminal, or at its full width when piped (rich would squeeze it
        into 80 columns, wrapping cells and titles)."""
        if self.is_terminal:
            self.print(renderable)
            return
        width = Measurement.get(self, self.options.update_width(10_000), renderable).maximum
        # print(width=...) cannot go wider than the console: a console as wide as the renderable.
        CommandConsole(file=self.file, width=max(width, self.width), no_color=True).print(renderable)


def wrap_at_spaces(text: Text, width: int) -> Text:
    """`text` broken at spaces into lines of at most `width` cells; a longer word stays whole on its line."""
    lines: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        breaks, start = [], 0
        for word in re.finditer(r"\S+", line.plain):
            if cell_len(line.plain[start:word.end()]) > width and word.start() > start:
                breaks.append(start := word.start())
        for piece in line.divide(breaks):
            piece.rstrip()
            lines.append(piece)
    return Text("\n").join(lines)


console = CommandConsole()
err_console = CommandConsole(stderr=True)


def error_line(message: object) -> str:
    """`error: MESSAGE` as console markup, the message escaped (a path may hold `[...]`)."""
    return f"[red]error:[/] {escape(str(message))}"


# Engine exceptions whose message is written for the user, by module. A module that was never imported
# cannot have raised its error, so checking sys.modules avoids importing torch just to catch one.
USER_ERRORS = {
    "core.common.disk": "DiskWriteError",  # a full or read-only disk, in one line
    "core.common.safe_files": "UnsafeFile",  # a link, FIFO, device or oversized file refused
    "core.tokens.tokenizers": "TokenizerError",
    "core.dataset.format": "DatasetError",
    "core.model.gpt": "ModelError",
    "core.model.arch": "UnknownArch",
    "core.common.devices": "DeviceError",
    "core.training.distributed": "DistributedError",
    "core.runs.checkpoint": "CheckpointError",
    "core.inference.inspect_model": "InspectError",
    "core.inference.sampler": "SamplerError",
    "core.settings.sampling": "SamplerError",
    "core.settings.train_config": "ConfigError",
    "data.sources": "SourceError",
    "data.prepare": "PrepareError",
}


def is_user_error(error: BaseException) -> bool:
    for module_name, class_name in USER_ERRORS.items():
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module else None
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError))
