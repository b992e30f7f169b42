"""Measuring the candidate models of a time budget on this machine, and the plan that follows.

The Trainer calls `plan_budget` first thing for a run with `budget_s`: it times a few training steps of
each candidate (core.settings.budget.CANDIDATES, smallest first) on random tokens of the dataset's
vocabulary, on the run's device and dtype, and lets core.settings.budget choose. Measuring stops at the
first candidate whose steps would not end within the share of the budget set aside for it, or that would
end worse than the one before it even at that one's step time (SPEED_HEADROOM), or after one predicted
to end worse than the one before it; it skips any that would not fit in memory or in the dataset. Every
second spent here counts in the budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from core.common.devices import autocast_context, needs_grad_scaler, use_all_cpu_cores
from core.dataset.format import load_dataset
from core.model.anatomy import flops_per_token
from core.model.gpt import GPT, GPTConfig
from core.settings.budget import (
    CANDIDATES,
    EVAL_STEP_COST,
    PROBE_STEPS,
    SPEED_HEADROOM,
    BudgetClock,
    Candidate,
    Choice,
    Measurement,
    budget_config,
    candidate_config,
    choose,
    core_parameters,
    past_the_best,
    predicted_loss,
    probe_seconds,
    too_big,
    training_seconds,
)
from core.settings.train_config import ConfigError, TrainConfig
from core.training.distributed import Distributed
from core.training.optim import build_optimizer
from core.training.setup import check_memory, check_settings


def load_lazily_imported() -> None:
    """Build a throwaway optimizer: the first one a process builds imports torch's compiler (seconds on a
    busy machine), which, like importing torch itself, should not count against a budget."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)])


def measure(config: TrainConfig, vocab_size: int, device: torch.device, clock: Callable[[], float],
            steps: int = PROBE_STEPS) -> float:
    """Tokens/s of training `config`'s model (its optimizer, dtype and clipping) on random tokens, from the
    fastest of `steps` timed steps after an untimed warm-up one (other load on the machine only slows a
    step down: the fastest is the machine's speed, and the run's clock follows the real one)."""
    torch.manual_seed(config.seed)
    model = GPT(GPTConfig.from_args(dataclasses.asdict(config) | {"vocab_size": vocab_size})).to(device)
    optimizer = build_optimizer(model, config, device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, config.dtype))
    autocast = autocast_context(device, config.dtype)
    x, y = (torch.randint(vocab_size, (config.batch_size, config.block_size), device=device) for _ in range(2))

    def step() -> None:
        with autocast:
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # waits for the step (a GPU queues its work)

    step()
    fastest = float("inf")
    for _ in range(steps):
        started = clock()
        step()
        fastest = min(fastest, clock() - started)
    return config.tokens_per_iter / max(fastest, 1e-9)


def step_flops(config: TrainConfig) -> float:
    """A training step's FLOPs (nanoGPT's estimate), to foresee how long a bigger candidate's probe takes."""
    return flops_per_token(core_parameters(config), dataclasses.asdict(config)) * config.tokens_per_iter


def plan_budget(
    config: TrainConfig, started: float, clock: Callable[[], float],
    candidates: Sequence[Candidate] = CANDIDATES, resume: object = None,
) -> tuple[TrainConfig, Choice]:
    """The settings of the best run `config.budget_s` allows (counted from `started` on `clock`), and the
    choice with its reasons; ConfigError when no candidate can be measured, or for a resume."""
    if resume is not None:
        raise ConfigError("a budget trains a new model of its choosing: resume with budget_s=0 and a "
                          "max_iters instead", "budget_s")
    info = load_dataset(config.dataset)
    # Every setting the candidates leave as they are, the device and dtype too, checked once.
    device = check_settings(candidate_config(config, candidates[0]), info.train_tokens, info.val_tokens, Distributed())
    if device.type == "cpu":
        use_all_cpu_cores()  # as the run will: the speed depends on it
    probe_end = started + probe_seconds(config.budget_s)
    measurements: list[Measurement] = []
    skipped: list[str] = []
    measured: TrainConfig | None = None  # the settings of the last candidate measured (measurements[-1])
    for index, candidate in enumerate(candidates):
        trial = candidate_config(config, candidate)
        problems = trial.problems(info.train_tokens, info.val_tokens)
        problem = problems[0][1] if problems else too_big(trial, info.train_tokens)
        if problem:
            skipped.append(f"{candidate.name}: {problem}")
            continue
        try:
            check_memory(trial, info.vocab_size, device)
        except ConfigError as error:
            skipped.append(f"{candidate.name}: {error}")
            continue
        if measured is not None:
            previous = measurements[-1]
            step_s = measured.tokens_per_iter / previous.tokens_per_s
            later = ", ".join(c.name for c in candidates[index:])
            expected = (PROBE_STEPS + 1) * step_s * step_flops(trial) / step_flops(measured)
            if clock() + expected > probe_end:
                skipped.append(f"{later}: measuring would take longer than the "
                               f"{probe_seconds(config.budget_s):.1f} s set aside for it")
                break
            # At best it trains its batch in the last one's step time (SPEED_HEADROOM); if it would lose even
            # so, bigger ones would too (past_the_best's reason).
            seconds = training_seconds(config.budget_s, clock() - started)
            best_speed = SPEED_HEADROOM * trial.tokens_per_iter / step_s
            if (predicted_loss(core_parameters(trial), best_speed * seconds, info.train_tokens) >
                    predicted_loss(previous.params, previous.tokens_per_s * seconds, info.train_tokens)):
                skipped.append(f"{later}: even at {previous.candidate.name}'s step time, {candidate.name} would end "
                               f"worse than {previous.candidate.name}")
                break
        speed = measure(trial, info.vocab_size, device, clock)
        measurements.append(Measurement(candidate, core_parameters(trial), speed))
        measured = trial
        if past_the_best(measurements, training_seconds(config.budget_s, clock() - started), info.train_tokens):
            if bigger := ", ".join(c.name for c in candidates[index + 1:]):
                skipped.append(f"{bigger}: bigger than {candidate.name}, which is predicted to end "
                               f"worse than {measurements[-2].candidate.name}")
            break
    choice = choose(measurements, training_seconds(config.budget_s, clock() - started), info.train_tokens, skipped)
    return budget_config(config, choice), choice


def budget_clock(config: TrainConfig, choice: Choice, started: float, params: int) -> BudgetClock:
    """The chosen run's clock, its first estimates from the measured speed: an eval's batches cost about
    EVAL_STEP_COST of a step each, its checkpoints ~1 s a GB (ckpt.pt and best.pt: weights and two moments)."""
    step_s = config.tokens_per_iter / choice.best.measurement.tokens_per_s
    checkpoint_bytes = 3 * 4 * params
    eval_s = 2 * config.eval_iters * EVAL_STEP_COST * step_s + 2 * (0.05 + checkpoint_bytes / 1e9)
    return BudgetClock(started + config.budget_s, step_s, eval_s)
