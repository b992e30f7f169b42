"""The forward pass the Model screen and `inspect` teach is the one each model really runs: every recipe
knob combination of the GPT and every step of the lecture's ladder, checked against the modules and
functions its forward calls (forward hooks and a TorchFunctionMode)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from core.model.arch import LADDER_ARCHS
from core.model.forward_pass import forward_steps
from core.model.ladder import build
from core.settings.train_config import NANOGPT_INCOMPATIBLE

# The functions whose calls say which math ran (the modules' own calls are recorded by hooks).
WATCHED = {"layer_norm", "rms_norm", "gelu", "relu", "softmax", "scaled_dot_product_attention", "view_as_complex", "cat"}
IGNORED = (torch.nn.Dropout, torch.nn.Identity)  # identities at dropout 0, or a ladder step's missing LayerNorm
KNOBS = tuple(NANOGPT_INCOMPATIBLE)  # the recipe's model knobs
SHAPE = dict(block_size=16, vocab_size=30, n_layer=2, n_head=2, n_embd=16, dropout=0.0)


def general(name: str) -> str:
    """A module name with its block's and head's indices written `*`, as forward_steps writes them."""
    return re.sub(r"(^|\.)(h|heads|blocks)\.\d+", r"\1\2.*", name)


def recorded_calls(model: torch.nn.Module, idx: torch.Tensor) -> list[str]:
    """What the model's forward runs, in order, each distinct call once (later blocks and heads repeat the first's)."""
    calls: list[str] = []
    inside: list[str] = []  # the modules whose forward is running, innermost last
    handles = []
    for name, module in model.named_modules():
        def enter(_m: Any, _a: Any, name: str = name, leaf: bool = not list(module.children()),
                  ignored: bool = isinstance(module, IGNORED)) -> None:
            inside.append(general(name))
            if leaf and not ignored:
                calls.append(general(name))

        def leave(*_: Any) -> None:
            inside.pop()

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]

    class Functions(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if getattr(func, "__name__", "") in WATCHED:
                calls.append(f"{inside[-1]}:{func.__name__}")
            return func(*args, **(kwargs or {}))

    try:
        with Functions():
            model(idx, idx)
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(calls))


def listed_calls(config: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(call for row in forward_steps(config) for call in row.calls))


KNOB_COMBINATIONS = [dict(zip(KNOBS, values)) for values in itertools.product((False, True), repeat=len(KNOBS))]


@pytest.mark.parametrize("knobs", KNOB_COMBINATIONS, ids=lambda k: "+".join(n for n, on in k.items() if on) or "nanogpt")
def test_the_listed_steps_are_what_the_gpt_runs(knobs: dict[str, bool]) -> None:
    model = build({**SHAPE, **knobs})
    config = dataclasses.asdict(model.config)
    idx = torch.randint(0, SHAPE["vocab_size"], (2, SHAPE["block_size"]))
    assert recorded_calls(model, idx) == listed_calls(config)
    text = " ".join(row.step for row in forward_steps(config))
    assert ("wpe" in text) != knobs["rope"] and ("rotary" in text) == knobs["rope"]
    assert ("QK-norm" in text) == knobs["qk_norm"] and ("RMSNorm" in text) == knobs["rmsnorm"]
    assert ("ReLU²" in text) == knobs["relu2"] and ("GELU" in text) != knobs["relu2"]
    assert ("untied" in text) == (model.lm_head.weight is not model.transformer.wte.weight)
    assert ("previous token" in text) == knobs["token_shift"]


@pytest.mark.parametrize("arch", LADDER_ARCHS)
def test_the_listed_steps_are_what_each_ladder_step_runs(arch: str) -> None:
    model = build({**SHAPE, "arch": arch})
    idx = torch.randint(0, SHAPE["vocab_size"], (2, SHAPE["block_size"]))
    assert recorded_calls(model, idx) == listed_calls(dataclasses.asdict(model.config))


def test_the_recorder_sees_a_step_that_is_not_listed() -> None:
    """A GPT with rope whose listing forgot it differs (the check can fail)."""
    model = build({**SHAPE, "rope": True})
    idx = torch.randint(0, SHAPE["vocab_size"], (1, 8))
    assert recorded_calls(model, idx) != listed_calls(dataclasses.asdict(model.config) | {"rope": False})
