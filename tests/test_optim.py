"""Muon: Newton–Schulz orthogonalisation, shapes, learning, param groups and its state_dict."""

from __future__ import annotations

import pytest
import torch

from core.model.gpt import GPT, GPTConfig
from core.settings.train_config import TrainConfig
from core.training.optim import Muon, build_optimizer, group_lr, orthogonalize


def test_newton_schulz_output_is_near_orthogonal() -> None:
    G = torch.randn(3, 32, 96, generator=torch.Generator().manual_seed(0))
    O = orthogonalize(G)
    assert O.shape == G.shape
    singular = torch.linalg.svdvals(O)  # (3, 32)
    assert singular.min() > 0.5 and singular.max() < 1.3  # the quintic's band around 1, not exactly 1
    eye = torch.eye(32).expand(3, 32, 32)
    assert (O @ O.mT - eye).abs().max() < 0.7
    # It keeps G's singular vectors: O is close to U V^T.
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    cosine = (O * (U @ Vh)).sum(dim=(-2, -1)) / (O.norm(dim=(-2, -1)) * (U @ Vh).norm(dim=(-2, -1)))
    assert cosine.min() > 0.95


def test_muon_steps_each_matrix_as_if_alone_though_all_are_orthogonalised_together() -> None:
    """Padded to one shape with zeros, each matrix still moves along its own orthogonalised momentum."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(24, 8), (8, 24), (8, 8), (16, 8), (8, 40)]
    together = [torch.nn.Parameter(torch.randn(*shape, generator=generator)) for shape in shapes]
    alone = [torch.nn.Parameter(p.detach().clone()) for p in together]
    grads = [torch.randn(*shape, generator=generator) for shape in shapes]
    optimizers = [Muon([{"params": together, "muon": True, "lr": 0.02}])]
    optimizers += [Muon([{"params": [p], "muon": True, "lr": 0.02}]) for p in alone]
    for p, q, grad in zip(together, alone, grads):
        p.grad, q.grad = grad.clone(), grad.clone()
    for optimizer in optimizers:
        optimizer.step()
    for p, q, shape in zip(together, alone, shapes):
        assert p.shape == shape
        # The same update up to bfloat16 rounding (the padded product sums in another order).
        torch.testing.assert_close(p.detach(), q.detach(), atol=2e-3, rtol=0)


def test_muon_keeps_shapes_and_lowers_the_loss() -> None:
    torch.manual_seed(0)
    tall, wide, square = torch.nn.Parameter(torch.randn(24, 8) * 0.1), torch.nn.Parameter(torch.randn(8, 24) * 0.1), \
        torch.nn.Parameter(torch.randn(8, 8) * 0.1)
    gain = torch.nn.Parameter(torch.ones(8))
    optimizer = Muon([{"params": [tall, wide, square], "muon": True, "lr": 0.02}, {"params": [gain]}], lr=1e-2)
    x = torch.randn(64, 24)
    target = torch.randn(64, 24)

    def loss_fn() -> torch.Tensor:
        return ((x @ tall @ square * gain) @ wide - target).pow(2).mean()

    first = loss_fn().item()
    for _ in range(100):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    assert loss_fn().item() < 0.8 * first
    assert tall.shape == (24, 8) and wide.shape == (8, 24) and square.shape == (8, 8) and gain.shape == (8,)
    state = optimizer.state_dict()
    assert set(state["state"][0]) == {"momentum_buffer"} and set(state["state"][3]) == {"step", "exp_avg", "exp_avg_sq"}
    with pytest.raises(ValueError, match="2-D"):
        Muon([{"params": [gain], "muon": True}])


def test_build_optimizer_groups() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=16, bias=False, untie_head=True))
    plain = build_optimizer(model, TrainConfig(), "cpu")
    assert isinstance(plain, torch.optim.AdamW)  # nanoGPT's, unchanged
    cfg = TrainConfig(muon=True, muon_lr=0.02, learning_rate=3e-3)
    optimizer = build_optimizer(model, cfg, "cpu")
    assert isinstance(optimizer, Muon)
    names = {id(p): n for n, p in model.named_parameters()}
    muon, matrices, gains = ([names[id(p)] for p in g["params"]] for g in optimizer.param_groups)
    assert len(muon) == 2 * 4 and all(n.startswith("transformer.h.") and n.endswith(".weight") for n in muon)
    assert sorted(matrices) == ["lm_head.weight", "transformer.wpe.weight", "transformer.wte.weight"]
    assert all(model.get_parameter(n).dim() == 1 for n in gains)
    assert [group_lr(g, 1.5e-3, cfg) for g in optimizer.param_groups] == pytest.approx([0.01, 1.5e-3, 1.5e-3])
    # muon_momentum is the Muon group's: after one step its buffer holds (1 - momentum) of the gradient
    cfg = TrainConfig(muon=True, muon_momentum=0.6)
    optimizer = build_optimizer(model, cfg, "cpu")
    model(torch.randint(37, (2, 16)), torch.randint(37, (2, 16)))[1].backward()
    matrix = optimizer.param_groups[0]["params"][0]
    gradient = matrix.grad.clone()
    optimizer.step()
    assert torch.allclose(optimizer.state[matrix]["momentum_buffer"], 0.4 * gradient)


def test_muons_adamw_groups_step_as_torchs_adamw_and_resume_from_integer_steps() -> None:
    torch.manual_seed(0)
    start = [torch.randn(6, 5), torch.randn(5)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    muon = Muon([{"params": ours, "weight_decay": 0.1}], lr=3e-3, betas=(0.9, 0.95))
    adamw = torch.optim.AdamW(theirs, lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    x = torch.randn(16, 6)

    def step(params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad()
        ((x @ params[0] + params[1]).tanh().pow(2).mean()).backward()
        optimizer.step()

    for _ in range(5):
        step(ours, muon)
        step(theirs, adamw)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, theirs))
    # A checkpoint saved when steps were ints still loads and continues from its step.
    saved = muon.state_dict()
    for state in saved["state"].values():
        state["step"] = int(state["step"])
    resumed = Muon([{"params": ours, "weight_decay": 0.1}], lr=3e-3, betas=(0.9, 0.95))
    resumed.load_state_dict(saved)
    step(ours, resumed)
    step(theirs, adamw)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, theirs))
    assert resumed.state_dict()["state"][0]["step"] == 6
