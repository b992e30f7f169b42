"""How much memory a training run needs, estimated before anything is allocated (torch-free).

The Trainer compares `estimate(config, vocab_size)` with the memory its device has free and refuses
a run that cannot fit (unless `force` is set), instead of climbing until the kernel kills it. The
estimate is rough on purpose (within a small factor), and errs on the large side:

- weights, gradients and the optimizer's two moments: float32 per parameter (`core.model.anatomy`'s
  memory_table; autocast keeps float32 weights whatever the compute dtype);
- activations kept for the backward pass, per micro-batch: about ACTIVATIONS_PER_LAYER tensors of
  (batch_size, block_size, n_embd) in each block (inputs of the norms, q/k/v, the attention output,
  the MLP's 4x-wide hidden layer before and after its activation), plus the logits and their
  log-softmax (batch_size, block_size, vocab_size). With dropout, scaled_dot_product_attention takes
  its math path, which keeps the (batch, head, block, block) attention weights and their mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.common.formatting import human_size
from core.model.anatomy import memory_table
from core.settings.train_config import TrainConfig

# (B, T, C) tensors a block keeps for its backward pass: with this, the estimate of the cpu preset at
# block_size 2048 was 1.0 GB, and a real forward, backward and AdamW step on the CPU grew the peak RSS by 1.0 GB.
ACTIVATIONS_PER_LAYER = 20
COMPUTE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    weights: int  # bytes
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        parts = ("weights", "gradients", "optimizer", "activations")
        return ", ".join(f"{name} {human_size(getattr(self, name))}" for name in parts)


def parameter_count(cfg: TrainConfig, vocab_size: int) -> int:
    """The model's parameters (a tied head once), from the settings alone, as core.model.gpt builds them."""
    C, L = cfg.n_embd, cfg.n_layer
    bias = C if cfg.bias else 0
    norm = C if cfg.rmsnorm else C + bias
    block = 2 * norm + (3 * C * C + 3 * bias) + (C * C + bias) + (4 * C * C + 4 * bias) + (4 * C * C + bias)
    embeddings = vocab_size * C * (2 if cfg.untie_head else 1) + (0 if cfg.rope else cfg.block_size * C)
    embeddings += C if cfg.token_shift else 0  # shift_gain
    return embeddings + L * block + norm


def estimate(cfg: TrainConfig, vocab_size: int) -> MemoryEstimate:
    """Bytes a run with these settings needs on its device (see the module docstring)."""
    params = parameter_count(cfg, vocab_size)
    _, weights, gradients, moments = memory_table(params)[0]  # the float32 row
    B, T, C, H = cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.n_head
    size = COMPUTE_BYTES.get(cfg.dtype, 4)
    per_layer = ACTIVATIONS_PER_LAYER * B * T * C * size
    if cfg.dropout > 0:
        per_layer += B * H * T * T * (size + 1)  # attention weights and their dropout mask
    logits = 2 * B * T * vocab_size * 4  # the loss is computed in float32
    activations = cfg.n_layer * per_layer + logits + B * T * C * size
    return MemoryEstimate(params, weights, gradients, moments, activations)


def available_system_memory() -> int | None:
    """Bytes of RAM this process can still use (MemAvailable, capped by a cgroup limit), or None if unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v2: a container's limit can be far below the machine's free memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_fits(cfg: TrainConfig, vocab_size: int, available: int | None, device: str) -> str | None:
    """Why the run cannot fit in `available` bytes on `device` (a message with figures), or None."""
    needed = estimate(cfg, vocab_size)
    if available is None or needed.total <= available:
        return None
    return (
        f"this run needs ~{human_size(needed.total)} on {device} ({needed.describe()}), "
        f"{human_size(max(available, 0))} available: lower batch_size or block_size, train a smaller model, "
        "or set force=true to try anyway"
    )
