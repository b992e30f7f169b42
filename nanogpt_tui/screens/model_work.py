"""The Model screen's workers' side: the messages they post, and how they get a model to look at.

`load_checkpoint` and `build_untrained` run in the screen's loading worker (they import torch); nothing
here touches a widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from core.common.formatting import human_count


@dataclass
class SourcesListed(Message):
    checkpoints: list[Any]  # CheckpointSummary
    datasets: list[Any]  # DatasetInfo


@dataclass
class ModelReady(Message):
    source: str
    model: Any
    tokenizer: Any
    anatomy: Any
    description: str
    trained: bool
    dataset: str | None  # the dataset to measure the loss on, if the screen has none chosen


@dataclass
class Analysed(Message):
    generation: int
    tokens: Any  # core.inference.inspect_model.Tokens
    attention: Any  # numpy (n_layer, n_head, T, T), or None for a model without GPT blocks (`why`)
    points: list[Any]  # the embedding map's MapPoints
    whole: bool  # whether they are the whole vocabulary
    why: str = ""  # why there is no attention


@dataclass
class Probed(Message):
    generation: int
    position: int
    lens: list[Any] | str  # LensRow, or why there is no lens (a ladder step's model)
    nearest: list[tuple[str, int, float]]


@dataclass
class LossMeasured(Message):
    source: str
    dataset: str
    loss: float


def load_checkpoint(path: Path) -> tuple[Any, Any, str, bool, str | None]:
    """A checkpoint's model and tokenizer, its description, whether it was trained, and its dataset's name."""
    from core.common.devices import resolve_device
    from core.runs.checkpoint import load_model
    from core.tokens.tokenizers import tokenizer_name

    device = resolve_device("auto")
    model, tokenizer, ckpt = load_model(path, device)
    description = (
        f"{path.parent.name}: {human_count(model.get_num_params())} params, {tokenizer_name(ckpt['tokenizer'])}, "
        f"{ckpt['iter_num']:,} iters, on {device}"
    )
    return model, tokenizer, description, ckpt["iter_num"] > 0, ckpt["dataset"].get("name")


def build_untrained(settings: tuple[dict[str, Any], str | None, str], dataset: str | None) -> tuple[Any, Any, str, str | None]:
    """An untrained model of the settings, with `dataset`'s vocabulary (else the form's dataset's, else GPT-2's)."""
    from core.dataset.format import load_dataset, tokenizer_of
    from core.inference.inspect_model import untrained_model
    from core.tokens.tokenizers import get_tokenizer

    values, form_dataset, origin = settings
    name = dataset or form_dataset
    if name:
        info = load_dataset(name)
        tokenizer, vocab, what = tokenizer_of(info), info.vocab_size, f"{info.name}'s vocabulary"
    else:
        tokenizer = get_tokenizer("gpt2")
        vocab, what = tokenizer.vocab_size, "GPT-2's vocabulary (no dataset)"
    model = untrained_model(values, vocab)
    description = f"untrained, {human_count(model.get_num_params())} params: {origin}, {what} ({vocab:,})"
    return model, tokenizer, description, name
