"""TrainConfig: nanoGPT's training knobs and the modern recipe's, their checks and their parsing.

Torch-free, so the CLI and the Train screen can build and check settings before torch loads. Every
problem is reported with the setting it concerns (`ConfigError.problems`), so a form can show each
one next to its field.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.common import paths
from core.model.arch import ARCHS, GPT_ARCH, STEPS

# The TrainConfig fields that shape the model (nanoGPT's `model_args`, plus the modern knobs): GPTConfig's
# fields but vocab_size (the dataset's; tests/test_run_setup.py checks). A resumed run takes them from its checkpoint.
MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "dropout",
              "rope", "rmsnorm", "qk_norm", "relu2", "untie_head", "token_shift")
# Knobs whose checkpoints nanoGPT's model.py cannot load (with their value in nanoGPT's recipe).
NANOGPT_INCOMPATIBLE = {"rope": False, "rmsnorm": False, "qk_norm": False, "relu2": False, "untie_head": False,
                        "token_shift": False}
FORM = "form"  # the problem key for what no single setting owns
# The whole-number settings' ranges (inclusive). The upper bounds keep each value within what torch and
# a checkpoint can hold (seed: torch's generators take 64 bits; the trainer adds iterations to it) and
# catch a typo like max_iters=1e30; whether a model fits is the memory check's job (core.settings.memory).
MAX_ITERS = 10**9
# A budget run's range, seconds: below the minimum, measuring and the last eval leave too little to train.
MIN_BUDGET_S, MAX_BUDGET_S = 5.0, 30 * 24 * 3600.0
INT_RANGES = {
    "n_layer": (1, 4096), "n_head": (1, 4096), "n_embd": (1, 2**20), "block_size": (1, 2**24),
    "batch_size": (1, 2**24), "gradient_accumulation_steps": (1, 2**20),
    "max_iters": (1, MAX_ITERS), "eval_interval": (1, MAX_ITERS), "eval_iters": (1, MAX_ITERS),
    "log_interval": (1, MAX_ITERS), "sample_tokens": (1, 2**20),
    "warmup_iters": (0, MAX_ITERS), "lr_decay_iters": (0, MAX_ITERS), "sample_interval": (0, MAX_ITERS),
    "seed": (0, 2**62),
}
WANDB_NAME_MAX = 128  # characters of a wandb project or run name
WANDB_PROJECT_FORBIDDEN = "/\\#?%:"  # characters wandb refuses in a project name
WANDB_INSTALL = "pip install wandb (or pip install 'nanogpt-tui[wandb]')"


class ConfigError(ValueError):
    """Settings that cannot work. `problems` lists (setting, message) pairs, FORM for no one setting."""

    def __init__(self, problems: str | list[tuple[str, str]], field: str = FORM) -> None:
        self.problems = [(field, problems)] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            text = self.problems[0][1]
        else:
            text = "invalid training settings:\n  - " + "\n  - ".join(message for _, message in self.problems)
        super().__init__(text)

    def by_field(self) -> dict[str, str]:
        """Each setting's problems joined into one message."""
        found: dict[str, str] = {}
        for name, message in self.problems:
            found[name] = f"{found[name]}; {message}" if name in found else message
        return found


def incompatible_knobs(model_args: dict[str, Any]) -> list[str]:
    """The recipe knobs a model's args (a checkpoint's `model_args`) set that nanoGPT's model.py lacks; a knob
    missing from them (an older or nanoGPT checkpoint) has nanoGPT's value."""
    return [name for name, plain in NANOGPT_INCOMPATIBLE.items() if model_args.get(name, plain) != plain]


