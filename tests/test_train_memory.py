"""core.settings.memory: the estimate that refuses a run too big for its device before anything is allocated."""

from __future__ import annotations

import dataclasses

import pytest

from core.model.gpt import GPT, GPTConfig
from core.settings.memory import parameter_count
from core.settings.presets import from_preset
from core.settings.train_config import NANOGPT_INCOMPATIBLE

KNOBS = ["bias", *NANOGPT_INCOMPATIBLE]


@pytest.mark.parametrize("knob", [None, *KNOBS])
def test_the_parameter_count_from_settings_is_the_models(knob: str | None) -> None:
    # Counted from the settings alone (torch-free), it must follow core.model.gpt as knobs are added.
    cfg = from_preset("tiny", dataset="d")
    if knob is not None:
        cfg = dataclasses.replace(cfg, **{knob: not getattr(cfg, knob)})
    vocab_size = 65
    model = GPT(GPTConfig.from_args(dataclasses.asdict(cfg) | {"vocab_size": vocab_size}))
    assert parameter_count(cfg, vocab_size) == sum(p.numel() for p in model.parameters())
