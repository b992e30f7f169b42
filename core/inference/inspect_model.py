"""Look inside a GPT: its parameters, attention weights, per-layer predictions (logit lens), embeddings
(nearest tokens, a 2-D map). A ladder step's model (core.model.ladder) has parameters and embeddings too;
the attention view and the lens read the GPT's blocks and say so for the others (`require_gpt`).

Everything works from the outside, through the public GPT interface and nanoGPT's module names
(`transformer.h[i].attn.c_attn`, `transformer.ln_f`, `lm_head`, `transformer.wte`): forward hooks
capture each attention module's input and each block's output during one ordinary forward pass, so
`core/model.py` stays as it is. `attention_weights` recomputes the attention pattern from a captured
input with the attention module's own `c_attn`; `tests/test_inspect_model.py` checks that those
weights, applied to the values and projected by `c_proj`, give back the module's own output, so a
change to the attention math (rotary embeddings, QK-norm) that this file does not follow fails there.

Runs on the model's device; the app calls it only from thread workers.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from core.dataset.batches import get_batch
from core.dataset.files import PASS_VOCABULARY
from core.dataset.format import DatasetInfo, open_split
from core.model.anatomy import ParamInfo
from core.model.gpt import GPT, ModelError
from core.model.ladder import LadderModel, build
from core.tokens.tokenizers import CharTokenizer, Tokenizer

TOP_K = 5


class InspectError(ValueError):
    """Input the inspection cannot use (empty text, a layer or head out of range), said plainly."""


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def param_infos(model: GPT) -> list[ParamInfo]:
    """Every parameter with its shape; a tensor seen under a second name is marked as tied to the first."""
    first: dict[int, str] = {}
    infos = []
    for name, param in model.named_parameters(remove_duplicate=False):
        owner = first.setdefault(id(param), name)
        infos.append(ParamInfo(name, tuple(param.shape), None if owner == name else owner))
    return infos


def model_config(model: GPT | LadderModel) -> dict[str, Any]:
    """The model's shape as a dict of nanoGPT's model_args keys (and any further knobs GPTConfig has; a
    ladder step's: LadderConfig's, `arch` among them)."""
    return dataclasses.asdict(model.config)


def untrained_model(settings: dict[str, Any], vocab_size: int, seed: int = 1337) -> GPT | LadderModel:
    """A freshly initialised model from training settings (TrainConfig fields: the GPT, or the ladder step
    `arch` names); unknown keys are ignored."""
    torch.manual_seed(seed)
    model = build({**settings, "vocab_size": vocab_size})
    model.eval()
    return model


# -- text in, tokens out ------------------------------------------------------------------------------


@dataclass
class Tokens:
    ids: list[int]
    texts: list[str]  # each token's text (undecodable bytes replaced)
    total: int  # tokens in the whole text; more than len(ids) when it was cut to the block
    dropped: str = ""  # characters a character vocabulary lacks, left out of the text

    @property
    def cut(self) -> bool:
        return self.total > len(self.ids)


def token_text(tokenizer: Tokenizer, token_id: int) -> str:
    return tokenizer.token_bytes(token_id).decode("utf-8", "replace")


def encode(tokenizer: Tokenizer, text: str, block_size: int) -> Tokens:
    """The text's tokens, cut to the first `block_size` (the model sees no more at once)."""
    if not text:
        raise InspectError("the text is empty: type something to look at")
    dropped = ""
    stoi = getattr(tokenizer, "stoi", None)
    if isinstance(tokenizer, CharTokenizer) and stoi is not None:
        dropped = "".join(sorted({c for c in text if c not in stoi}))
        text = "".join(c for c in text if c in stoi)
    ids = tokenizer.encode(text) if text else []
    if not ids:
        raise InspectError(f"the text has no tokens this vocabulary knows (it lacks {dropped!r})" if dropped
                           else "the text has no tokens")
    kept = ids[:block_size]
    return Tokens(kept, [token_text(tokenizer, i) for i in kept], len(ids), dropped)


# -- one forward pass, watched ------------------------------------------------------------------------


@dataclass
class Capture:
    attn_inputs: list[torch.Tensor]  # per layer: what the attention module got, ln_1(x), (B, T, C)
    attn_outputs: list[torch.Tensor]  # per layer: its output, (B, T, C)
    block_outputs: list[torch.Tensor]  # per layer: the residual stream after the block, (B, T, C)
    embeddings: torch.Tensor  # the residual stream entering block 0, (B, T, C)


