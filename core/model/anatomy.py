"""A GPT's anatomy in numbers: parameter tree, counts, memory and FLOPs (torch-free).

Everything here works from parameter names and shapes (`ParamInfo`) and the model's shape
(nanoGPT's `model_args` keys), so the CLI and the Model screen can print it without torch; the
names and shapes themselves come from `core.inference.inspect_model.param_infos(model)`.

The formulas are nanoGPT's:
- `non_embedding` = every parameter but the position embedding (`GPT.get_num_params()`; none with
  rope; a ladder step's `position_embedding_table` likewise; the token
  embedding stays in because it is also the output head);
- the estimate 12·n_layer·n_embd² counts the four attention matrices (4d²) and the MLP (8d²) per
  block and leaves out embeddings, biases and LayerNorms;
- `flops_per_token` = 6N + 12·L·H·Q·T is `estimate_mfu`'s training cost per token (forward and
  backward, N the non-embedding count, Q the head size, T the block); a forward pass is a third.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2}


@dataclass(frozen=True)
class ParamInfo:
    """One parameter tensor: its dotted name, shape, and the name it shares storage with (tied)."""

    name: str
    shape: tuple[int, ...]
    tied_to: str | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class Node:
    """A module in the tree: its own parameters and its children; `count` covers the whole subtree."""

    name: str  # the full dotted path ("" for the model)
    params: list[ParamInfo] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    count: int = 0

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1] if self.name else "GPT"


# Learned position tables: the GPT's wpe (none with rope), a ladder step's (core.model.ladder).
POSITION_WEIGHTS = ("transformer.wpe.weight", "position_embedding_table.weight")


@dataclass
class Anatomy:
    root: Node
    total: int  # tied tensors counted once
    non_embedding: int  # nanoGPT's get_num_params(): total minus the position embedding
    estimate: int  # 12 * n_layer * n_embd**2
    config: dict[str, Any]

    @property
    def estimate_error(self) -> float:
        """How far the 12·L·d² estimate is from the non-embedding count, as a share of the latter."""
        return (self.estimate - self.non_embedding) / self.non_embedding if self.non_embedding else 0.0

    def share(self, count: int) -> float:
        return count / self.total if self.total else 0.0

    @property
    def title(self) -> str:
        """What the model is: the GPT, or the lecture's ladder step it is (core.model.arch)."""
        arch = self.config.get("arch", "gpt")
        return "GPT" if arch == "gpt" else f"{arch} (ladder step)"

    @property
    def non_embedding_note(self) -> str:
        """What the non-embedding count leaves out, for this model."""
        gpt = self.title == "GPT"
        if self.total == self.non_embedding:  # no position table: rotary positions, or a bigram
            return "all: no position table (rotary positions)" if gpt else "all: no position table"
        return "nanoGPT's count: all but wpe" if gpt else "all but position_embedding_table"


def build_anatomy(params: list[ParamInfo], config: dict[str, Any]) -> Anatomy:
    """The module tree of `params` (nanoGPT's names) with counts per module."""
    root = Node("")
    for param in params:
        *path, _leaf = param.name.split(".")
        node = root
        for depth in range(len(path)):
            name = ".".join(path[: depth + 1])
            node = node.children.setdefault(path[depth], Node(name))
        node.params.append(param)
    _count(root)
    total = root.count
    wpe = sum(p.numel for p in params if p.name in POSITION_WEIGHTS and p.tied_to is None)
    estimate = 12 * int(config["n_layer"]) * int(config["n_embd"]) ** 2
    return Anatomy(root, total, total - wpe, estimate, dict(config))


def _count(node: Node) -> int:
    node.count = sum(p.numel for p in node.params if p.tied_to is None)
    node.count += sum(_count(child) for child in node.children.values())
    return node.count


def flops_per_token(non_embedding: int, config: dict[str, Any]) -> int:
    """nanoGPT's estimate_mfu flops_per_token: 6N + 12·L·H·Q·T (training: forward plus backward)."""
    L, H, T = int(config["n_layer"]), int(config["n_head"]), int(config["block_size"])
    Q = int(config["n_embd"]) // H
    return 6 * non_embedding + 12 * L * H * Q * T


def memory_table(total: int) -> list[tuple[str, int, int, int]]:
    """Per dtype: bytes for the weights, their gradients and AdamW's two moments (kept in the weights' dtype).

    Autocast bfloat16 training keeps float32 weights (the float32 row); pure bfloat16 is the other.
    """
    return [(name, total * size, total * size, 2 * total * size) for name, size in DTYPE_BYTES.items()]


def init_loss_expected(vocab_size: int) -> float:
    """The loss of a model that spreads its bets evenly over the vocabulary: ln(vocab_size)."""
    return math.log(vocab_size)


INIT_LOSS_WHY = (
    "At initialisation every logit is close to 0 (weights ~ N(0, 0.02)), so the model spreads its bets "
    "evenly over the vocabulary: the loss is -ln(1/V) = ln(V). Much higher would mean confidently wrong "
    "initial guesses; training pushes it below."
)
