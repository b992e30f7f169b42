"""Lower-precision inference weights for sampling and chat: bfloat16, and int8 weight-only quantization.

`to_precision(model, name)` converts a loaded float32 `GPT` in place, for inference only (never train it
afterwards). The names and their descriptions live in the torch-free `core.settings.sampling.PRECISIONS`.

Only the Linear layers' weights change (they are nearly all of the bytes a generated token reads):

- `bfloat16`: each Linear weight is stored in bfloat16 (half of float32).
- `int8`: each Linear weight becomes int8 with one symmetric scale per output channel
  (w ~= q * scale, q in [-127, 127], scale = max|w| / 127 over the row), a quarter of float32 in memory.
  Each product dequantizes the weight to bfloat16 and multiplies: torch has no public weight-only int8
  kernel (its `torch.ops.aten._weight_int8pack_mm` is private, `torch.ao`'s dynamic quantization is
  deprecated), so int8 saves memory, not time (on this CPU a 1-row 2304x768 product takes 0.39 ms
  against bfloat16's 0.15 ms; auto precision, which times each, picks it only where it is fastest).

Activations stay float32: each low-precision Linear casts its input to bfloat16 for the matrix product
only (the kernels are fast with bfloat16 inputs) and returns float32. LayerNorms, GELU, attention and the KV cache
stay in float32, where this CPU computes them several times faster than in bfloat16. The tied token
embedding reads its rows from lm_head's low-precision copy (a row of the head is a token's embedding, and
with int8 its scale is that row's), so the largest matrix is stored once. `core/model.py` stays
nanoGPT's: the modules are swapped from the outside.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.model.gpt import GPT
from core.settings.sampling import AUTO, SamplerError, check_precision

MATMUL_DTYPE = torch.bfloat16  # what low-precision Linears multiply in


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8: (q int8 (N, K), scales float32 (N,)) with weight ~= q * scales[:, None]."""
    w = weight.detach().float()
    scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # a row of zeros gets a tiny scale, not 0/0
    q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales


class LowPrecisionLinear(nn.Module):
    """A Linear whose weight is stored in bfloat16 or int8; float32 in, float32 out."""

    def __init__(self, linear: nn.Linear, precision: str) -> None:
        super().__init__()
        self.in_features, self.out_features, self.precision = linear.in_features, linear.out_features, precision
        # Frozen Parameters, so parameter counts stay the model's; the int8 scales are a buffer.
        if precision == "int8":
            q, scales = quantize_int8(linear.weight)
            self.weight = nn.Parameter(q, requires_grad=False)  # (N, K) int8
            self.register_buffer("scales", scales.to(MATMUL_DTYPE))  # (N,), in the dtype they multiply in
        else:
            self.weight = nn.Parameter(linear.weight.detach().to(MATMUL_DTYPE), requires_grad=False)
            self.scales = None
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(MATMUL_DTYPE)  # (M, K)
        y = F.linear(flat, self.dequantized())  # (M, N)
        # bias (float32) + y (bfloat16) promotes to float32 in the same op: one pass fewer per layer.
        y = y.to(x.dtype) if self.bias is None else self.bias + y
        return y.reshape(*x.shape[:-1], self.out_features)

    def dequantized(self) -> torch.Tensor:
        """The weight this layer multiplies by, in bfloat16 (N, K)."""
        if self.scales is None:
            return self.weight
        return self.weight.to(MATMUL_DTYPE) * self.scales[:, None]

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows `idx` of the weight, in float32: the tied token embedding's lookup."""
        rows = F.embedding(idx, self.weight).float()
        return rows if self.scales is None else rows * self.scales[idx].float().unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self.precision}, bias={self.bias is not None}"


class TiedEmbedding(nn.Module):
    """The token embedding read from the tied head's low-precision weight."""

    def __init__(self, head: LowPrecisionLinear) -> None:
        super().__init__()
        # Not a submodule: lm_head owns the tensors (stored, counted and moved once); this reads them.
        object.__setattr__(self, "head", head)

    @property
    def weight(self) -> torch.Tensor:
        return self.head.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head.rows(idx)


def model_precision(model: GPT) -> str:
    """The precision `model` was converted to ("float32" when it never was)."""
    return getattr(model, "precision", "float32")


def to_precision(model: GPT, precision: str) -> GPT:
    """Convert a float32 `model` in place for inference at `precision`; returns it.

    Raises SamplerError for an unknown name, for a model already converted to another precision (reload
    the checkpoint instead: int8 cannot be undone), and when the device cannot multiply in bfloat16.
    """
    precision = check_precision(precision)
    if precision == AUTO:
        raise SamplerError("auto is chosen by timing a loaded model: use core.inference.auto_precision.at_precision")
    current = model_precision(model)
    if current == precision:
        return model
    if current != "float32":
        raise SamplerError(f"this model is already in {current}: load the checkpoint again to convert it to {precision}")
    device = next(model.parameters()).device
    try:
        torch.ones(2, 2, dtype=MATMUL_DTYPE, device=device) @ torch.ones(2, 2, dtype=MATMUL_DTYPE, device=device)
    except RuntimeError as error:
        raise SamplerError(f"precision {precision} needs bfloat16 on {device}, which fails there: {error}") from None
    model.eval()
    # (the lecture's step models, core.model.ladder, have no tied head)
    tied = isinstance(model, GPT) and model.transformer.wte.weight is model.lm_head.weight
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, LowPrecisionLinear(child, precision))
    if tied:
        model.transformer.wte = TiedEmbedding(model.lm_head)
    model.precision = precision
    return model


def weight_bytes(model: nn.Module) -> int:
    """Bytes the model's parameters and buffers take (a tensor shared by two modules counts once)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())
