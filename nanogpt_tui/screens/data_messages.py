"""The Data screen's workers' side (nanogpt_tui.screens.data): the messages they post and the work they do
(preparing, reading a dataset's details, drawing a training example). Everything here runs in a thread
worker and returns, or posts through the callback it is given, a message; nothing here touches a widget."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from textual.message import Message

from core.dataset.format import DatasetError, DatasetInfo, DatasetStats, dataset_stats, open_split, tokenizer_of
from core.tokens.tokenizers import TokenizerError
from data.learn_bpe import tokenizer_label
from data.prepare import DownloadFailed, PrepareCancelled, PrepareError, Progress, prepare, shakespeare_name
from data.sources import SHAKESPEARE_FILE
from nanogpt_tui import listings
from nanogpt_tui.widgets.prepare_form import PrepareRequest

PREVIEW_TOKENS = 400  # tokens of train.bin decoded for the preview
EXAMPLE_TOKENS = 32  # of a training example's block, the tokens shown


@dataclass
class PrepareProgress(Message):
    progress: Progress


@dataclass
class PrepareDone(Message):
    """The end of a preparation: its info, or the error, or that it was cancelled."""

    info: DatasetInfo | None = None
    error: str | None = None
    cancelled: bool = False


@dataclass
class DetailsLoaded(Message):
    """Stats and preview text of the selected dataset (or why they could not be read)."""

    name: str
    stats: DatasetStats | None
    preview: str
    error: str | None = None


@dataclass
class ExampleDrawn(Message):
    """A training example of dataset `name` (core.dataset.example.Example), or why none could be drawn."""

    name: str
    example: Any
    error: str | None = None


def run_prepare(request: PrepareRequest, post: Callable[[Message], Any], cancel: threading.Event) -> PrepareDone:
    """Prepare the requested dataset, posting its progress; how it ended (an error says what to do)."""
    try:
        info = prepare(
            request.source,
            tokenizer=request.tokenizer,
            name=request.name,
            val_fraction=request.val_fraction,
            extensions=request.extensions,
            text_field=request.text_field,
            overwrite=request.overwrite,
            progress=lambda progress: post(PrepareProgress(progress)),
            cancel=cancel,
            vocab_size=request.vocab_size,
            split_pattern=request.split_pattern,
        )
    except PrepareCancelled:
        return PrepareDone(cancelled=True)
    except DownloadFailed as error:
        offline = (f"Working offline? Save {error.url} on this machine as {SHAKESPEARE_FILE}, then choose "
                   f"\"A text file\" above: it is named {shakespeare_name(tokenizer_label(request.tokenizer, request.vocab_size))}, "
                   "as the download would be.")
        return PrepareDone(error=f"{error} {offline}")
    except PrepareError as error:
        return PrepareDone(error=str(error))
    return PrepareDone(info)


def read_details(info: DatasetInfo) -> DetailsLoaded:
    """Stats and the decoded start of train.bin (building gpt2 takes a second: not on the UI thread)."""
    def read() -> tuple[DatasetStats, str]:
        stats = dataset_stats(info)
        return stats, tokenizer_of(info).decode(open_split(info, "train")[:PREVIEW_TOKENS].tolist())

    try:
        # Read once per version of the dataset's files.
        stats, preview = listings.cached_by_files("details", listings.dataset_signature(info.path), read)
    except (DatasetError, TokenizerError) as error:
        return DetailsLoaded(info.name, None, "", str(error))
    return DetailsLoaded(info.name, stats, preview)


def draw_example(info: DatasetInfo, block_size: int) -> ExampleDrawn:
    """A random training example of `info` with `block_size` tokens of context (core.dataset.example)."""
    from core.dataset.example import training_example

    try:
        return ExampleDrawn(info.name, training_example(info, block_size, shown=EXAMPLE_TOKENS))
    except (DatasetError, TokenizerError, OSError) as error:
        return ExampleDrawn(info.name, None, str(error))
