"""The lecture's ladder as an experiment: each step of "Let's build GPT" trained as a run, then compared.

`ladder_plan` gives one TrainConfig per step (core.model.arch.STEPS: bigram, + one head, + heads,
+ feed-forward, + residual blocks, + LayerNorm, = the GPT). Every step trains on the same data with the
same batch, block, iterations, seed and evals, and the same model shape: 3 layers of 3 heads, 96 wide
(LADDER_SETTINGS, on top of the `fast` preset's recipe; fixed here, so the ladder's figures do not move
when the preset is retuned). Steps 1 to 6 use AdamW with nanoGPT's schedule (warmup, cosine to a tenth)
at a learning rate of their own (STEP_LR, tuned on Tiny Shakespeare char at DEFAULT_ITERS: the smallest
models learn fastest at a high rate); the last is the GPT with the `fast` recipe (RoPE, QK-norm, Muon,
warmup-stable-decay) at the rates tuned for this shape.

Each step is an ordinary run named `ladder-STAMP-N-ARCH`, so it is listed on the Checkpoints screen and
loads wherever runs load. `LadderResults` follows the steps' events (core.runs.events) and says what
each reached: the CLI (`nanogpt-tui ladder`) and the app's Ladder screen run the steps one after another
and read it. Torch-free: the app builds the plan before torch loads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.model.arch import ARCHS, GPT_ARCH, STEPS
from core.runs.events import Eval, Event, Failed, Finished, Started
from core.settings.presets import from_preset
from core.settings.train_config import TrainConfig

BASE_PRESET = "fast"  # the GPT step's recipe, and the evals and seed every step shares
# The shape, batch and rates every step shares (the GPT step's rates too): the ones STEP_LR was tuned with.
# No token shift: the lecture does not build one, and the GPT step's figures were measured without.
LADDER_SETTINGS = dict(n_layer=3, n_head=3, n_embd=96, block_size=64, batch_size=16, warmup_iters=20,
                       eval_iters=20, learning_rate=3e-3, min_lr=3e-4, muon_lr=0.02, token_shift=False)
DEFAULT_ITERS = 600  # iterations per step: the whole ladder in about 2 minutes on 2 cores
# AdamW's peak learning rate per step (the GPT step keeps LADDER_SETTINGS': AdamW 3e-3, Muon 0.02).
STEP_LR = {"bigram": 0.1, "head": 4e-2, "heads": 4e-2, "ffwd": 4e-2, "blocks": 1e-2, "layernorm": 6e-3}
PREFIX = "ladder"


def ladder_stamp(now: datetime | None = None) -> str:
    """The stamp that groups one ladder's runs: the time it started."""
    return (now or datetime.now()).strftime("%Y%m%d-%H%M%S")


def run_name(stamp: str, arch: str) -> str:
    """`ladder-STAMP-N-ARCH`: the step's number keeps the runs in the lecture's order when sorted by name."""
    return f"{PREFIX}-{stamp}-{ARCHS.index(arch) + 1}-{arch}"


def ladder_plan(dataset: str, iters: int = DEFAULT_ITERS, stamp: str | None = None, device: str = "auto") -> list[TrainConfig]:
    """One TrainConfig per step, in the lecture's order (see the module docstring)."""
    stamp = stamp or ladder_stamp()
    base = from_preset(BASE_PRESET, dataset=dataset, device=device, max_iters=iters,
                       eval_interval=max(1, iters // 4), sample_interval=0, **LADDER_SETTINGS)
    plan = []
    for arch in ARCHS:
        config = dataclasses.replace(base, arch=arch, run_name=run_name(stamp, arch))
        if arch != GPT_ARCH:  # the lecture's models: plain AdamW, nanoGPT's schedule, none of the GPT's knobs
            lr = STEP_LR[arch]
            config = dataclasses.replace(config, rope=False, qk_norm=False, muon=False, wsd=False,
                                         learning_rate=lr, min_lr=lr / 10)
        plan.append(config)
    return plan


@dataclass
class StepResult:
    """What one step's run reached."""

    arch: str
    run_name: str
    run_dir: Path | None = None
    n_params: int = 0
    val_loss: float = math.nan  # its last eval's
    train_loss: float = math.nan
    iters: int = 0
    seconds: float = 0.0  # wall time, setup and evals included (set by whoever runs it)
    status: str = "waiting"  # waiting, training, done, stopped, failed
    message: str = ""  # a failure's

    @property
    def adds(self) -> str:
        return STEPS[self.arch]


def ladder_steps() -> list[StepResult]:
    """Every step of the lecture, not trained yet (a run name comes with a plan)."""
    return [StepResult(arch, "") for arch in ARCHS]


@dataclass
class LadderResults:
    """Each step's result, filled in from its run's events (`record`)."""

    steps: list[StepResult] = field(default_factory=list)

    @classmethod
    def of(cls, plan: list[TrainConfig]) -> LadderResults:
        return cls([StepResult(config.arch, config.run_name or "") for config in plan])

    def record(self, index: int, event: Event) -> None:
        """Take one event of step `index`'s run."""
        step = self.steps[index]
        if isinstance(event, Started):
            step.run_dir, step.n_params, step.status = event.run_dir, event.n_params, "training"
        elif isinstance(event, Eval):
            step.val_loss, step.train_loss, step.iters = event.val_loss, event.train_loss, event.iter
        elif isinstance(event, Finished):
            step.status = "done" if event.reason == "completed" else "stopped"
        elif isinstance(event, Failed):
            step.status, step.message = "failed", event.message

    def change(self, index: int) -> float:
        """Step `index`'s val loss minus the step before's (NaN for the first, or where one is missing)."""
        if index == 0:
            return math.nan
        return self.steps[index].val_loss - self.steps[index - 1].val_loss

    @property
    def run_dirs(self) -> list[Path]:
        return [step.run_dir for step in self.steps if step.run_dir is not None]
