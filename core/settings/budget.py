"""Training to a time budget (torch-free): the candidate models, the choice among them, and the clock.

A run with `TrainConfig.budget_s` (`nanogpt-tui train --budget 2m`, the Train screen's Budget field)
gets the best model this machine can train in that time. core.training.budget measures; this module decides:

1. Measure: each candidate of CANDIDATES (smallest first) trains a few steps on random tokens, timed
   (`probe_seconds`: a small share of the budget; candidates that would not fit in it are left out, and
   so are those that would lose even at the best speed the last measured one allows, SPEED_HEADROOM, and
   those bigger than one predicted to end worse than the one before it: `past_the_best`).
2. Choose (`choose`): with its measured tokens/s each candidate would see `tokens = speed x seconds
   left`; the one whose predicted val loss (`predicted_loss`, a scaling law fitted on Tiny Shakespeare
   with this recipe) is lowest wins. A bigger model learns more per token but sees fewer of them.
3. Train on the clock (`BudgetClock`): the schedule follows the share of the time passed rather than
   the iterations (core.settings.schedule.get_lr's `fraction`): warmup, the full rate, then a linear
   decay that reaches min_lr (zero) at the last step, which ends when the time left is what the last eval and
   checkpoint take. Evals during the run are skipped when they would not leave time for those.

The settings a budget chooses (CHOSEN_KEYS) replace the user's; the others (device, dtype, seed,
weight decay, betas, grad_clip, compile, run name) stay theirs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.model.arch import GPT_ARCH
from core.settings.memory import parameter_count
from core.settings.train_config import MAX_ITERS, ConfigError, TrainConfig

# The modern recipe every candidate trains with (README: "The modern recipe"). The rate decays to zero,
# over a share of the run that grows with its length (`decay_fraction`). The token shift lowers the val loss
# reached in a fixed number of iterations (3x96 at 1,850: 1.587 and 1.594 against 1.600 and 1.601, seeds 1337
# and 7; 2x64 at 275: 1.849 against 1.871, mean of three seeds) for ~1% more time a step; a second one (two
# tokens back) or one more before each block's attention did not help (1.599, 1.589). RMSNorm, ReLU² and an
# untied head each ended 3x96 worse (1.615, 1.634, 1.628 against 1.608, with a decay to a tenth over half).
RECIPE: dict[str, Any] = dict(
    arch=GPT_ARCH,  # a budget trains the GPT, not a ladder step
    rope=True, qk_norm=True, token_shift=True, rmsnorm=False, relu2=False, untie_head=False, bias=False, dropout=0.0,
    muon=True, wsd=True, decay_lr=True, min_lr=0.0, gradient_accumulation_steps=1,
    lr_decay_iters=0, log_interval=1, sample_interval=0,
)


@dataclass(frozen=True)
class Candidate:
    """A model and batch a budget may choose, with the learning rates that suit it."""

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    batch_size: int
    learning_rate: float  # AdamW's (embeddings, head, gains)
    muon_lr: float
    warmup_iters: int
    muon_momentum: float = 0.95

    def settings(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        return RECIPE | fields


# Smallest first (measuring stops at the first that would not fit in its time). The small ones are for CPUs
# (their rates measured on Tiny Shakespeare), the big ones for GPUs, where small models leave the device
# idle and so train hardly faster than big ones (their rates follow nanoGPT's recipes: untested here, where
# there is no GPU). 2x64 is the `fast` preset's model at its batch, 32: it trains 1.23x the tokens a second
# of batch 16 on 2 cores, more on a busy machine, where each step's fixed costs grow; in 7 s here (the rates
# before) that is 275 iterations at 32 against 450 at 16, val 1.877 against 1.878 (mean of three seeds). The
# loss law below is fitted on its runs at batch 32.
# The small ones' rates: Muon's momentum at 0.85, not 0.95, with AdamW's learning_rate 2-3x what it was
# (each alone gains little): val after fixed iterations (the decay ending at the last) 2x64 at 230
# iterations 1.829 against 1.887 (mean of five seeds; AdamW 6e-3 / 1.2e-2 / 1.8e-2 / 2.4e-2 at momentum
# 0.8: 1.858 / 1.843 / 1.827 / 1.828; momentum 0.6 / 0.7 / 0.8 / 0.9 at 6e-3: 1.872 / 1.870 / 1.858 /
# 1.869), at 2,400 iterations 1.580 (1.586 at 1.2e-2); 3x96 at 1,850 with shuffle 1.560-1.568 against
# 1.573-1.578 (seeds 1337, 1, 2; AdamW 1.2e-2 alone 1.577, momentum 0.85 alone 1.579, 0.8 / 0.9 with
# 1.2e-2 1.563 / 1.566, 0.8 with 1.8e-2 1.576); 4x128 at 1,200 1.579 against 1.587. The big ones keep
# Keller Jordan's momentum and nanoGPT's rates: untried.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("2x64", n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=32, learning_rate=1.8e-2, muon_lr=0.04, warmup_iters=10, muon_momentum=0.85),
    Candidate("3x96", n_layer=3, n_head=3, n_embd=96, block_size=64, batch_size=16, learning_rate=1.2e-2, muon_lr=0.03, warmup_iters=10, muon_momentum=0.85),
    Candidate("4x128", n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=16, learning_rate=1e-2, muon_lr=0.03, warmup_iters=20, muon_momentum=0.85),
    Candidate("6x192", n_layer=6, n_head=6, n_embd=192, block_size=128, batch_size=16, learning_rate=3e-3, muon_lr=0.02, warmup_iters=40),
    Candidate("6x384", n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=32, learning_rate=2e-3, muon_lr=0.02, warmup_iters=100),
    Candidate("8x512", n_layer=8, n_head=8, n_embd=512, block_size=256, batch_size=64, learning_rate=1.5e-3, muon_lr=0.02, warmup_iters=200),
    Candidate("12x768", n_layer=12, n_head=12, n_embd=768, block_size=512, batch_size=64, learning_rate=1e-3, muon_lr=0.02, warmup_iters=300),
)
CHOSEN_KEYS = frozenset(RECIPE) | frozenset(CANDIDATES[0].settings()) | {
    "max_iters", "eval_interval", "eval_iters", "init_from", "decay_fraction", "shuffle"}

# The share of a run its decay takes: DECAY_SHORT's at its iterations and fewer, DECAY_LONG's at its and
# more, in proportion to log(iterations) between. Measured (val loss after fixed iterations, the decay
# ending at the last): 3x96 at 1,850 iterations (a minute here) 1.592 and 1.603 over the last 80% (seeds
# 1337 and 7; 1.600 over the 78% of this rule) against 1.598-1.601 and 1.606 over 50-65% and 1.608 and
# 1.611 decaying to a tenth over half; 2x64 at 450 (7 s) 1.878-1.879 over 50%, 65% or 80% (mean of three
# seeds); at 260-300, 40-50% beat 65-80% by 0.005-0.009.
DECAY_SHORT, DECAY_LONG = (256, 0.4), (2048, 0.8)  # (iterations, share)


PROBE_SHARE = 0.06  # of the budget, at most, spent measuring candidates
PROBE_MIN_S, PROBE_MAX_S = 0.4, 15.0
PROBE_STEPS = 3  # timed steps per candidate, after one untimed warm-up step
# A bigger candidate's step (no fewer layers, no fewer FLOPs: a test holds CANDIDATES to it) takes at least as
# long as a smaller one's. So before measuring it, its best possible speed is known: its batch in the last
# measured step time, with this headroom for that measurement's noise. Where even that loses, measuring it
# would only take time from training (a 7 s budget here: after 2x64's probe, 3x96 could at best reach 1.85
# in the time left, 2x64 1.82; measuring it took ~0.15 s, 2% of the budget: training began at 0.28 s, now 0.14).
SPEED_HEADROOM = 1.25
EVALS = 4  # evals while a budget run trains, besides its last
EVAL_SHARE = 0.04  # of the training time, about, that evals take in all
EVAL_STEP_COST = 0.4  # a batch's eval (a forward pass) against a training step (forward, backward, update)
SETUP_SHARE = 0.02  # of the budget, held back for building the run between the choice and the first step

# The loss law: predicted val loss = E + A / N^ALPHA + B / D^BETA, N the parameters inside the blocks,
# D the tokens trained (those past REPEATS epochs of the train split count ever less). Fitted on Tiny
# Shakespeare (char) with RECIPE and the candidates' rates as a budget trains them (seed 1337, the decay of
# `decay_fraction`, `shuffle` past one epoch): 15 runs of 2x64, 3x96 and 4x128 from 0.25M to 5.7M tokens
# and 6x192 at 1.2M, val loss within 0.0071 (rms) of the law, the worst 0.017 (2x64 at 1.4M). 2x64 reached
# 1.564 at 5.7M tokens, 3x96 1.545 at 2.5M and 1.513 at 5.7M, 4x128 1.542 at 1.6M and 1.497 at 3.4M, 6x192
# 1.559 at 1.2M (here 3x96 trains ~2.3x the tokens a second of 4x128: they tie at about 5 minutes). Left
# out: 6x192 at 0.5M tokens, its 40 warmup steps a sixth of its run (1.768, the law 1.672). Bigger models
# are extrapolations. On other text the values are off; the trade (a bigger model learns more per token
# but sees fewer) is what the choice rests on.
E, A, ALPHA, B, BETA = 1.32, 39.17, 0.48, 384.1, 0.54
REPEATS = 15.0
# Bigger than this many parameters (in the blocks) per train token, a model would mostly learn its data
# by heart in a long budget with no dropout: not a candidate.
MAX_PARAMS_PER_TOKEN = 10


def parse_duration(text: str) -> float:
    """Seconds in `text`: "90", "90s", "2m", "1.5m", "1h", "1m30s"; ConfigError for anything else."""
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return float(cleaned)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned or len({u for _, u in parts}) < len(parts):
        raise ConfigError(f"budget {text.strip()!r}: write a duration such as 90s, 2m, 1m30s or 1h", "budget_s")
    return sum(float(number) * {"h": 3600, "m": 60, "s": 1}[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """A duration as parse_duration reads it: 15s, 2m, 1m30s, 1h5m."""
    whole = round(seconds)
    if abs(seconds - whole) > 0.05:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def too_big(config: TrainConfig, train_tokens: int) -> str | None:
    """Why the candidate `config` is too big for a train split of `train_tokens` tokens, or None."""
    params = core_parameters(config)
    if params <= MAX_PARAMS_PER_TOKEN * train_tokens:
        return None
    return f"{params / 1e6:.1f}M parameters would learn {train_tokens / 1e6:.2f}M train tokens by heart"


def probe_seconds(budget_s: float) -> float:
    """The time measuring the candidates may take out of a budget."""
    return min(PROBE_MAX_S, max(PROBE_MIN_S, PROBE_SHARE * budget_s))


def candidate_config(base: TrainConfig, candidate: Candidate) -> TrainConfig:
    """`base` with the candidate's model, batch and recipe."""
    return dataclasses.replace(base, **candidate.settings())


