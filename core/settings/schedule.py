"""The learning-rate schedules (torch-free): nanoGPT's warmup + cosine, and warmup-stable-decay."""

from __future__ import annotations

import math

from core.settings.train_config import TrainConfig


def get_lr(it: int, config: TrainConfig, fraction: float | None = None) -> float:
    """The learning rate of iteration `it`.

    Both schedules warm up linearly over warmup_iters and end at min_lr at `config.decay_iters`
    (lr_decay_iters, or max_iters when that is 0), staying there after it.
    - cosine (nanoGPT's): from learning_rate down to min_lr along half a cosine.
    - wsd (warmup-stable-decay): learning_rate held, then a straight line to min_lr over the last
      decay_fraction of the run, so most steps train at the full rate and the loss drops at the end.
    A run on a time budget passes `fraction`, the share of its time that will have passed when this
    step ends (core.settings.budget.BudgetClock): after the warmup the schedule follows it instead of
    the iterations, and reaches min_lr at 1.
    """
    if not config.decay_lr:
        return config.learning_rate
    if it < config.warmup_iters:
        return config.learning_rate * (it + 1) / (config.warmup_iters + 1)
    if fraction is not None:
        return _at_fraction(min(1.0, max(0.0, fraction)), config)
    end = config.decay_iters
    if it > end:
        return config.min_lr
    if config.wsd:
        decay_start = max(config.warmup_iters, end - round(config.decay_fraction * end))
        if it < decay_start:
            return config.learning_rate
        progress = (it - decay_start) / max(1, end - decay_start)  # 0 -> 1
        return config.learning_rate + progress * (config.min_lr - config.learning_rate)
    progress = (it - config.warmup_iters) / (end - config.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)


def _at_fraction(fraction: float, config: TrainConfig) -> float:
    """The rate when `fraction` (0 -> 1) of a timed run has passed: wsd's line or the cosine."""
    if config.wsd:
        progress = max(0.0, (fraction - (1 - config.decay_fraction)) / config.decay_fraction)  # 0 -> 1
        return config.learning_rate + progress * (config.min_lr - config.learning_rate)
    coeff = 0.5 * (1.0 + math.cos(math.pi * fraction))
    return config.min_lr + coeff * (config.learning_rate - config.min_lr)
