"""The Model screen's workers' side: the messages they post, how they get a model to look at, and what
they compute with it.

Every function here runs in one of the screen's thread workers (they import torch) and returns what to
post: a result, or WorkFailed with a message for the user; nothing here touches a widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from core.common.formatting import human_count
from nanogpt_tui.messages import WorkFailed


@dataclass
class SourcesListed(Message):
    checkpoints: list[Any]  # CheckpointSummary
    datasets: list[Any]  # DatasetInfo
    signature: tuple[Any, ...]  # of both listings: the same one again changes nothing on screen
    chosen: str | None  # the source chosen when the worker looked, and its file's signature then
    chosen_signature: tuple[int, int, int] | None


@dataclass
class ModelReady(Message):
    source: str
    model: Any
    tokenizer: Any
    anatomy: Any
    description: str
    trained: bool
    dataset: str | None  # the dataset to measure the loss on, if the screen has none chosen
    signature: tuple[int, int, int] | None  # of the checkpoint file, taken before it was read


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


def analyse_text(generation: int, model: Any, tokenizer: Any, text: str) -> Analysed | WorkFailed:
    """The text's tokens (cut to the block), the embedding map around them, and every layer's and head's
    attention on them (none for a ladder step's model: `why`)."""
    import torch

    from core.inference.inspect_model import InspectError, attention_weights, device_of, embedding_map, encode

    attention, why = None, ""
    try:
        tokens = encode(tokenizer, text, model.config.block_size)
        points, whole = embedding_map(model, tokenizer, tokens.ids)
        idx = torch.tensor([tokens.ids], dtype=torch.long, device=device_of(model))
        try:
            attention = attention_weights(model, idx)[:, 0].float().cpu().numpy()  # (n_layer, n_head, T, T)
        except InspectError as error:  # a ladder step's model: no GPT blocks to read
            why = str(error)
    except Exception as error:
        return WorkFailed("Cannot analyse the text", str(error))
    return Analysed(generation, tokens, attention, points, whole, why)


def probe_layers(generation: int, model: Any, tokenizer: Any, ids: list[int], position: int) -> Probed | WorkFailed:
    """What each layer predicts after the token at `position` (the logit lens; why not, for a ladder step's
    model), and that token's neighbours."""
    from core.inference.inspect_model import InspectError, logit_lens, nearest_tokens, token_text

    try:
        try:
            lens: list[Any] | str = logit_lens(model, tokenizer, ids, position)
        except InspectError as error:  # a ladder step's model: no blocks to read through
            lens = str(error)
        near = nearest_tokens(model, ids[position], k=12, vocab_size=tokenizer.vocab_size)
        nearest = [(token_text(tokenizer, i), i, sim) for i, sim in near]
    except Exception as error:
        return WorkFailed("Cannot read the layers", str(error))
    return Probed(generation, position, lens, nearest)


def measure_init_loss(source: str, model: Any, dataset: str) -> LossMeasured | WorkFailed:
    """The model's loss on `dataset`'s val split."""
    from core.dataset.format import load_dataset
    from core.inference.inspect_model import measure_loss

    try:
        loss = measure_loss(model, load_dataset(dataset))
    except Exception as error:
        return WorkFailed("Cannot measure the loss", str(error))
    return LossMeasured(source, dataset, loss)
