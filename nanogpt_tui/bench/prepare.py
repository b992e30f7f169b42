"""`nanogpt-tui bench prepare`: preparation on every core vs bare single-thread encoding, side by side.

On one text (`size_mb`, Tiny Shakespeare repeated or generated words) it measures, in alternating order
over `pairs` pairs (so a machine that speeds up or slows down weighs on both sides alike):
- prepare: the whole `prepare()` (reading, checking, splitting, encoding on every core, writing);
- bare: the tokenizer's own encode on one thread, in memory, nothing else (for gpt2: tiktoken's
  `encode_ordinary`), over the same text in pieces of BARE_PIECE bytes (bounded memory; encoding is
  linear in the text, so the pieces cost what one call would);
and reports the medians and their ratio (goal: >= 1.7 for gpt2 on 2 cores), prepare's peak resident
memory (goal: < 500 MB), and whether every run wrote files byte-identical to one single-core run
(`workers=1`), which is measured once beforehand.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from core.common import paths
from core.common.process_memory import resident_bytes
from core.tokens.tokenizers import CharTokenizer, TiktokenTokenizer, Tokenizer, get_tokenizer
from data.prepare import prepare
from data.sources import SHAKESPEARE_FILE
from nanogpt_tui.bench.figures import print_figures

MB = 2**20
BARE_PIECE = 4 * MB  # the bare side encodes the text this much at a time
RATIO_GOAL = 1.7  # prepare / bare, GPT-2 BPE on 2 cores
MEMORY_GOAL_MB = 500


class PeakMemory:
    """Samples resident memory in a thread; `peak` is the highest value seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start = resident_bytes()
        self.peak = self.start or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, resident_bytes() or 0)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _generated_words(size: int) -> bytes:
    """Pseudo-English text: random short words on lines of varying length (seeded, so repeatable)."""
    rng = np.random.default_rng(0)
    syllables = ["the", "an", "or", "ing", "qu", "st", "ea", "lo", "ve", "mi", "ght", "ch", "re", "to", "be"]
    words = ["".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(2000)]
    lines, total = [], 0
    while total < size:
        lines.append(" ".join(rng.choice(words, rng.integers(3, 14))).capitalize() + ".\n")
        total += len(lines[-1])
    return "".join(lines).encode("utf-8")


def _write_text(path: Path, size: int, text: Path | None = None) -> str:
    """Fill `path` with `size` bytes: `text` repeated, else Tiny Shakespeare if cached, else generated words."""
    source = text or paths.cache_dir() / SHAKESPEARE_FILE
    if text is not None and not text.is_file():
        raise FileNotFoundError(f"no such text file: {text}")
    unit = source.read_bytes() if source.is_file() else _generated_words(MB)
    what = f"{source.name}, repeated" if source.is_file() else "generated words"
    with open(path, "wb") as out:
        written = 0
        while written < size:
            # Cut only at a line end, so no UTF-8 character is split.
            piece = unit[: size - written]
            if len(piece) < len(unit):
                piece = piece[: piece.rfind(b"\n") + 1] or piece
            out.write(piece)
            written += len(piece)
    return what


def _bare_encoder(path: Path, tokenizer: str) -> Tokenizer:
    if tokenizer != "char":
        return get_tokenizer(tokenizer)
    with open(path, encoding="utf-8") as f:  # the char vocabulary of the text, a piece at a time
        chars: set[str] = set()
        while piece := f.read(BARE_PIECE):
            chars.update(piece)
    return CharTokenizer(sorted(chars))


def _bare_encode(path: Path, encoder: Tokenizer) -> float:
    """Seconds the bare encode of the whole text takes on this thread (only the encode calls are timed)."""
    encode = encoder.encoding.encode_ordinary if isinstance(encoder, TiktokenTokenizer) else encoder.encode_array
    seconds = 0.0
    with open(path, encoding="utf-8", newline="") as f:
        while lines := f.readlines(BARE_PIECE):  # whole lines, about BARE_PIECE characters
            text = "".join(lines)
            start = time.perf_counter()
            encode(text)
            seconds += time.perf_counter() - start
    return seconds


def listed(values: list[float], spec: str) -> str:
    return ", ".join(format(v, spec) for v in values)


def _digest(info: Any) -> str:
    """One hash of the dataset's token files."""
    digest = hashlib.sha256()
    for split in ("train", "val"):
        digest.update((info.path / f"{split}.bin").read_bytes())
    return digest.hexdigest()


