"""Lower-precision inference weights (core.inference.quantize): close to float32, really smaller, same cached and
uncached, chosen by the CLI and the Chat screen, and measured by `bench sample`.

Tolerances: bfloat16 keeps 8 bits of mantissa, so each rounding is off by at most 2^-9 (0.2%) of the
value; int8 rounds each weight by at most half a step, max|row| / 254 (0.4% of the row's largest
weight), and multiplies in bfloat16 as well. Through a few layers these add up to about 1% of the logits'
range (0.3% and 0.6% measured on the model below), so 3% of that range passes them and still fails a
real bug: a scale on the wrong axis, a lost bias or an embedding read from the wrong rows is off by
tens of percent.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from pilot_helpers import wait_for
from rich.console import Console
from textual.widgets import Select, Static

from core.inference.quantize import LowPrecisionLinear, TiedEmbedding, quantize_int8, to_precision, weight_bytes
from core.inference.sampler import SamplingConfig, generate
from core.model.gpt import GPT, ContextWindow, GPTConfig
from core.settings.sampling import AUTO_CANDIDATES, PRECISIONS, SamplerError
from core.tokens.tokenizers import CharTokenizer
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.bench.sample import bench_sample
from nanogpt_tui.cli import main

LOW = ["bfloat16", "int8"]
CONFIG = GPTConfig(block_size=64, vocab_size=65, n_layer=2, n_head=2, n_embd=64, dropout=0.0)


def model() -> GPT:
    torch.manual_seed(0)
    return GPT(CONFIG).eval()


@pytest.mark.parametrize("precision", LOW)
def test_logits_stay_close_to_float32(precision: str) -> None:
    reference = model()
    converted = to_precision(copy.deepcopy(reference), precision)
    x = torch.randint(0, CONFIG.vocab_size, (4, CONFIG.block_size), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = reference(x, targets=x)[0]
        got = converted(x, targets=x)[0]
    assert got.dtype == torch.float32  # activations stay float32: only the weights are lower precision
    error = (got.float() - expected).abs().max()
    assert error <= 0.03 * expected.abs().max(), f"{precision}: max error {float(error):.4f}"


def test_int8_weights_are_int8_and_the_model_smaller() -> None:
    reference = model()
    converted = to_precision(copy.deepcopy(reference), "int8")
    linears = [m for m in converted.modules() if isinstance(m, LowPrecisionLinear)]
    assert len(linears) == 4 * CONFIG.n_layer + 1  # c_attn, c_proj, c_fc, mlp c_proj per block, and lm_head
    assert not any(isinstance(m, torch.nn.Linear) for m in converted.modules())
    assert all(m.weight.dtype == torch.int8 and m.scales.shape == (m.out_features,) for m in linears)
    # The tied embedding reads the head's int8 weight: stored once, no float32 copy left anywhere.
    assert isinstance(converted.transformer.wte, TiedEmbedding)
    assert converted.transformer.wte.weight is converted.lm_head.weight
    # Exactly: each Linear weight went from 4 bytes to 1, plus a 2-byte scale per output channel; the
    # rest (LayerNorms, biases, position embeddings) stays float32.
    weights = sum(m.weight.numel() for m in linears)
    scales = sum(m.out_features for m in linears)
    assert weight_bytes(converted) == weight_bytes(reference) - 3 * weights + 2 * scales
    assert weight_bytes(converted) < 0.3 * weight_bytes(reference)
    bf16 = to_precision(copy.deepcopy(reference), "bfloat16")
    assert all(m.weight.dtype == torch.bfloat16 for m in bf16.modules() if isinstance(m, LowPrecisionLinear))
    assert weight_bytes(bf16) == weight_bytes(reference) - 2 * weights
    # Parameter counts do not change with the precision.
    assert converted.get_num_params() == bf16.get_num_params() == reference.get_num_params()


def test_quantize_int8_is_per_output_channel_and_symmetric() -> None:
    weight = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -0.5]])
    q, scales = quantize_int8(weight)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    assert q[0].tolist() == [64, -127, 32] and q[2].tolist() == [127, 64, -32]  # each row's max maps to 127
    assert q[1].tolist() == [0, 0, 0] and torch.isfinite(scales).all()  # a zero row stays zero, no 0/0
    assert torch.allclose(q.float() * scales[:, None], weight, atol=scales.max().item() / 2)


@pytest.mark.parametrize("precision", LOW)
def test_the_tied_embedding_is_the_heads_weight(precision: str) -> None:
    reference = model()
    converted = to_precision(copy.deepcopy(reference), precision)
    idx = torch.tensor([[0, 5, 64, 5]])
    rows = converted.transformer.wte(idx)[0]
    assert rows.dtype == torch.float32
    assert torch.allclose(rows, converted.lm_head.dequantized()[idx[0]].float(), rtol=1e-2, atol=0)
    # ... and those are the float32 embeddings, to within the precision's rounding (see the module docstring).
    expected = reference.transformer.wte(idx)[0]
    assert (rows - expected).abs().max() <= 0.01 * expected.abs().max()


@pytest.mark.parametrize("precision", AUTO_CANDIDATES)
def test_cached_generation_equals_uncached(precision: str) -> None:
    """Step by step, past the block (the window jumps), the cached logits match the uncached ones."""
    converted = to_precision(model(), precision)
    tokens = torch.randint(0, CONFIG.vocab_size, (CONFIG.block_size + 30,), generator=torch.Generator().manual_seed(2))
    cached, uncached = ContextWindow(converted, use_cache=True), ContextWindow(converted, use_cache=False)
    assert cached.cache.k[0].dtype == torch.float32  # the cache follows the activations
    tolerance = 1e-4 if precision == "float32" else 0.03
    with torch.inference_mode():
        for n in range(1, len(tokens) + 1):
            a, b = cached.next_logits(tokens[:n].tolist()), uncached.next_logits(tokens[:n].tolist())
            assert (a.float() - b.float()).abs().max() <= tolerance * b.abs().max(), f"{precision} at token {n}"
    # And generate() gives the same greedy text both ways (this model's margins are wider than rounding).
    tokenizer = CharTokenizer([chr(32 + i) for i in range(CONFIG.vocab_size)])
    settings = SamplingConfig(max_new_tokens=40, temperature=0.0)
    with_cache = [p.token_id for p in generate(converted, tokenizer, "ABC", settings, use_cache=True)]
    without = [p.token_id for p in generate(converted, tokenizer, "ABC", settings, use_cache=False)]
    assert with_cache == without


def test_a_converted_model_refuses_another_conversion_and_unknown_names() -> None:
    converted = to_precision(model(), "int8")
    assert to_precision(converted, "int8") is converted
    with pytest.raises(SamplerError, match="already in int8"):
        to_precision(converted, "float32")
    with pytest.raises(SamplerError, match="unknown precision 'int4': use one of auto, float32, bfloat16, int8"):
        to_precision(model(), "int4")
    with pytest.raises(SamplerError, match="auto is chosen by timing a loaded model"):
        to_precision(model(), "auto")


def test_cli_sample_and_eval_take_a_precision(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for precision in PRECISIONS:
        capsys.readouterr()
        argv = ["sample", "--checkpoint", str(tiny_run / "ckpt.pt"), "--prompt", "The", "--max-new-tokens", "20",
                "--seed", "3", "--device", "cpu", "--precision", precision]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("The") and len(out.rstrip("\n")) > len("The")
    assert main(["eval", "--checkpoint", str(tiny_run / "ckpt.pt"), "--eval-iters", "2", "--batch-size", "4",
                 "--device", "cpu", "--precision", "int8"]) == 0
    out = capsys.readouterr().out
    assert "(int8)" in out and "val loss" in out


def test_cli_rejects_a_bad_precision(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--checkpoint", str(tiny_run / "ckpt.pt"), "--precision", "int4"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--precision" in err and "unknown precision 'int4': use one of auto, float32, bfloat16, int8" in err


async def test_chat_precision_reloads_the_model_and_shows_it(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f5")
        screen = app.screen
        await wait_for(pilot, lambda: screen.engine is not None)
        info = screen.query_one("#chat-model", Static)
        # auto by default: it says which precision it chose (the timing decides which, so any of the three).
        assert any(f"auto: {p} on cpu" in str(info.visual) for p in AUTO_CANDIDATES)
        assert str(info.tooltip).startswith("auto precision:")  # and why, on hover
        first = screen.engine.model
        # Open the precision list and pick the fourth entry (auto, float32, bfloat16, int8), as a user would.
        await pilot.click("#chat-precision")
        await pilot.press("down", "down", "down", "enter")
        assert screen.query_one("#chat-precision", Select).value == "int8"
        await wait_for(pilot, lambda: screen.engine is not None and screen.engine.model is not first)
        assert "int8 on cpu" in str(info.visual)
        assert isinstance(screen.engine.model.lm_head, LowPrecisionLinear) and screen.engine.model.lm_head.precision == "int8"
        # The reloaded model chats.
        screen.query_one("#chat-prompt").focus()
        await pilot.press("T", "h", "e", "enter")
        await wait_for(pilot, lambda: not screen.generating and screen.turns and screen.turns[0].pieces)
        assert str(screen.query_one("#chat-speed", Static).visual).startswith("done:")


def test_bench_sample_smoke() -> None:
    """Every table end to end on tiny sizes; figures only, no timing is asserted."""
    big = GPTConfig(block_size=64, vocab_size=50304, n_layer=1, n_head=2, n_embd=16, dropout=0.0)  # GPT-2 ids, tiny
    result = bench_sample(n_tokens=3, big=big, big_tokens=2, quality_iters=4, quality_preset="tiny", rounds=1,
                          console=Console(file=None, quiet=True))
    assert result["prompt_tokens"] + result["new_tokens"] == 256
    assert [s["name"] for s in result["speed"]] == ["6 layers, 384 wide, char", "1 layers, 16 wide, 50304 ids"]
    for speed in result["speed"]:
        assert set(AUTO_CANDIDATES) <= speed["tokens_per_s"].keys() and set(AUTO_CANDIDATES) <= speed["decode_tokens_per_s"].keys()
        assert speed["auto"] in AUTO_CANDIDATES
        assert all(math.isfinite(v) and v > 0 for v in speed["tokens_per_s"].values())
        assert speed["weight_mb"]["int8"] < speed["weight_mb"]["bfloat16"] < speed["weight_mb"]["float32"]
    quality = result["quality"]
    assert "generated text" in quality["source"]
    assert quality["float32"]["agreement"] == 1.0 and quality["float32"]["loss_change"] == 0.0
    for precision in LOW:
        assert 0.0 <= quality[precision]["agreement"] <= 1.0 and math.isfinite(quality[precision]["loss_change"])


def test_bench_sample_measures_quality_on_a_checkpoint(tiny_run: Path) -> None:
    result = bench_sample(n_tokens=2, big=None, checkpoint=str(tiny_run / "ckpt.pt"), rounds=1,
                          precisions=["int8"], console=Console(file=None, quiet=True))
    assert result["quality"]["source"].startswith("checkpoint")
    assert set(result["quality"]) == {"float32", "int8", "source"}