@torch.no_grad()
def capture(model: GPT, idx: torch.Tensor) -> Capture:
    """Run the model on `idx` (B, T) once, keeping each attention module's input and output and each block's output."""
    blocks = model.transformer.h
    attn_in: list[Any] = [None] * len(blocks)
    attn_out: list[Any] = [None] * len(blocks)
    block_in: list[Any] = [None] * len(blocks)
    block_out: list[Any] = [None] * len(blocks)
    handles = []

    me = threading.get_ident()  # another thread's forward of the same model (a loss measurement) is not ours

    def keep(store: list[Any], i: int, use_output: bool):
        def hook(_module: Any, args: tuple[Any, ...], *output: Any) -> None:  # returns None: changes nothing
            if threading.get_ident() == me:
                store[i] = output[0] if use_output else args[0]

        return hook

    for i, block in enumerate(blocks):
        handles.append(block.attn.register_forward_pre_hook(keep(attn_in, i, False)))
        handles.append(block.attn.register_forward_hook(keep(attn_out, i, True)))
        handles.append(block.register_forward_pre_hook(keep(block_in, i, False)))
        handles.append(block.register_forward_hook(keep(block_out, i, True)))
    try:
        model(idx)
    finally:
        for handle in handles:
            handle.remove()
    return Capture(attn_in, attn_out, block_out, block_in[0])


def attention_and_values(
    attn: torch.nn.Module, x: torch.Tensor, rotary: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CausalSelfAttention's math from its input `x` (B, T, C) (and the model's rotation of positions 0..T-1,
    with rope): the weights (B, nh, T, T) and values (B, nh, T, hs). q, k and v come from the module itself."""
    q, k, v = attn.queries_keys_values(x, rotary)  # (B, nh, T, hs) each
    T = x.shape[1]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, nh, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    return F.softmax(scores.float(), dim=-1), v


@torch.no_grad()
def attention_weights(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Attention weights of every layer and head for `idx` (B, T): (n_layer, B, nh, T, T), rows summing to 1."""
    model = require_gpt(model, "the attention view")
    seen = capture(model, idx)
    rotary = model.rotation(0, idx.shape[1])
    return torch.stack([attention_and_values(block.attn, x, rotary)[0] for block, x in zip(model.transformer.h, seen.attn_inputs)])


def check_layer_head(model: GPT, layer: int, head: int | None = None) -> None:
    require_gpt(model, "the attention view")
    n_layer, n_head = model.config.n_layer, model.config.n_head
    if not 0 <= layer < n_layer:
        raise InspectError(f"layer {layer} is out of range: this model has layers 0..{n_layer - 1}")
    if head is not None and not 0 <= head < n_head:
        raise InspectError(f"head {head} is out of range: this model has heads 0..{n_head - 1}")


def check_position(tokens: Tokens, position: int) -> int:
    """A position in the tokens (negative counts from the end)."""
    n = len(tokens.ids)
    if not -n <= position < n:
        raise InspectError(f"position {position} is out of range: the text has {n} tokens (0..{n - 1})")
    return position % n


# -- the logit lens -------------------------------------------------------------------------------------


@dataclass
class LensRow:
    label: str  # "embeddings", "block 0", ...
    top: list[tuple[int, str, float]]  # (token id, text, probability), likeliest first


@torch.no_grad()
def read_out(model: GPT, residual: torch.Tensor) -> torch.Tensor:
    """Next-token probabilities from a residual stream vector (..., C): final LayerNorm, then the head."""
    logits = model.lm_head(model.transformer.ln_f(residual))
    return F.softmax(logits.float(), dim=-1)


@torch.no_grad()
def logit_lens(model: GPT, tokenizer: Tokenizer, ids: list[int], position: int, k: int = TOP_K) -> list[LensRow]:
    """The top-k next tokens after `ids[:position + 1]` read from the residual stream after each block."""
    model = require_gpt(model, "the logit lens")
    idx = torch.tensor([ids], dtype=torch.long, device=device_of(model))
    seen = capture(model, idx)
    streams = [("embeddings", seen.embeddings)] + [(f"block {i}", out) for i, out in enumerate(seen.block_outputs)]
    rows = []
    vocab = getattr(tokenizer, "vocab_size", None)
    for label, stream in streams:
        probs = read_out(model, stream[0, position])
        if vocab is not None and vocab < probs.numel():
            probs = probs[:vocab]  # padded head rows are no tokens
        values, indices = probs.topk(min(k, probs.numel()))
        rows.append(LensRow(label, [(int(i), token_text(tokenizer, int(i)), float(p)) for p, i in zip(values, indices)]))
    return rows


# -- embeddings -----------------------------------------------------------------------------------------