def bench_prepare(
    size_mb: int = 100, tokenizer: str = "gpt2", text: Path | None = None, console: Console | None = None,
    pairs: int = 3,
) -> dict[str, Any]:
    """Measure as the module docstring says, print the figures and return them."""
    if pairs < 1 or size_mb < 1:
        raise ValueError(f"bench prepare needs at least 1 pair and 1 MB (got {pairs} pairs, {size_mb} MB)")
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="nanogpt-tui-bench-") as tmp:
        text_path = Path(tmp) / "bench.txt"
        what = _write_text(text_path, size_mb * MB, text)  # before moving home, so a cached Shakespeare is found
        size = text_path.stat().st_size
        encoder = _bare_encoder(text_path, tokenizer)
        # The benchmark's datasets must not land among the user's.
        with paths.temporary_home("nanogpt-tui-bench-home-"):
            with console.status(f"preparing {size / MB:,.0f} MB with {tokenizer} on one core (the reference)…"):
                start = time.perf_counter()
                info = prepare(str(text_path), tokenizer, name="single", overwrite=True, workers=1)
                single_seconds = time.perf_counter() - start
            reference = _digest(info)
            prepare_s: list[float] = []
            bare_s: list[float] = []
            identical = True
            peak, start_rss = 0, None
            for pair in range(pairs):
                for side in (("prepare", "bare") if pair % 2 == 0 else ("bare", "prepare")):
                    with console.status(f"pair {pair + 1}/{pairs}: {side}…"):
                        if side == "bare":
                            bare_s.append(_bare_encode(text_path, encoder))
                            continue
                        with PeakMemory() as memory:
                            start = time.perf_counter()
                            info = prepare(str(text_path), tokenizer, name="bench", overwrite=True)
                            prepare_s.append(time.perf_counter() - start)
                        peak = max(peak, memory.peak)
                        start_rss = memory.start if start_rss is None else start_rss
                        identical &= _digest(info) == reference
    prepare_rates = [size / MB / s for s in prepare_s]
    bare_rates = [size / MB / s for s in bare_s]
    ratio = statistics.median(prepare_rates) / statistics.median(bare_rates)
    figures: dict[str, Any] = {
        "text": what,
        "tokenizer": tokenizer,
        "size_mb": size / MB,
        "pairs": pairs,
        "prepare_mb_per_s": prepare_rates,
        "bare_encode_mb_per_s": bare_rates,
        "single_core_prepare_mb_per_s": size / MB / single_seconds,
        "ratio_prepare_to_bare": ratio,
        "pair_ratios": [p / b for p, b in zip(prepare_rates, bare_rates, strict=True)],
        "tokens": info.tokens,
        "chars_per_token": info.chars_per_token,
        "identical_to_single_core": identical,
        "peak_rss_mb": peak / MB if start_rss is not None else None,
    }
    goal = f" (goal >= {RATIO_GOAL}: {'met' if ratio >= RATIO_GOAL else 'NOT met'})" if tokenizer == "gpt2" else ""
    memory_text = (
        f"{figures['peak_rss_mb']:,.0f} MB (goal < {MEMORY_GOAL_MB} MB: "
        f"{'met' if figures['peak_rss_mb'] < MEMORY_GOAL_MB else 'NOT met'})"
        if start_rss is not None else "not measured (no /proc)"
    )
    print_figures(
        f"bench prepare: {figures['size_mb']:,.1f} MB of {what}, {tokenizer} tokenizer, {pairs} pairs in alternating order",
        {
            "prepare (every core)": f"median {statistics.median(prepare_rates):,.1f} MB/s "
            f"({listed(prepare_rates, '.1f')})",
            "bare encode (one thread)": f"median {statistics.median(bare_rates):,.1f} MB/s "
            f"({listed(bare_rates, '.1f')})",
            "ratio prepare / bare": f"{ratio:.2f}{goal}; by pair {listed(figures['pair_ratios'], '.2f')}",
            "prepare on one core (workers=1)": f"{figures['single_core_prepare_mb_per_s']:,.1f} MB/s",
            "output": "byte-identical to the single-core run" if identical else "DIFFERS from the single-core run",
            "tokens": f"{info.tokens:,} ({info.chars_per_token:.2f} characters per token)",
            "peak memory while preparing": memory_text,
        },
        console,
    )
    return figures
