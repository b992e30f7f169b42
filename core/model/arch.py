"""Which model a run trains: nanoGPT's GPT, or one step of "Let's build GPT"'s ladder (torch-free).

The setting `arch` (TrainConfig) and a checkpoint's `model_args["arch"]` name it; a checkpoint without
the key is a GPT (nanoGPT's and every older one of ours). The steps are the lecture's, in its order, each
adding one piece to the one before; their models are core.model.ladder's, the GPT core.model.gpt's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GPT_ARCH = "gpt"
# The lecture's steps in order: name -> what it adds (the last is the full GPT).
STEPS: dict[str, str] = {
    "bigram": "bigram: a token-embedding table read as the next token's logits",
    "head": "+ one self-attention head (and position embeddings)",
    "heads": "+ multi-head attention: several smaller heads side by side",
    "ffwd": "+ a feed-forward layer: each position thinks on what it gathered",
    "blocks": "+ residual connections: attention and feed-forward as blocks, stacked",
    "layernorm": "+ LayerNorm before each sublayer and at the end",
    GPT_ARCH: "= the full GPT (nanoGPT's, with the recipe's settings)",
}
ARCHS = tuple(STEPS)
LADDER_ARCHS = ARCHS[:-1]  # the lecture's own models (core.model.ladder)


class UnknownArch(ValueError):
    """A model name this program does not know (a checkpoint from a newer version, a typo)."""


def arch_of(model_args: Mapping[str, Any]) -> str:
    """The model a checkpoint's model_args describe (absent: the GPT); UnknownArch for any other value."""
    arch = model_args.get("arch", GPT_ARCH)
    if not isinstance(arch, str) or arch not in STEPS:
        raise UnknownArch(f"its model_args name the model {arch!r:.40}, which this program does not know "
                          f"(it knows {', '.join(ARCHS)})")
    return arch


def is_ladder(model_args: Mapping[str, Any]) -> bool:
    """Whether model_args describe one of the lecture's step models rather than a GPT."""
    return model_args.get("arch", GPT_ARCH) != GPT_ARCH