def core_parameters(config: TrainConfig) -> int:
    """The parameters inside the transformer blocks (the law's N: embeddings do not count)."""
    return parameter_count(config, 0) - (0 if config.rope else config.block_size * config.n_embd)


def predicted_loss(params: int, tokens: float, train_tokens: int | None = None) -> float:
    """The loss law's val loss after training `tokens` tokens on a model with `params` core parameters;
    with `train_tokens` (the train split's size) repeated tokens count less and less."""
    if train_tokens:
        limit = REPEATS * train_tokens
        tokens = limit * (1 - math.exp(-tokens / limit))
    return E + A / max(params, 1) ** ALPHA + B / max(tokens, 1.0) ** BETA


@dataclass(frozen=True)
class Measurement:
    """A candidate's measured training speed on this machine."""

    candidate: Candidate
    params: int  # core parameters (the law's N)
    tokens_per_s: float


@dataclass(frozen=True)
class Option:
    """What a measured candidate would reach in the time left."""

    measurement: Measurement
    tokens: float
    iterations: int
    predicted: float


@dataclass(frozen=True)
class Choice:
    """The chosen candidate and the others it beat, best first."""

    options: tuple[Option, ...]
    seconds: float  # the training time they were compared on
    skipped: tuple[str, ...] = ()  # candidates not measured, with why
    train_tokens: int | None = None  # the train split's size, where known

    @property
    def best(self) -> Option:
        return self.options[0]

    def explain(self) -> str:
        """What was chosen and why, for the user."""
        best = self.best
        c = best.measurement.candidate
        lines = [
            f"budget: chose {c.name} ({c.n_layer} layers, {c.n_embd} wide, {best.measurement.params / 1e6:.2f}M "
            f"parameters in its blocks, batch {c.batch_size} x {c.block_size}): it trains "
            f"{best.measurement.tokens_per_s:,.0f} tokens/s here, so about {best.iterations:,} iterations "
            f"({best.tokens / 1e6:.2f}M tokens) in the {self.seconds:.0f} s left to train",
        ]
        if len(self.options) > 1:
            lines.append("predicted val loss (the loss law of core.settings.budget): " + ", ".join(
                f"{o.measurement.candidate.name} {o.predicted:.2f} ({o.measurement.tokens_per_s:,.0f} tokens/s)"
                for o in self.options))
        if self.skipped:
            lines.append("not measured: " + "; ".join(self.skipped))
        return "\n".join(lines)