def token_embedding(model: torch.nn.Module) -> torch.Tensor:
    """The token embedding (V, C): the GPT's wte, or a ladder step's token_embedding_table (core.model.ladder;
    the bigram's rows are next-token logits, V wide)."""
    return model.transformer.wte.weight if isinstance(model, GPT) else model.token_embedding_table.weight


def require_gpt(model: torch.nn.Module, view: str) -> GPT:
    """The model, when it is a GPT; InspectError saying so for one of the lecture's step models."""
    if not isinstance(model, GPT):
        raise InspectError(f"{view} reads the GPT's blocks; this model is the lecture's {model.config.arch!r} step")
    return model


@torch.no_grad()
def nearest_tokens(model: torch.nn.Module, token_id: int, k: int = 10, vocab_size: int | None = None) -> list[tuple[int, float]]:
    """The k tokens whose embeddings (rows of wte) point most nearly the same way as `token_id`'s."""
    weight = token_embedding(model)
    if vocab_size is not None:
        weight = weight[:vocab_size]
    if not 0 <= token_id < weight.shape[0]:
        raise InspectError(f"token id {token_id} is not in the vocabulary (0..{weight.shape[0] - 1})")
    unit = F.normalize(weight.float(), dim=1)
    sims = unit @ unit[token_id]
    sims[token_id] = -2.0  # not itself
    values, indices = sims.topk(min(k, sims.numel() - 1))
    return [(int(i), float(v)) for v, i in zip(values, indices)]


@dataclass
class MapPoint:
    """A token on the embedding map: its id, text and place on the embedding's two main directions."""

    token_id: int
    text: str
    x: float
    y: float


SMALL_VOCAB = 512  # vocabularies up to this size are mapped whole; larger ones: the text's tokens and neighbours
MAP_TEXT_TOKENS = 16  # of a large vocabulary, the text's first distinct tokens mapped...
MAP_NEIGHBOURS = 4  # ...each with its nearest tokens


@torch.no_grad()
def embedding_map(model: torch.nn.Module, tokenizer: Tokenizer, ids: list[int]) -> tuple[list[MapPoint], bool]:
    """The token embeddings projected onto their two principal directions (PCA over the whole vocabulary):
    every token of a small vocabulary, else the text's tokens (`ids`) and their nearest neighbours.
    Returns the points and whether they are the whole vocabulary."""
    weight = token_embedding(model)[: tokenizer.vocab_size].float().cpu()
    V, C = weight.shape
    if C < 2:
        raise InspectError("an embedding of one dimension has no map: it is a line")
    centred = weight - weight.mean(0)
    # The principal directions: the covariance's top eigenvectors (exact; C x C, cheap even for GPT-2's 768).
    _, vectors = torch.linalg.eigh(centred.T @ centred)  # eigenvalues ascending
    directions = vectors[:, [-1, -2]]  # (C, 2)
    whole = V <= SMALL_VOCAB
    if whole:
        chosen = list(range(V))
    else:
        text = list(dict.fromkeys(i for i in ids if 0 <= i < V))[:MAP_TEXT_TOKENS]
        near = [n for i in text for n, _ in nearest_tokens(model, i, MAP_NEIGHBOURS, tokenizer.vocab_size)]
        chosen = list(dict.fromkeys(text + near))
    coords = centred[chosen] @ directions  # (len(chosen), 2)
    return [MapPoint(i, token_text(tokenizer, i), float(x), float(y)) for i, (x, y) in zip(chosen, coords.tolist())], whole


# -- loss at initialisation -----------------------------------------------------------------------------


@torch.no_grad()
def measure_loss(model: GPT, info: DatasetInfo, batches: int = 4, batch_size: int = 8, seed: int = 1337) -> float:
    """The mean cross-entropy on `batches` random val windows of the dataset."""
    if info.vocab_size > model.config.vocab_size:
        raise ModelError(
            f"the dataset {info.name} has {info.vocab_size:,} token ids, the model's vocabulary only "
            f"{model.config.vocab_size:,}: pick a dataset with this model's tokenizer ({PASS_VOCABULARY})"
        )
    data = open_split(info, "val")
    block = min(model.config.block_size, len(data) - 1)
    if block < 1:
        raise ModelError(f"the dataset {info.name} has too few val tokens")
    generator = torch.Generator().manual_seed(seed)
    device = device_of(model)
    losses = []
    for _ in range(batches):
        x, y = get_batch(data, block, batch_size, generator, device)
        _, loss = model(x, y)
        losses.append(float(loss))
    return sum(losses) / len(losses)
