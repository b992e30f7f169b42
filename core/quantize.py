"""Lower-precision inference weights for sampling and chat: bfloat16, and int8 weight-only quantization.

`to_precision(model, name)` converts a loaded float32 `GPT` in place, for inference only (never train it
afterwards). The names and their descriptions live in the torch-free `core.sampling.PRECISIONS`.

- `bfloat16`: every weight and activation in bfloat16 (half the memory of float32).
- `int8`: each Linear's weight becomes int8 with one symmetric scale per output channel
  (w ~= q * scale, q in [-127, 127], scale = max|w| / 127 over the row); activations stay float
  (bfloat16), and the matrix product is `torch.ops.aten._weight_int8pack_mm`, the weight-only int8 kernel
  gpt-fast uses, for a few rows at a time (decoding): on CPU it is fast with bfloat16 activations (with float32 ones it is several times
  slower than a float32 Linear), so the rest of the model (LayerNorms, position embeddings, attention,
  the KV cache) computes in bfloat16 too. The tied token embedding reads its rows from lm_head's int8
  copy (a row of the head is a token's embedding, and its scale is that row's), so the largest matrix is
  stored once, in int8.

The model file stays nanoGPT's: the Linear modules are swapped from the outside, and
`GPT.new_kv_cache` takes the compute dtype from the final LayerNorm, which is never quantized.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.model import GPT
from core.sampling import SamplerError, check_precision

# Up to this many rows (tokens) at once, the int8 kernel; above it (a prompt's prefill, a loss over whole
# windows), dequantizing to bfloat16 and one bfloat16 matmul is faster on CPU: 1 thread, 2304 x 768,
# 256 rows: 14 ms vs 5 ms; 1 row: 0.10 ms vs 1.05 ms.
KERNEL_MAX_ROWS = 16
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.bfloat16}


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8: (q int8 (N, K), scales float32 (N,)) with weight ~= q * scales[:, None]."""
    w = weight.detach().float()
    scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # a row of zeros gets a tiny scale, not 0/0
    q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales


class Int8Linear(nn.Module):
    """A Linear whose weight is int8 with per-output-channel scales; x @ (q * scales).T + bias."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        q, scales = quantize_int8(linear.weight)
        # A frozen Parameter, so the parameter count stays the model's; the scales are a buffer.
        self.weight = nn.Parameter(q, requires_grad=False)  # (N, K) int8
        self.register_buffer("scales", scales.to(dtype))  # (N,) in the compute dtype
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().to(dtype), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(self.scales.dtype).contiguous()  # the kernel takes 2-D input
        if flat.shape[0] <= KERNEL_MAX_ROWS:
            y = torch.ops.aten._weight_int8pack_mm(flat, self.weight, self.scales)  # (M, N)
            if self.bias is not None:
                y = y + self.bias
        else:
            y = F.linear(flat, self.dequantized(), self.bias)
        return y.reshape(*x.shape[:-1], self.out_features)

    def dequantized(self) -> torch.Tensor:
        """The weight this layer multiplies by, in its compute dtype (N, K)."""
        return self.weight.to(self.scales.dtype) * self.scales[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8, bias={self.bias is not None}"


class Int8TiedEmbedding(nn.Module):
    """The token embedding read from the tied head's int8 copy: row i is q[i] * scales[i]."""

    def __init__(self, head: Int8Linear) -> None:
        super().__init__()
        # Not a submodule: lm_head owns the tensors (stored, counted and moved once); this reads them.
        object.__setattr__(self, "head", head)

    @property
    def weight(self) -> torch.Tensor:
        return self.head.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        scales = self.head.scales
        return F.embedding(idx, self.head.weight).to(scales.dtype) * scales[idx].unsqueeze(-1)


def model_precision(model: GPT) -> str:
    """The precision `model` was converted to ("float32" when it never was)."""
    return getattr(model, "precision", "float32")


def to_precision(model: GPT, precision: str) -> GPT:
    """Convert a float32 `model` in place for inference at `precision`; returns it.

    Raises SamplerError for an unknown name, and for a model already converted
    to another precision (reload the checkpoint instead: int8 cannot be undone), and when the device
    cannot compute in bfloat16.
    """
    precision = check_precision(precision)
    current = model_precision(model)
    if current == precision:
        return model
    if current != "float32":
        raise SamplerError(f"this model is already in {current}: load the checkpoint again to convert it to {precision}")
    dtype = COMPUTE_DTYPES[precision]
    if dtype != torch.float32:
        device = model.lm_head.weight.device
        try:
            torch.ones(2, 2, dtype=dtype, device=device) @ torch.ones(2, 2, dtype=dtype, device=device)
        except RuntimeError as error:
            raise SamplerError(f"precision {precision} needs {dtype} on {device}, which fails there: {error}") from None
    model.eval()
    if precision == "int8":
        tied = model.transformer.wte.weight is model.lm_head.weight
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, Int8Linear(child, dtype))
        if tied:
            model.transformer.wte = Int8TiedEmbedding(model.lm_head)
    model.to(dtype)  # floating-point parameters only: the int8 weights stay int8
    model.precision = precision
    return model


def weight_bytes(model: nn.Module) -> int:
    """Bytes the model's parameters and buffers take (a tensor shared by two modules counts once)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())