@dataclass
class TrainConfig:
    """nanoGPT's training knobs (same names); the defaults are nanoGPT's CPU recipe.

    The modern knobs after them are all off by default, so a default run is nanoGPT's math and its
    checkpoint loads in nanoGPT.
    """

    dataset: str = ""  # a dataset name or folder
    run_name: str | None = None  # None = dataset + timestamp
    # A Hugging Face GPT-2 folder (config.json + model.safetensors) whose weights start the run; its
    # config.json sets n_layer, n_head, n_embd and bias; block_size crops its positions (core.interop.gpt2_weights).
    init_from: str | None = None
    # model: nanoGPT's GPT, or one of "Let's build GPT"'s steps (core.model.arch.STEPS: bigram ... layernorm)
    arch: str = GPT_ARCH
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    # batches: batch_size * gradient_accumulation_steps sequences of block_size tokens per iteration
    batch_size: int = 12
    gradient_accumulation_steps: int = 1
    # AdamW and the learning-rate schedule (linear warmup, then cosine decay to min_lr)
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 0  # 0 = max_iters: the decay ends with the run
    decay_lr: bool = True
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 = off
    # schedule
    max_iters: int = 2000
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 1
    sample_interval: int = 0  # 0 = off
    sample_tokens: int = 200
    seed: int = 1337
    # system
    compile: bool = False
    device: str = "auto"
    dtype: str = "float32"
    # the modern recipe (each off by default)
    rope: bool = False  # rotary position embeddings instead of learned ones (wpe)
    rmsnorm: bool = False  # RMSNorm instead of LayerNorm
    qk_norm: bool = False  # RMS-normalise queries and keys before attention
    relu2: bool = False  # ReLU² instead of GELU in the MLP
    untie_head: bool = False  # an output head of its own instead of the token embedding's
    token_shift: bool = False  # each position's embedding adds a learned share of the previous token's
    muon: bool = False  # Muon for the hidden 2-D weights; AdamW for embeddings, head and gains
    muon_lr: float = 0.02
    muon_momentum: float = 0.95  # Muon's Nesterov momentum (Keller Jordan's 0.95); short runs want less
    wsd: bool = False  # warmup-stable-decay: hold learning_rate, then decay linearly at the end
    decay_fraction: float = 0.4  # with wsd: the share of the run spent decaying
    shuffle: bool = False  # windows an epoch at a time, each token once per epoch (core.dataset.batches)
    force: bool = False  # start even when the memory estimate says the run will not fit
    # tracking (nanoGPT's names): also log live to Weights & Biases (core.interop.tracking; needs wandb;
    # WANDB_MODE=offline logs without an account). metrics.jsonl is written either way.
    wandb_log: bool = False
    wandb_project: str = "nanogpt-tui"
    wandb_run_name: str | None = None  # None = the run's name
    # Seconds of wall time for the whole run, 0 = off. With a budget the Trainer measures this machine's
    # speed, chooses the model and its recipe (core.settings.budget) and trains on the clock: the
    # schedule and the run end with the budget, the last eval and checkpoint included.
    budget_s: float = 0.0

    @property
    def tokens_per_iter(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps * self.block_size

    @property
    def decay_iters(self) -> int:
        """The iteration where the learning rate reaches min_lr."""
        return self.lr_decay_iters or self.max_iters

    def nanogpt_incompatible(self) -> list[str]:
        """The knobs set here that nanoGPT's model.py cannot load."""
        return incompatible_knobs({name: getattr(self, name) for name in NANOGPT_INCOMPATIBLE})

    def problems(
        self, train_tokens: int | None = None, val_tokens: int | None = None, world_size: int = 1,
    ) -> list[tuple[str, str]]:
        """Every problem of these settings (device and dtype aside: they need torch), by setting.

        `world_size`: the processes of a distributed run, which share each iteration's micro-batches.
        """
        found: list[tuple[str, str]] = []
        # NaN compares False with everything, so it would slip through every check below.
        for name, kind in field_types().items():
            if kind is float and not math.isfinite(getattr(self, name)):
                found.append((name, f"{name} must be a finite number (it is {getattr(self, name)})"))
        if not self.dataset:
            found.append(("dataset", "dataset is not set"))
        if self.run_name is not None:
            try:
                paths.check_name(self.run_name, "run_name")
            except paths.BadName as error:
                found.append(("run_name", str(error)))
        for name, (low, high) in INT_RANGES.items():
            value = getattr(self, name)
            if value < low:
                found.append((name, f"{name} must be at least {low} (it is {value})" if low else
                                    f"{name} must not be negative (it is {value})"))
            elif value > high:
                found.append((name, f"{name} must be at most {high:,} (it is {value:,})"))
        for name in ("weight_decay", "grad_clip", "min_lr"):
            if getattr(self, name) < 0:
                found.append((name, f"{name} must not be negative (it is {getattr(self, name)})"))
        if self.arch not in STEPS:
            found.append(("arch", f"arch must be one of {', '.join(ARCHS)} (it is {self.arch!r:.40})"))
        elif self.arch != GPT_ARCH:
            gpt_only = [*self.nanogpt_incompatible(), *(["muon"] if self.muon else []), *(["init_from"] if self.init_from else [])]
            if gpt_only:
                found.append(("arch", f"arch={self.arch} is a step of the lecture's ladder: "
                                      f"{', '.join(gpt_only)} apply to the GPT only (arch=gpt)"))
        if self.init_from and self.nanogpt_incompatible():
            found.append(("init_from", f"init_from loads GPT-2's architecture: turn off "
                                       f"{', '.join(self.nanogpt_incompatible())}"))
        if self.n_head >= 1 and self.n_embd % self.n_head:
            found.append(("n_embd", f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})"))
        if self.rope and self.n_head >= 1 and self.n_embd % self.n_head == 0 and (self.n_embd // self.n_head) % 2:
            found.append(("rope", f"rope needs an even head size (n_embd / n_head = {self.n_embd // self.n_head})"))
        if not 0 <= self.dropout < 1:
            found.append(("dropout", f"dropout must be in [0, 1) (it is {self.dropout})"))
        for name in ("learning_rate", "muon_lr"):
            if getattr(self, name) <= 0:
                found.append((name, f"{name} must be positive (it is {getattr(self, name)})"))
        if self.min_lr > self.learning_rate:
            found.append(("min_lr", f"min_lr ({self.min_lr}) must not exceed learning_rate ({self.learning_rate})"))
        # (A decay that follows max_iters may be shorter than the warmup: the run then only warms up.)
        if self.decay_lr and self.lr_decay_iters and self.lr_decay_iters <= self.warmup_iters:
            found.append(("lr_decay_iters", f"lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters "
                                            f"({self.warmup_iters}), or be 0 to end the decay with the run"))
        if self.budget_s and not MIN_BUDGET_S <= self.budget_s <= MAX_BUDGET_S:
            found.append(("budget_s", f"budget_s must be 0 (off) or from {MIN_BUDGET_S:g} to {MAX_BUDGET_S:,.0f} seconds "
                                      f"(it is {self.budget_s:g})"))
        if self.budget_s and self.init_from:
            found.append(("budget_s", "budget_s chooses the model: leave out init_from"))
        if self.budget_s and world_size > 1:
            found.append(("budget_s", "budget_s is for one process: train with a budget without torchrun"))
        if not 0 < self.decay_fraction <= 1:
            found.append(("decay_fraction", f"decay_fraction must be in (0, 1] (it is {self.decay_fraction})"))
        for name in ("beta1", "beta2", "muon_momentum"):
            if not 0 <= getattr(self, name) < 1:
                found.append((name, f"{name} must be in [0, 1) (it is {getattr(self, name)})"))
        steps = self.gradient_accumulation_steps
        if world_size > 1 and steps >= 1 and steps % world_size:
            found.append(("gradient_accumulation_steps",
                          f"gradient_accumulation_steps ({steps}) must be a multiple of the number of processes "
                          f"({world_size}): each process takes an equal share of an iteration's micro-batches "
                          f"(e.g. --set gradient_accumulation_steps={world_size * max(1, round(steps / world_size))})"))
        found += self._wandb_problems()
        for split, tokens in (("train", train_tokens), ("val", val_tokens)):
            if tokens is not None and tokens <= self.block_size:
                found.append(("block_size", f"the {split} split has {tokens} tokens, not more than block_size "
                                            f"({self.block_size}): lower block_size or use more text"))
        return found

    def _wandb_problems(self) -> list[tuple[str, str]]:
        found = []
        bad = sorted(set(self.wandb_project) & set(WANDB_PROJECT_FORBIDDEN))
        if not 0 < len(self.wandb_project) <= WANDB_NAME_MAX or bad:
            found.append(("wandb_project", f"wandb_project must be 1 to {WANDB_NAME_MAX} characters, none of "
                                           f"{' '.join(WANDB_PROJECT_FORBIDDEN)} (it is {self.wandb_project!r:.40})"))
        if self.wandb_run_name is not None and len(self.wandb_run_name) > WANDB_NAME_MAX:
            found.append(("wandb_run_name", f"wandb_run_name must be at most {WANDB_NAME_MAX} characters"))
        if self.wandb_log and importlib.util.find_spec("wandb") is None:  # cheap: finds, does not import
            found.append(("wandb_log", f"wandb_log needs the wandb package: {WANDB_INSTALL}"))
        return found

    def validate(self, train_tokens: int | None = None, val_tokens: int | None = None, world_size: int = 1) -> None:
        """Raise ConfigError naming every problem (see `problems`)."""
        found = self.problems(train_tokens, val_tokens, world_size)
        if found:
            raise ConfigError(found)


@functools.cache
def field_types() -> Mapping[str, Any]:
    """TrainConfig's fields and their types (int, float, bool, str or str | None); read once (resolving the
    annotations takes a few milliseconds, and the Train form asks for each field it parses)."""
    return types.MappingProxyType(typing.get_type_hints(TrainConfig))


def check_keys(keys: Iterable[str]) -> None:
    """ConfigError for a key that is not a setting, with the closest one as a hint."""
    known = list(field_types())
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; settings are: {', '.join(known)}"
            raise ConfigError(f"unknown setting {key!r}{hint}", key)


def parse_value(key: str, text: str) -> Any:
    """`text` converted to the type of TrainConfig field `key`."""
    check_keys([key])
    kind = field_types()[key]
    text = text.strip()
    if kind == str | None:
        return None if text.lower() in ("", "none") else text
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}={text}: expected true or false", key)
    if kind is int:
        try:
            number = float(text)  # so 1e3 and 2_000 work too
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ConfigError(f"{key}={text}: expected a whole number", key)
        return int(number)
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{key}={text}: expected a number", key) from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}={text}: expected a finite number", key)
        return number
    return text


def apply_overrides(config: TrainConfig, overrides: Iterable[str]) -> TrainConfig:
    """A copy of `config` with "key=value" settings applied, each parsed to the field's type."""
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad setting {item!r}: write key=value, e.g. learning_rate=3e-4")
        changes[key.strip()] = parse_value(key.strip(), value)
    return dataclasses.replace(config, **changes)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from a checkpoint's `config` (unknown keys, e.g. nanoGPT's own, are ignored)."""
    known = field_types()
    return TrainConfig(**{k: v for k, v in values.items() if k in known})
