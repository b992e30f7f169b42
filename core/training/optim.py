"""Optimizers: nanoGPT's AdamW, or Muon for the hidden matrices with AdamW for the rest.

Muon (Keller Jordan's, 2024) keeps a Nesterov momentum of each hidden weight matrix's gradient and
steps along its orthogonalised version: the nearest matrix with all singular values ~1, found by a few
Newton–Schulz iterations. Embeddings, the head and the gains/biases stay on AdamW.

One `Muon` optimizer holds both kinds as param groups (`muon: True` or `False`), so the trainer's
GradScaler, gradient clipping, lr schedule and checkpoint round trip see a single optimizer. Its
state_dict is torch's: per parameter, `momentum_buffer` (Muon) or `step`, `exp_avg`, `exp_avg_sq` (AdamW);
the AdamW groups step with torch's own functional AdamW (`torch.optim.adamw.adamw`, multi-tensor).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.adamw import adamw

from core.model.gpt import GPT
from core.settings.train_config import TrainConfig

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # the quintic's a, b, c: fast growth of small singular values


def orthogonalize(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """An approximately orthogonal U V^T for each matrix of G (n, rows, cols) with rows <= cols.

    Quintic Newton–Schulz: X <- a X + b (X X^T) X + c (X X^T)^2 X, after scaling X to spectral norm <= 1.
    The singular values end up in roughly [0.7, 1.2], which is all Muon needs; all n at once (bmm).
    """
    a, b, c = NS_COEFFS
    X = G.bfloat16()  # as Keller Jordan's: the iteration is robust to bfloat16, and twice as fast
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # Frobenius norm >= spectral norm
    for _ in range(steps):
        A = torch.bmm(X, X.mT.contiguous())  # (n, rows, rows); bmm is slow on a transposed view on CPU
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b A + c A A
        X = torch.baddbmm(X, B, X, beta=a)  # a X + B X
    return X.to(G.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for the param groups with `muon=True` (2-D weights), AdamW for the others.

    Muon groups: lr, momentum, nesterov, ns_steps. Each update is orthogonalised and scaled by
    sqrt(max(1, rows / cols)); all the group's matrices are orthogonalised together, zero-padded to one
    shape, in one batched matmul.
    AdamW groups: lr, betas, eps, weight_decay (decoupled, as torch.optim.AdamW).
    """

    def __init__(self, groups: list[dict[str, Any]], lr: float = 1e-3, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5, betas: tuple[float, float] = (0.9, 0.99),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, muon=False, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps,
                        betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(groups, defaults)
        for group in self.param_groups:
            if group["muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon groups take 2-D weight matrices only")

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                (self._muon_step if group["muon"] else self._adamw_step)(group, params)

    def _muon_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        grads = [p.grad for p in params]
        for p in params:
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)
        bufs = [self.state[p]["momentum_buffer"] for p in params]
        momentum = group["momentum"]
        for buf, grad in zip(bufs, grads):
            buf.lerp_(grad, 1 - momentum)  # buf = m buf + (1 - m) g
        # Nesterov: step along (1 - m) g + m buf, the momentum's look-ahead.
        updates = [grad.lerp(buf, momentum) for grad, buf in zip(grads, bufs)] if group["nesterov"] else bufs
        # Wide orientation (rows <= cols) makes X X^T the small product. Zero rows and columns pad every
        # update to one shape, so all are orthogonalised in one batched product: each Newton–Schulz product
        # keeps the zeros zero and the norm unchanged, so the result is each one's own, and on a CPU the
        # small products of a small model cost mostly their dispatch (measured on 2 cores: 2 x 64 1.25 ms a
        # step against 1.9 ms in one product per shape, 3 x 96 4.6 against 5.6 ms). The padding adds ~30% to
        # the products' FLOPs (a GPT's widest matrix is 4x its narrowest): a small share of a big model's step.
        wide = [u if u.size(0) <= u.size(1) else u.mT for u in updates]
        G = updates[0].new_zeros(len(wide), max(w.size(0) for w in wide), max(w.size(1) for w in wide))
        for j, w in enumerate(wide):
            G[j, : w.size(0), : w.size(1)] = w
        O = orthogonalize(G, group["ns_steps"])  # (n, rows, cols)
        for j, (p, w) in enumerate(zip(params, wide)):
            own = O[j, : w.size(0), : w.size(1)]
            update = own if p.size(0) <= p.size(1) else own.mT
            p.add_(update, alpha=-group["lr"] * math.sqrt(max(1.0, p.size(0) / p.size(1))))

    def _adamw_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            elif not torch.is_tensor(state["step"]):  # a checkpoint from before steps were tensors (an int)
                state["step"] = torch.tensor(float(state["step"]))
        beta1, beta2 = group["betas"]
        adamw(
            params, [p.grad for p in params], [self.state[p]["exp_avg"] for p in params],
            [self.state[p]["exp_avg_sq"] for p in params], [], [self.state[p]["step"] for p in params],
            foreach=True, amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
        )


def is_hidden_matrix(name: str, param: torch.Tensor) -> bool:
    """The weights Muon trains: 2-D matrices inside the blocks (attention and MLP), not embeddings or head."""
    return param.dim() == 2 and name.startswith("transformer.h.")


def build_optimizer(model: GPT, config: TrainConfig, device_type: str) -> torch.optim.Optimizer:
    """nanoGPT's AdamW (model.configure_optimizers), or with `config.muon` a Muon optimizer.

    Muon's groups: the hidden matrices (muon, lr muon_lr, momentum muon_momentum), then AdamW for the other matrices
    (embeddings, an untied head) with weight_decay, then AdamW for gains and biases without.
    The trainer scales every group's lr by get_lr(it) / learning_rate (see `group_lr`).
    """
    betas = (config.beta1, config.beta2)
    if not config.muon:
        return model.configure_optimizers(config.weight_decay, config.learning_rate, betas, device_type)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if is_hidden_matrix(n, p)], "muon": True, "lr": config.muon_lr},
        {"params": [p for n, p in named if not is_hidden_matrix(n, p) and p.dim() >= 2],
         "weight_decay": config.weight_decay},
        {"params": [p for n, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    return Muon([g for g in groups if g["params"]], lr=config.learning_rate, momentum=config.muon_momentum, betas=betas)


def group_lr(group: dict[str, Any], lr: float, config: TrainConfig) -> float:
    """A param group's learning rate when the schedule gives `lr`: Muon's follows it in proportion."""
    return lr * config.muon_lr / config.learning_rate if group.get("muon") else lr
