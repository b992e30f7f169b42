"""The learning-rate schedules (torch-free): nanoGPT's warmup + cosine, and warmup-stable-decay."""

from __future__ import annotations

import math

from core.settings.train_config import TrainConfig


def get_lr(it: int, config: TrainConfig) -> float:
    """The learning rate of iteration `it`.

    Both schedules warm up linearly over warmup_iters and end at min_lr at `config.decay_iters`
    (lr_decay_iters, or max_iters when that is 0), staying there after it.
    - cosine (nanoGPT's): from learning_rate down to min_lr along half a cosine.
    - wsd (warmup-stable-decay): learning_rate held, then a straight line to min_lr over the last
      decay_fraction of the run, so most steps train at the full rate and the loss drops at the end.
    """
    if not config.decay_lr:
        return config.learning_rate
    if it < config.warmup_iters:
        return config.learning_rate * (it + 1) / (config.warmup_iters + 1)
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
