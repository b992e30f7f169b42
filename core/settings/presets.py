"""Named starting settings for TrainConfig (torch-free: the CLI and the Train screen list them)."""

from __future__ import annotations

from typing import Any

from core.settings.train_config import ConfigError, TrainConfig, check_keys


def with_samples(settings: dict[str, Any]) -> dict[str, Any]:
    """A preset that writes a sample at every eval, one block long, unless it says otherwise.

    Short so they cost little: past block_size each new token re-reads the whole window (measured on the
    cpu preset: 100 tokens took 3.5x as long as 64; 64 tokens cost 0.4% of the 250 steps between evals).
    """
    return {"sample_interval": settings["eval_interval"], "sample_tokens": settings["block_size"], **settings}


# Each preset sets the model and schedule; anything it leaves out keeps TrainConfig's default. None sets
# lr_decay_iters: its default 0 ends the decay with the run, whatever max_iters becomes (nanoGPT's recipes
# set it to max_iters).
PRESETS: dict[str, dict[str, Any]] = {name: with_samples(settings) for name, settings in {
    # nanoGPT's README recipe for a CPU (a MacBook): about 3 minutes to a recognisable Shakespeare.
    "cpu": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                max_iters=2000, eval_interval=250, eval_iters=20, log_interval=1),
    # Seconds on a laptop: for tests and quick demos.
    "tiny": dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, dropout=0.0,
                 max_iters=200, warmup_iters=10, eval_interval=50, eval_iters=5,
                 log_interval=1),
    # The modern recipe on the model that reaches val loss 1.88 on Tiny Shakespeare (char) soonest on a CPU
    # (`nanogpt-tui bench speedrun`), by iteration 200. Tokens to 1.88 (batch 16, the rates before), and
    # training tokens/s against 3 x 96 (one thread, side by side): 2 x 64 430k at 2.5x, 2 x 48 560k at 3.1x,
    # 3 x 64 380k at 1.9x, 2 x 96 340k at 1.5x, 1 x 128 460k at 1.6x, 3 x 96 305k (the preset before: 13.8 s on
    # 2 cores). Batch 32 needs ~11% more tokens than 16 (250 iterations, not 450) but pays a step's fixed costs
    # (Muon's orthogonalisation, the ops' dispatch) half as often: 5.7 s to 1.88 against 6.4 s side by side on 2
    # cores; 24 and 48 came between, 64 was slower. muon_lr 0.03-0.04 beat 0.02 (and 0.05-0.06 at batch 32);
    # relu2, untie_head and warmup 0 did not help; the token shift did (val 1.854 at iteration 250 in `bench
    # speedrun` against 1.874); `shuffle` made no sure difference in its half epoch (val at 275 iterations,
    # seeds 1337, 7 and 1: 1.861, 1.855, 1.853 against 1.831, 1.858, 1.860). Muon's momentum at 0.85 with
    # AdamW's learning_rate at 1.8e-2 (from 0.95 and 6e-3; core.settings.budget has the figures) brought val at
    # 230 iterations from 1.887 to 1.829 (mean of five seeds), so it stops at 200 (1.836-1.873; 170:
    # 1.863-1.896). Its evals are few and short: 5 batches a split every 50 iterations cost about 7% of the run
    # (a forward pass is a third of a step).
    "fast": dict(n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=32, dropout=0.0,
                 rope=True, qk_norm=True, token_shift=True, muon=True, muon_lr=0.04, muon_momentum=0.85,
                 learning_rate=1.8e-2, min_lr=1.8e-3, wsd=True, decay_fraction=0.4, warmup_iters=10, max_iters=200,
                 eval_interval=50, eval_iters=5, log_interval=1),
    # nanoGPT's config/train_shakespeare_char.py, for a GPU.
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                             learning_rate=1e-3, min_lr=1e-4, max_iters=5000,
                             warmup_iters=100, eval_interval=250, eval_iters=200, log_interval=10),
    # nanoGPT's config/finetune_shakespeare.py (gpt2-xl on a GPU) adapted for a CPU: GPT-2's weights from
    # models/gpt2 (init_from; the dataset must be tokenized with gpt2), a small constant learning rate, 20
    # iterations of 1 x 32 sequences, an eval (and a ckpt.pt) every 5. Positions are cropped to 256 rather
    # than 1024, and eval_iters is 20 rather than 40: a quarter of the work per iteration and eval, for a CPU.
    "finetune": dict(init_from="gpt2", block_size=256, batch_size=1, gradient_accumulation_steps=32, dropout=0.0,
                     learning_rate=3e-5, min_lr=3e-6, decay_lr=False, warmup_iters=0, max_iters=20,
                     eval_interval=5, eval_iters=20, log_interval=1, sample_tokens=64),
}.items()}


def from_preset(name: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a named preset, with some fields replaced."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    check_keys(overrides)
    return TrainConfig(**{**PRESETS[name], **overrides})
