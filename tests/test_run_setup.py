"""Setting a run up (core.training.setup): the architecture a resume takes from its checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from core.model.gpt import GPTConfig
from core.settings.presets import from_preset
from core.settings.train_config import MODEL_KEYS, NANOGPT_INCOMPATIBLE
from core.training.setup import RunFolder, setup_run


def test_model_keys_are_the_gpt_config_fields_a_run_sets() -> None:
    # vocab_size comes from the dataset; every other field of the model is a training setting.
    assert set(MODEL_KEYS) == {f.name for f in dataclasses.fields(GPTConfig)} - {"vocab_size"}


def test_resuming_a_nanogpt_checkpoint_keeps_its_architecture(tiny_run: Path, tmp_path: Path) -> None:
    # A nanoGPT checkpoint: model_args without the recipe knobs, no version.
    ckpt = torch.load(tiny_run / "ckpt.pt", weights_only=True)
    ckpt["model_args"] = {k: v for k, v in ckpt["model_args"].items()
                          if k in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")}
    del ckpt["version"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    torch.save(ckpt, out_dir / "ckpt.pt")

    # Settings asking for knobs: the checkpoint's architecture (nanoGPT's: every knob off) wins, so the
    # settings the run saves describe the model it trains.
    config = from_preset("tiny", dataset=ckpt["config"]["dataset"], device="cpu", max_iters=20,
                         **dict.fromkeys(NANOGPT_INCOMPATIBLE, True))
    folder = RunFolder()
    built, _ = setup_run(config, out_dir / "ckpt.pt", folder)
    try:
        assert not any(getattr(built.config, knob) for knob in NANOGPT_INCOMPATIBLE)
        assert {k: getattr(built.config, k) for k in MODEL_KEYS} == {
            k: getattr(built.model.config, k) for k in MODEL_KEYS}
    finally:
        folder.release(set_up=True)
