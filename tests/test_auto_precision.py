"""The `auto` precision: its choice from a timing table (made up here: no test reads a clock), what it says,
the CPU instructions it reports, and a real model converted to whatever it chose."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.inference.auto_precision import at_precision, fast_instructions
from core.inference.quantize import model_precision
from core.model.gpt import GPT, GPTConfig
from core.settings.sampling import (
    AUTO_CANDIDATES,
    DEFAULT_PRECISION,
    PrecisionTrial,
    choose_precision,
    describe_choice,
)
from core.tokens.tokenizers import CharTokenizer


def table(**rows: tuple[float, float]) -> list[PrecisionTrial]:
    """Trials from precision=(tokens/s, relative loss change)."""
    return [PrecisionTrial(name, speed, change) for name, (speed, change) in rows.items()]


@pytest.mark.parametrize(("rows", "chosen"), [
    (dict(float32=100, bfloat16=140, int8=280), "int8"),  # the fastest
    (dict(float32=100, bfloat16=60, int8=160), "int8"),
    (dict(float32=100, bfloat16=140, int8=90), "bfloat16"),
    (dict(float32=100, bfloat16=59, int8=92), "float32"),  # a CPU where both are slower
    (dict(float32=100, bfloat16=103, int8=104), "float32"),  # within the noise: never risk being slower
])
def test_auto_keeps_the_fastest(rows: dict[str, float], chosen: str) -> None:
    assert choose_precision(table(**{name: (speed, 0.001) for name, speed in rows.items()})) == chosen


def test_auto_drops_a_precision_whose_loss_moves_more_than_one_percent() -> None:
    trials = table(float32=(100, 0.0), bfloat16=(150, 0.002), int8=(300, 0.013))
    assert choose_precision(trials) == "bfloat16"
    assert choose_precision(table(float32=(100, 0.0), bfloat16=(150, -0.02), int8=(300, 0.05))) == "float32"
    assert choose_precision(table(bfloat16=(150, 0.0))) == "float32"  # nothing to compare with: the weights as trained


def test_auto_says_what_it_chose_against_float32() -> None:
    text = describe_choice("int8", table(float32=(200, 0.0), bfloat16=(300, 0.001), int8=(560, -0.0004)))
    assert text == ("auto precision: int8 (decoding speed against float32's 200 tokens/s: "
                    "bfloat16 1.50x, loss +0.10%, int8 2.80x, loss -0.04%)")
    assert DEFAULT_PRECISION == "auto"


def test_fast_instructions_read_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert fast_instructions(cpuinfo) == {"bfloat16": "no (needs avx512_bf16 or amx_bf16)",
                                          "int8": "no (needs avx512_bf16 or amx_bf16)"}  # int8 multiplies in bfloat16
    cpuinfo.write_text("flags : amx_bf16 amx_int8 avx512_bf16\n")
    assert fast_instructions(cpuinfo) == {"bfloat16": "yes (avx512_bf16, amx_bf16)", "int8": "yes (avx512_bf16, amx_bf16)"}
    assert set(fast_instructions(tmp_path / "absent").values()) == {"unknown (no CPU flags to read here)"}


def test_auto_converts_a_loaded_model_to_what_it_chose() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=40, n_layer=1, n_head=2, n_embd=32, dropout=0.0)).eval()
    tokenizer = CharTokenizer([chr(48 + i) for i in range(40)])
    converted, chosen, note = at_precision(model, "auto", tokenizer, None, torch.device("cpu"))
    assert chosen in AUTO_CANDIDATES and model_precision(converted) == chosen
    assert note.startswith(f"auto precision: {chosen} (decoding speed against float32's")
    assert all(name in note for name in AUTO_CANDIDATES if name != "float32")
    # A named precision is that one, with nothing to say.
    again = GPT(model.config).eval()
    assert at_precision(again, "int8", tokenizer, None, torch.device("cpu"))[1:] == ("int8", "")