def choose(measurements: Sequence[Measurement], seconds: float, train_tokens: int | None = None,
           skipped: Sequence[str] = ()) -> Choice:
    """The candidate with the lowest predicted val loss after `seconds` of training at its measured speed."""
    if not measurements:
        raise ConfigError("no candidate model could be measured for this budget" +
                          (f" ({'; '.join(skipped)})" if skipped else ""), "budget_s")
    options = []
    for m in measurements:
        tokens = m.tokens_per_s * seconds
        per_iter = m.candidate.batch_size * m.candidate.block_size
        options.append(Option(m, tokens, max(1, int(tokens // per_iter)), predicted_loss(m.params, tokens, train_tokens)))
    return Choice(tuple(sorted(options, key=lambda o: o.predicted)), seconds, tuple(skipped), train_tokens)


def past_the_best(measurements: Sequence[Measurement], seconds: float, train_tokens: int | None = None) -> bool:
    """Whether the latest of `measurements` (smallest first) is predicted to end worse in `seconds` than the
    one before it. In a fixed time the law's loss falls with size and then rises (a bigger model learns
    more per token but trains fewer), so bigger candidates would end worse still: measuring them would
    only take time from training (without 6x192's steps a minute's budget here began training at 0.6 s
    instead of 2.0 s)."""
    if len(measurements) < 2:
        return False
    before, latest = (predicted_loss(m.params, m.tokens_per_s * seconds, train_tokens) for m in measurements[-2:])
    return latest > before


def decay_fraction(iterations: int) -> float:
    """The share of a run of `iterations` steps over which its rate decays (DECAY_SHORT, DECAY_LONG)."""
    (short, low), (long, high) = DECAY_SHORT, DECAY_LONG
    between = math.log(min(max(iterations, short), long) / short) / math.log(long / short)  # 0 -> 1
    return low + between * (high - low)


def training_seconds(budget_s: float, elapsed: float) -> float:
    """The seconds left to train once `elapsed` seconds of the budget are spent: less the setup,
    the evals and the last eval and checkpoint (about EVAL_SHARE in all)."""
    return max(0.0, (budget_s - elapsed - SETUP_SHARE * budget_s) * (1 - EVAL_SHARE))


def budget_config(base: TrainConfig, choice: Choice) -> TrainConfig:
    """The settings of the chosen run: the candidate's, with evals spaced over its expected iterations and
    sized to take about EVAL_SHARE of its time, and `shuffle` when it will read its train split more than once. max_iters is that expectation, for progress displays: the
    clock, not max_iters, ends a budget run."""
    best = choice.best
    iterations = best.iterations
    # An eval costs 2 splits x eval_iters forward passes, each about EVAL_STEP_COST of a step.
    eval_iters = round(EVAL_SHARE * iterations / ((EVALS + 1) * 2 * EVAL_STEP_COST))
    return dataclasses.replace(
        candidate_config(base, best.measurement.candidate),
        max_iters=min(MAX_ITERS, iterations),
        decay_fraction=decay_fraction(iterations),
        eval_interval=max(1, iterations // (EVALS + 1)),
        eval_iters=min(50, max(2, eval_iters)),
        init_from=None,
        # Epochs pay once a run reads its data more than once; before, they made no sure difference
        # (core.dataset.batches), and nanoGPT's windows are the `fast` preset's: a short budget races it fairly.
        shuffle=choice.train_tokens is not None and best.tokens > choice.train_tokens,
    )


@dataclass
class BudgetClock:
    """When a budget run may step and evaluate, and how far through its time each step ends.

    All times are on the trainer's clock. The run must be over by `deadline`: the last eval and its
    checkpoints included, so steps stop at `end`, that much earlier. The estimates of a step (the time
    from one step's start to the next's, the trainer's own work included) and of an eval (with its
    checkpoints) start from the measured speed and follow what the run really takes.
    """

    deadline: float
    step_s: float
    eval_s: float
    start: float | None = None  # when training began (the first step_fraction call)
    last: float | None = None  # when the latest step started, unless an eval or pause came since

    @property
    def end(self) -> float:
        """When the last step must have ended."""
        return self.deadline - self.eval_s

    def step_fraction(self, now: float) -> float | None:
        """The share of the training time that will have passed when a step started `now` ends: 1.0 for
        the last step (the next would not end in time), None when this one would not."""
        if self.start is None:
            self.start = now
        if self.last is not None:  # a running mean that follows the machine's speed
            self.step_s = 0.8 * self.step_s + 0.2 * (now - self.last)
        self.last = now
        if now + self.step_s > self.end:
            return None
        if now + 2 * self.step_s > self.end:
            return 1.0
        return (now + self.step_s - self.start) / max(self.end - self.start, 1e-9)

    def eval_fits(self, now: float, steps_after: int = 1) -> bool:
        """Whether an eval now still leaves time for `steps_after` more steps and the last eval. (An eval
        just before the last one shows nothing new: the trainer asks for half an eval interval.)"""
        return now + self.eval_s + steps_after * self.step_s <= self.end

    def took_eval(self, seconds: float) -> None:
        """An eval (with its checkpoints) took this long; the time since the last step was its."""
        self.eval_s, self.last = seconds, None

    def pause(self, seconds: float) -> None:
        """The run was paused this long: that time does not count."""
        self.deadline += seconds
        if self.start is not None:
            self.start += seconds
        self.last = None
