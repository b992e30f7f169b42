"""The GPT-2 architecture as nanoGPT has it, with nanoGPT's parameter names, plus a KV cache.

Modern recipe knobs, each off by default (GPTConfig): `rope` (rotary position embeddings, no wpe),
`rmsnorm` (RMSNorm for every LayerNorm), `qk_norm` (RMS-normalised queries and keys), `relu2` (ReLU²
in the MLP), `untie_head` (lm_head has its own weight), `token_shift` (each position's embedding adds a
learned share of the previous token's). With all off the model is nanoGPT's, weights and math alike.

Shapes in comments: B batch, T tokens in this call, C = n_embd, nh = n_head, hs = C // nh,
V = vocab_size, S = tokens the attention looks at (cached + new).

A nanoGPT state_dict loads into `GPT` with `strict=True` once its `_orig_mod.` prefixes are stripped.

Inference past the block (`ContextWindow`): learned absolute position embeddings mean a cached key
belongs to its position, so the cache cannot simply slide. When the text outgrows the block, the window
jumps forward and keeps the last `keep_tokens(block_size)` (3/4 of the block) tokens, which are
re-prefilled in one batched forward. The next quarter of a block is then decoded one cheap token at a
time, so the amortised cost per token stays O(block) rather than the O(block^2) of recomputing the whole
window for every token. The uncached path follows the same window policy, so both give the same logits.
With `rope` the same policy holds: the kept tail is re-fed from position 0 in both paths, and a rotary
key cached at position p is only ever read by queries of the same window.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F


class ModelError(ValueError):
    """A bad model configuration or input, with a message the user can act on."""


def check_shape(config: Any) -> None:
    """Raise ModelError unless a model config's sizes are positive integers, n_embd splits into n_head
    heads and dropout is in [0, 1) (GPTConfig's, and the ladder's steps')."""
    for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ModelError(f"{name} must be a positive integer, got {value!r}")
    if config.n_embd % config.n_head:
        raise ModelError(f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
    if not 0.0 <= config.dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {config.dropout!r}")


@dataclass
class GPTConfig:
    """The model's shape; the field names are nanoGPT's `model_args` keys."""

    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64, as nanoGPT does
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms, like GPT-2
    # The modern recipe, each off by default (old checkpoints' model_args lack them).
    rope: bool = False  # rotary position embeddings on q and k instead of learned positions (no wpe)
    rmsnorm: bool = False  # RMSNorm (a gain, no bias, no mean) instead of LayerNorm
    qk_norm: bool = False  # RMS-normalise each head's queries and keys before attention
    relu2: bool = False  # relu(x)**2 instead of GELU in the MLP
    untie_head: bool = False  # lm_head gets a weight of its own instead of sharing wte's
    token_shift: bool = False  # each position's embedding plus shift_gain x the previous token's

    def __post_init__(self) -> None:
        check_shape(self)
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ModelError(f"rope needs an even head size, got n_embd / n_head = {self.n_embd // self.n_head}")

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> GPTConfig:
        """The config that `args` describe: a checkpoint's model_args, or training settings plus vocab_size.

        The one place a dict becomes a GPTConfig: keys that are not fields are ignored (a TrainConfig's
        other settings, whatever else a file holds), and missing ones keep their defaults, so nanoGPT's
        model_args (no recipe knobs) give nanoGPT's architecture and ours round-trip.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in args.items() if key in known})


class LayerNorm(nn.Module):
    """LayerNorm whose bias can be switched off (nn.LayerNorm could not before torch 2.1)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class RMSNorm(nn.Module):
    """x / rms(x) * gain: LayerNorm without the mean and the bias. Its gain keeps LayerNorm's name."""

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, 1e-5)


def norm(config: GPTConfig) -> nn.Module:
    """The model's normalisation layer: LayerNorm (nanoGPT's) or RMSNorm."""
    return RMSNorm(config.n_embd) if config.rmsnorm else LayerNorm(config.n_embd, bias=config.bias)


def rotary_tables(block_size: int, head_size: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (block_size, hs/2) of each position's rotation angle for each pair of channels."""
    inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (hs/2,)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # (block_size, hs/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate each channel pair (2i, 2i + 1) of x (..., hs) by its position's angle.

    A pair is a complex number and `rotation` (broadcast to x's shape, last dim hs/2) holds e^(i angle),
    so the rotation is one complex multiply: fewer ops, forward and backward, than cos/sin arithmetic.
    """
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (..., hs/2) complex
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)  # (..., hs)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; with a layer's cache it attends over the cached keys too."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.qk_norm = config.qk_norm
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        # Attention dropout happens inside scaled_dot_product_attention, so it is a rate, not a module.
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def queries_keys_values(
        self, x: torch.Tensor, rotary: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (B, nh, T, hs) each, for x (B, T, C): what the attention weighs (the Model screen reads them too)."""
        B, T, C = x.shape
        hs = C // self.n_head
        qkv = self.c_attn(x)  # (B, T, 3C): q, k and v side by side
        qk = qkv[..., : 2 * C].view(B, T, 2, self.n_head, hs)  # q and k together: each knob is one op for both
        v = qkv[..., 2 * C :].view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if self.qk_norm:
            qk = F.rms_norm(qk, (hs,))  # each head's query and key to unit RMS
        if rotary is not None:  # (T, 1, 1, hs/2): the rotations of positions start .. start + T - 1
            qk = apply_rotary(qk, rotary)
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # 2 x (B, nh, T, hs)
        return q, k, v

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
        rotary: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.queries_keys_values(x, rotary)  # (B, nh, T, hs) each
        dropout_p = self.dropout if self.training else 0.0
        if kv is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            cache_k, cache_v = kv  # (B, nh, block_size, hs) each; positions [0, start) are filled
            cache_k[:, :, start : start + T] = k
            cache_v[:, :, start : start + T] = v
            k, v = cache_k[:, :, : start + T], cache_v[:, :, : start + T]  # (B, nh, S, hs), S = start + T
            # New token i sits at position start + i and may see positions 0..start + i. A single new
            # token sees everything, so it needs no mask. (is_causal would align the mask top-left.)
            mask = None
            if T > 1:
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """The position-wise feed-forward net: widen 4x, GELU (or ReLU²), project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.relu2 = config.relu2
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)  # (B, T, 4C)
        if self.relu2:
            r = F.relu(h)
            h = r * r  # not r.square() or r**2: their backward (pow's) is several times slower on a CPU
        else:
            h = self.gelu(h)
        return self.dropout(self.c_proj(h))  # (B, T, C)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = norm(config)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
        rotary: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), kv, start, rotary)
        return x + self.mlp(self.ln_2(x))


class KVCache:
    """Keys and values of every layer for the tokens fed so far, preallocated to the block size.

    `length` tokens are cached; `GPT.forward(idx, kv_cache=cache)` places `idx` at positions
    `length, length + 1, ...`, stores their keys and values and advances `length`.
    """

    def __init__(
        self,
        config: GPTConfig,
        batch_size: int = 1,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (batch_size, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.batch_size = batch_size
        self.block_size = config.block_size
        self.length = 0
        self.last_embedding: torch.Tensor | None = None  # (B, 1, C): the latest token's, for token_shift

    def reset(self) -> None:
        """Forget the cached tokens (the buffers are reused, stale entries are never read)."""
        self.length = 0
        self.last_embedding = None


class GPT(nn.Module):
    """nanoGPT's GPT: token + position embeddings, n_layer blocks, final LayerNorm, tied head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        modules = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=norm(config),
        )
        if config.rope:  # positions are rotations of q and k, not a learned table
            del modules["wpe"]
            cos, sin = rotary_tables(config.block_size, config.n_embd // config.n_head)
            self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, hs/2), not in the state_dict
            self.register_buffer("rope_sin", sin, persistent=False)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if not config.untie_head:
            # Weight tying: the output projection is the token embedding (one tensor, two names).
            self.transformer.wte.weight = self.lm_head.weight
        if config.token_shift:  # (C,) starts at zero: the model learns how much of the previous token to add
            self.shift_gain = nn.Parameter(torch.zeros(config.n_embd))

        self.apply(self._init_weights)
        # GPT-2 scales the projections into the residual stream by depth, so its variance stays bounded.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; a tied wte/lm_head counts once. non_embedding leaves out positions (wpe)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.config.rope:
            n -= self.transformer.wpe.weight.numel()
        return n

    def new_kv_cache(self, batch_size: int = 1) -> KVCache:
        """An empty cache on the model's device, in its compute dtype (that of the final LayerNorm's gain)."""
        weight = self.transformer.ln_f.weight
        return KVCache(self.config, batch_size, device=weight.device, dtype=weight.dtype)

    def rotation(self, start: int, T: int) -> torch.Tensor | None:
        """With rope: e^(i angle) of positions start .. start + T - 1, (T, 1, 1, hs/2); else None."""
        if not self.config.rope:
            return None
        # float: the buffers may have been cast to bfloat16
        rotary = torch.complex(self.rope_cos[start : start + T].float(), self.rope_sin[start : start + T].float())
        return rotary.view(T, 1, 1, -1)  # broadcast over batch, q/k and heads

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and loss for token ids `idx` (B, T).

        With `targets` (B, T): logits (B, T, V) and the mean cross-entropy (targets of -1 are ignored).
        Without: logits (B, 1, V) of the last position only, and loss None.
        With `kv_cache`: `idx` continues the cached tokens (see KVCache).
        """
        B, T = idx.shape
        start = 0 if kv_cache is None else kv_cache.length
        if start + T > self.config.block_size:
            where = f"{start} cached + {T} new tokens" if kv_cache is not None else f"{T} tokens"
            raise ModelError(f"{where} exceed the block size {self.config.block_size}")
        if kv_cache is not None and kv_cache.batch_size != B:
            raise ModelError(f"the KV cache holds batch size {kv_cache.batch_size}, the input has {B}")

        x = self.transformer.wte(idx)  # (B, T, C)
        if self.config.token_shift:
            # Each token's predecessor: none (zeros) before the first, the last cached token's before new ones.
            before = None if kv_cache is None else kv_cache.last_embedding  # (B, 1, C) or None
            if before is None:
                before = torch.zeros_like(x[:, :1])
            if kv_cache is not None:
                kv_cache.last_embedding = x[:, -1:]
            x = x + self.shift_gain * torch.cat([before, x[:, :-1]], dim=1)  # (B, T, C)
        rotary = self.rotation(start, T)
        if rotary is None:
            pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)  # (T,)
            x = x + self.transformer.wpe(pos)  # (T, C) position embeddings, broadcast over the batch
        x = self.transformer.drop(x)  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            kv = None if kv_cache is None else (kv_cache.k[i], kv_cache.v[i])
            x = block(x, kv, start, rotary)  # (B, T, C)
        x = self.transformer.ln_f(x)
        if kv_cache is not None:
            kv_cache.length += T

        if targets is not None:
            logits = self.lm_head(x)  # (B, T, V)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss
        # Generation needs only the next token's distribution: skip the head for the other positions.
        return self.lm_head(x[:, [-1], :]), None  # (B, 1, V)

    def configure_optimizers(
        self,
        weight_decay: float,
        learning_rate: float,
        betas: tuple[float, float],
        device_type: str,
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices and embeddings only (not on biases or LayerNorm gains)."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        # The fused kernel is faster, but only for CUDA tensors, and older torch lacks it.
        fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
        extra = {"fused": True} if fused else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)


def keep_tokens(block_size: int) -> int:
    """How many of the latest tokens stay in the window when the text outgrows the block."""
    return max(1, block_size * 3 // 4)


class ContextWindow:
    """Next-token logits for a growing token sequence, with or without a KV cache.

    The model sees `tokens[start:]`. When that grows past the block, `start` jumps so that only the
    last `keep_tokens(block_size)` tokens remain (see the module docstring). With the cache, only the
    tokens not yet cached are fed; after a jump the kept tail is re-prefilled in one forward.
    """

    def __init__(self, model: nn.Module, use_cache: bool = True) -> None:
        self.model = model  # a GPT, or any model with its forward and config.block_size (core.model.ladder's)
        self.block_size = model.config.block_size
        # Only the GPT has a KV cache: other models re-read the window for every token.
        self.cache = model.new_kv_cache() if use_cache and isinstance(model, GPT) else None
        self.device = next(model.parameters()).device
        self.start = 0

    def next_logits(self, tokens: list[int]) -> torch.Tensor:
        """Logits (V,) for the token after `tokens`, the whole sequence so far (never shortened)."""
        if not tokens:
            raise ModelError("at least one token is needed to predict the next one")
        if len(tokens) - self.start > self.block_size:
            self.start = len(tokens) - keep_tokens(self.block_size)
            if self.cache is not None:
                self.cache.reset()
        if self.cache is None:
            fed = tokens[self.start :]
        else:
            fed = tokens[self.start + self.cache.length :]
        if not fed:
            raise ModelError("next_logits needs a longer sequence than on the previous call")
        idx = torch.tensor([fed], dtype=torch.long, device=self.device)  # (1, T)
        logits, _ = self.model(idx, kv_cache=self.cache)  # (1, 1, V)
        return logits[0, -1]
