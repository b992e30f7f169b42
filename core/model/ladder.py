"""The steps of "Let's build GPT" as models of their own, written the way the lecture builds them.

`BigramLanguageModel` reads the next token's logits straight out of a (V, V) embedding table. The
`LanguageModel` grows as the lecture's model does, one piece per step (core.model.arch.STEPS): token and
position embeddings with one self-attention `Head`, then `MultiHeadAttention`, then a `FeedForward`, then
`Block`s with residual connections, then LayerNorm. The names (`token_embedding_table`, `sa_head`,
`blocks.0.sa.heads.0.key`, ...) are the lecture's. The last step, the full GPT, is core.model.gpt's,
untouched; `build` makes whichever a config names.

Every model here has the interface the rest of the program uses of a GPT: `config` (with vocab_size and
block_size), `forward(idx, targets=None)` giving (logits, loss) (without targets: the last position's
logits only), `get_num_params()` and `configure_optimizers()` (nanoGPT's AdamW groups, the GPT's own
method). They have no KV cache: generation re-reads the window (core.model.gpt.ContextWindow).

Weights start as the lecture's final code starts them (normal, std 0.02; biases zero), so every step
begins at the loss of a uniform guess, ln(vocab_size). Shapes in comments: B batch, T tokens, C = n_embd,
hs the head size, V = vocab_size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from core.model.arch import GPT_ARCH, LADDER_ARCHS, arch_of
from core.model.gpt import GPT, GPTConfig, ModelError, check_shape


@dataclass
class LadderConfig:
    """A ladder step's shape; the field names are GPTConfig's, plus `arch` (core.model.arch.STEPS)."""

    arch: str = "bigram"
    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 3
    n_head: int = 3
    n_embd: int = 96
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.arch not in LADDER_ARCHS:
            raise ModelError(f"arch must be one of {', '.join(LADDER_ARCHS)}, got {self.arch!r}")
        check_shape(self)

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> LadderConfig:
        """The config `args` describe (a checkpoint's model_args, or settings plus vocab_size); other keys are ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in args.items() if key in known})


class Head(nn.Module):
    """One head of causal self-attention: each token's query weighs the keys of the tokens up to it."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float) -> None:
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T): affinities, scaled to unit variance
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # a token never looks ahead
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, hs)
        return wei @ v  # (B, T, hs)


class MultiHeadAttention(nn.Module):
    """Several heads side by side, their outputs joined; from the `blocks` step on, projected back (`proj`)."""

    def __init__(self, n_embd: int, num_heads: int, head_size: int, block_size: int, dropout: float, proj: bool) -> None:
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
        self.proj = nn.Linear(head_size * num_heads, n_embd) if proj else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, num_heads * hs)
        if self.proj is not None:
            out = self.dropout(self.proj(out))  # (B, T, C): back into the residual stream
        return out


class FeedForward(nn.Module):
    """A linear layer and a ReLU per position; inside blocks 4x wider and projected back, as in the paper."""

    def __init__(self, n_embd: int, dropout: float, in_block: bool) -> None:
        super().__init__()
        if in_block:
            self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))
        else:  # the lecture's first feed-forward, before the blocks
            self.net = nn.Sequential(nn.Linear(n_embd, n_embd), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """Communication (attention), then computation (feed-forward), each added to the residual stream."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float, layer_norm: bool) -> None:
        super().__init__()
        head_size = n_embd // n_head
        self.sa = MultiHeadAttention(n_embd, n_head, head_size, block_size, dropout, proj=True)
        self.ffwd = FeedForward(n_embd, dropout, in_block=True)
        self.ln1 = nn.LayerNorm(n_embd) if layer_norm else nn.Identity()
        self.ln2 = nn.LayerNorm(n_embd) if layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class LadderModel(nn.Module):
    """What every step's model shares: the loss, the parameter count, the optimizer, the initialisation."""

    config: LadderConfig

    configure_optimizers = GPT.configure_optimizers  # nanoGPT's AdamW groups: decay on matrices and embeddings

    _init_weights = staticmethod(GPT._init_weights)  # nanoGPT's: N(0, 0.02) weights, zero biases

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; non_embedding leaves out the position embeddings, as GPT.get_num_params does."""
        n = sum(p.numel() for p in self.parameters())
        positions = getattr(self, "position_embedding_table", None)
        if non_embedding and positions is not None:
            n -= positions.weight.numel()
        return n

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        """The logits (B, T, V) of token ids `idx` (B, T)."""
        raise NotImplementedError

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache: None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As GPT.forward: with `targets` the logits (B, T, V) and the mean cross-entropy (targets of -1
        ignored); without, the last position's logits (B, 1, V) and None. There is no KV cache."""
        if kv_cache is not None:
            raise ModelError("the lecture's step models have no KV cache")
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ModelError(f"{T} tokens exceed the block size {self.config.block_size}")
        logits = self.logits(idx)
        if targets is None:
            return logits[:, [-1], :], None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


class BigramLanguageModel(LadderModel):
    """Step 1: each token reads the logits for the next one straight off its row of a (V, V) table."""

    def __init__(self, config: LadderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.vocab_size)
        self.apply(self._init_weights)

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        return self.token_embedding_table(idx)  # (B, T, V)


class LanguageModel(LadderModel):
    """Steps 2 to 6: embeddings, then what the step adds (in the lecture's order), then the lm_head."""

    def __init__(self, config: LadderConfig) -> None:
        super().__init__()
        self.config = config
        C, H, block, p = config.n_embd, config.n_head, config.block_size, config.dropout
        self.token_embedding_table = nn.Embedding(config.vocab_size, C)
        self.position_embedding_table = nn.Embedding(block, C)
        arch = config.arch
        if arch == "head":
            self.sa_head = Head(C, C, block, p)  # one head as wide as the embedding
        elif arch in ("heads", "ffwd"):
            self.sa_heads = MultiHeadAttention(C, H, C // H, block, p, proj=False)  # H heads of C/H, joined
            if arch == "ffwd":
                self.ffwd = FeedForward(C, p, in_block=False)
        else:  # blocks, layernorm
            layer_norm = arch == "layernorm"
            self.blocks = nn.Sequential(*[Block(C, H, block, p, layer_norm) for _ in range(config.n_layer)])
            if layer_norm:
                self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, config.vocab_size)
        self.apply(self._init_weights)

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        x = tok_emb + pos_emb  # (B, T, C)
        for name in ("sa_head", "sa_heads", "ffwd", "blocks", "ln_f"):  # the step's pieces, in the lecture's order
            piece = getattr(self, name, None)
            if piece is not None:
                x = piece(x)  # (B, T, C)
        return self.lm_head(x)  # (B, T, V)


def build(args: Mapping[str, Any]) -> GPT | LadderModel:
    """The model `args` describe (a checkpoint's model_args, or settings plus vocab_size): a GPT when they
    name no ladder step (core.model.arch.arch_of), else that step's model. ModelError for impossible args."""
    arch = arch_of(args)
    if arch == GPT_ARCH:
        return GPT(GPTConfig.from_args(args))
    config = LadderConfig.from_args(args)
    return BigramLanguageModel(config) if arch == "bigram" else LanguageModel(config)


def config_class(args: Mapping[str, Any]) -> type[GPTConfig | LadderConfig]:
    """The config dataclass whose fields `args` should have."""
    return GPTConfig if arch_of(args) == GPT_ARCH else LadderConfig
