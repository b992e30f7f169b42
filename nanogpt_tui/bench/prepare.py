"""`nanogpt-tui bench prepare`: preparation speed (MB/s) and peak memory on a generated text."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from core.common import paths
from core.tokens.tokenizers import CharTokenizer, get_tokenizer
from data.prepare import prepare
from data.sources import SHAKESPEARE_FILE
from nanogpt_tui.bench.figures import print_figures

MB = 2**20
BARE_SAMPLE = 16 * MB  # the bare encode times at most this much of the text


def _rss_bytes() -> int | None:
    """This process's resident memory now (Linux), or None where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """Samples resident memory in a thread; `peak` is the highest value seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start = _rss_bytes()
        self.peak = self.start or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes() or 0)

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


def _bare_encode(path: Path, tokenizer: str, sample: int = BARE_SAMPLE) -> tuple[float, int]:
    """The baseline prepare is compared with: one in-memory encode call on the text's first `sample` bytes
    (no reading, checking, splitting, counting or writing), on one thread. Returns MB/s and the token count."""
    with open(path, "rb") as f:
        data = f.read(sample)
    if len(data) == sample:  # cut at a line end, not inside a character
        data = data[: data.rfind(b"\n") + 1 or len(data)]
    text = data.decode("utf-8")
    encoder = CharTokenizer.from_text(text) if tokenizer == "char" else get_tokenizer(tokenizer)
    start = time.perf_counter()
    ids = encoder.encode_array(text)
    return len(text.encode("utf-8")) / MB / (time.perf_counter() - start), len(ids)


def bench_prepare(
    size_mb: int = 100, tokenizer: str = "gpt2", text: Path | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Prepare a generated text of `size_mb` MB (`text` repeated, if given) in a temporary data dir.

    Prints MB/s and peak memory, and the ratio to a bare in-memory encode of the same text, measured
    in the same run: what streaming, checking and writing cost (prepare encodes on several threads).
    """
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="nanogpt-tui-bench-") as tmp:
        text_path = Path(tmp) / "bench.txt"
        what = _write_text(text_path, size_mb * MB, text)  # before moving home, so a cached Shakespeare is found
        # The benchmark's dataset must not land among the user's.
        with paths.temporary_home("nanogpt-tui-bench-home-"):
            with console.status(f"preparing {size_mb} MB with {tokenizer}..."), PeakMemory() as memory:
                start = time.perf_counter()
                info = prepare(str(text_path), tokenizer, name="bench", overwrite=True)
                seconds = time.perf_counter() - start
        size = text_path.stat().st_size
        bare_mb_per_s, bare_tokens = _bare_encode(text_path, tokenizer)
    figures: dict[str, Any] = {
        "text": what,
        "tokenizer": tokenizer,
        "size_mb": size / MB,
        "seconds": seconds,
        "mb_per_s": size / MB / seconds,
        "tokens": info.tokens,
        "tokens_per_s": info.tokens / seconds,
        "chars_per_token": info.chars_per_token,
        "bare_encode_mb_per_s": bare_mb_per_s,
        "bare_encode_tokens": bare_tokens,
        "ratio_prepare_to_bare": size / MB / seconds / bare_mb_per_s,
        "peak_rss_mb": memory.peak / MB if memory.start is not None else None,
        "rss_increase_mb": (memory.peak - memory.start) / MB if memory.start is not None else None,
    }
    memory_text = (
        f"{figures['peak_rss_mb']:,.0f} MB (+{figures['rss_increase_mb']:,.0f} MB while preparing)"
        if memory.start is not None
        else "not measured (no /proc)"
    )
    print_figures(
        f"bench prepare: {figures['size_mb']:,.1f} MB of {what}, {tokenizer} tokenizer",
        {
            "time": f"{seconds:,.2f} s",
            "prepare": f"{figures['mb_per_s']:,.1f} MB/s, {figures['tokens_per_s']:,.0f} tokens/s",
            "tokens": f"{info.tokens:,} ({info.chars_per_token:.2f} characters per token)",
            "bare encode (one call, one thread)": f"{bare_mb_per_s:,.1f} MB/s on the first "
            f"{min(size, BARE_SAMPLE) / MB:,.1f} MB ({bare_tokens:,} tokens)",
            "ratio prepare / bare encode": f"{figures['ratio_prepare_to_bare']:.2f}",
            "peak memory": memory_text,
        },
        console,
    )
    return figures
