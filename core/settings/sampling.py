"""Sampling settings: what `core.inference.sampler.generate` takes, and their valid ranges.

Torch-free, so the app's Chat screen can check the settings as they are typed, with the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# Temperatures below this sample greedily (see core.inference.sampler's docstring).
GREEDY_BELOW = 1e-5


class SamplerError(ValueError):
    """Bad sampling settings or a prompt the tokenizer cannot encode."""


# Precisions of the weights a model samples with (core.inference.quantize converts to them): name -> one line.
PRECISIONS: dict[str, str] = {
    "auto": "the fastest of the three below on this machine whose val loss stays within 1% of float32's, "
            "timed on the model as it loads (default)",
    "float32": "the weights as trained",
    "bfloat16": "bfloat16 Linear weights: half the memory; fast where the CPU multiplies bfloat16 (avx512_bf16, amx)",
    "int8": "int8 Linear weights, per-channel scales: a quarter of the memory, dequantized to bfloat16 for "
            "each product (saves memory, not time)",
}
DEFAULT_PRECISION = "auto"
AUTO = "auto"
# What `auto` chooses among, float32 (the reference) first (core.inference.auto_precision times them), and how
# it chooses (`choose_precision`).
AUTO_CANDIDATES = ("float32", "bfloat16", "int8")
AUTO_LOSS_TOLERANCE = 0.01  # a precision whose held-out loss moves more than this (relative) is not used
AUTO_MARGIN = 1.05  # a low precision must be this much faster than float32: never slower, however noisy the timing


@dataclass(frozen=True)
class PrecisionTrial:
    """One precision timed and checked on a loaded model."""

    precision: str
    tokens_per_s: float  # cached decoding
    loss_change: float  # held-out loss against float32's, relative (+0.002 = 0.2% worse)


def choose_precision(trials: Sequence[PrecisionTrial]) -> str:
    """The fastest precision whose loss holds (within AUTO_LOSS_TOLERANCE) and that beats float32's speed by
    AUTO_MARGIN; float32 when none does (or was not timed)."""
    base = next((t.tokens_per_s for t in trials if t.precision == "float32"), None)
    usable = [t for t in trials if t.precision != "float32" and abs(t.loss_change) <= AUTO_LOSS_TOLERANCE
              and base is not None and t.tokens_per_s >= AUTO_MARGIN * base]
    return max(usable, key=lambda t: t.tokens_per_s).precision if usable else "float32"


def describe_choice(chosen: str, trials: Sequence[PrecisionTrial]) -> str:
    """What `auto` chose and why, in one line."""
    base = next((t.tokens_per_s for t in trials if t.precision == "float32"), 0.0) or float("nan")
    others = ", ".join(f"{t.precision} {t.tokens_per_s / base:.2f}x, loss {t.loss_change:+.2%}"
                       for t in trials if t.precision != "float32")
    return f"auto precision: {chosen} (decoding speed against float32's {base:,.0f} tokens/s: {others})"


def check_precision(name: str) -> str:
    """`name` when it is one of PRECISIONS, else SamplerError listing them."""
    if name not in PRECISIONS:
        raise SamplerError(f"unknown precision {name!r}: use one of {', '.join(PRECISIONS)}")
    return name


# How stop strings are typed on one line (the Chat screen's field): separated by commas, spaces around
# each one trimmed, and these escapes for what one line cannot hold or what a comma or the trim would eat.
STOP_ESCAPES = {"n": "\n", "t": "\t", "s": " ", ",": ",", "\\": "\\"}
STOP_HELP = r"comma-separated; \n newline, \t tab, \s space, \, comma, \\ backslash"


def parse_stop_strings(text: str) -> list[str]:
    """The stop strings typed in `text` (see STOP_ESCAPES); SamplerError for an empty one or a bad escape."""
    if not text.strip():
        return []
    items: list[list[tuple[str, bool]]] = [[]]  # per stop string: (character, escaped)
    chars = iter(text)
    for char in chars:
        if char == "\\":
            code = next(chars, "")
            if code not in STOP_ESCAPES:
                raise SamplerError(f"stop strings: unknown escape \\{code} ({STOP_HELP})")
            items[-1].append((STOP_ESCAPES[code], True))
        elif char == ",":
            items.append([])
        else:
            items[-1].append((char, False))
    stops = []
    for item in items:
        while item and item[0] == (" ", False):
            item.pop(0)
        while item and item[-1] == (" ", False):
            item.pop()
        stops.append("".join(char for char, _ in item))
    if not all(stops):
        raise SamplerError(f"stop strings must not be empty ({STOP_HELP})")
    return stops


def format_stop_strings(stops: list[str]) -> str:
    """`stops` as typed: parse_stop_strings reads it back."""
    escape = {value: "\\" + code for code, value in STOP_ESCAPES.items() if value != " "}

    def typed(stop: str) -> str:
        inner = stop.strip(" ")
        ends = len(stop) - len(stop.lstrip(" ")), len(stop) - len(stop.rstrip(" "))
        if not inner:  # spaces only
            return "\\s" * len(stop)
        return "\\s" * ends[0] + "".join(escape.get(char, char) for char in inner) + "\\s" * ends[1]

    return ", ".join(typed(stop) for stop in stops)


@dataclass
class SamplingConfig:
    """How to sample. The defaults filter nothing; temperature 0.8 as in nanoGPT's sample.py."""

    max_new_tokens: int = 200
    temperature: float = 0.8  # 0 (or below GREEDY_BELOW) = greedy: always the most likely token
    top_k: int | None = None  # keep only the k most likely tokens
    top_p: float = 1.0  # keep the smallest set of tokens whose probabilities reach top_p
    min_p: float = 0.0  # drop tokens less likely than min_p times the most likely one
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the context less likely
    seed: int | None = None  # None = different every run
    stop: list[str] = field(default_factory=list)
    alternatives: int = 0  # how many of the most likely tokens to report with each piece

    def validate(self) -> None:
        """Raise SamplerError naming the first setting that is out of range."""
        checks = [
            (self.max_new_tokens >= 0, "max_new_tokens must be >= 0"),
            (self.temperature >= 0, "temperature must be >= 0 (0 = greedy)"),
            (self.top_k is None or self.top_k >= 1, "top_k must be >= 1 (or None for no limit)"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (0 <= self.min_p <= 1, "min_p must be in [0, 1]"),
            (self.repetition_penalty > 0, "repetition_penalty must be > 0 (1 = off)"),
            (self.alternatives >= 0, "alternatives must be >= 0"),
            (all(self.stop), "stop strings must not be empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise SamplerError(message)
