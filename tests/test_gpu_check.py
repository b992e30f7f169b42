"""scripts/gpu_check.sh and `bench gpu` (nanogpt_tui.bench.gpu): the no-GPU path for real, the rest on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from core.common.devices import DeviceError
from core.model.anatomy import flops_per_token
from core.model.gpt import GPT, GPTConfig
from core.settings.presets import from_preset
from core.settings.train_config import MODEL_KEYS
from nanogpt_tui.bench import gpu as bench_gpu

REPO = Path(__file__).resolve().parents[1]


def test_without_cuda_the_script_says_so_and_fails(small_text: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a GPU machine
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), str(small_text)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    err = " ".join(done.stderr.split())  # (rich wraps long lines)
    assert "error: no CUDA GPU here" in err and "Traceback" not in err


def test_peak_flops_by_device_name_or_override() -> None:
    assert bench_gpu.peak_tflops("NVIDIA A100-SXM4-80GB", {}) == 312
    assert bench_gpu.peak_tflops("NVIDIA H100 80GB HBM3", {}) == 989
    assert bench_gpu.peak_tflops("NVIDIA H100 PCIe", {}) == 756  # the longer name wins
    assert bench_gpu.peak_tflops("NVIDIA H200", {}) == 989
    assert bench_gpu.peak_tflops("NVIDIA GeForce GTX 1080", {}) is None
    assert bench_gpu.peak_tflops("NVIDIA A100-SXM4-80GB", {bench_gpu.PEAK_ENV: "100.5"}) == 100.5
    with pytest.raises(DeviceError, match=bench_gpu.PEAK_ENV):
        bench_gpu.peak_tflops("NVIDIA H100", {bench_gpu.PEAK_ENV: "fast"})


def test_bench_gpu_figures_on_the_cpu(small_text: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CUDA path cannot run here: the same measuring on the CPU, a tiny model, an easy target.
    monkeypatch.setattr(bench_gpu, "require_cuda", lambda: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(bench_gpu, "from_preset", lambda name, **settings: from_preset(
        "tiny", **{**settings, "device": "cpu", "dtype": "float32", "compile": False, "eval_interval": 10,
                   "eval_iters": 2, "max_iters": 200}))
    monkeypatch.setattr(bench_gpu, "SAMPLE_TOKENS", 20)
    out = StringIO()
    result = bench_gpu.bench_gpu(small_text, target=3.3, console=Console(file=out, width=200))
    assert result.failure is None
    assert result.reached_at is not None and result.best_val <= 3.3
    assert result.reached_at[0] < 200 and result.iters <= result.reached_at[0] + 1  # stopped at the crossing
    # nanoGPT's estimate_mfu: the model's training flops per token at the measured rate, over the H100's peak.
    config = from_preset("tiny")
    model = GPT(GPTConfig(**{k: getattr(config, k) for k in MODEL_KEYS}, vocab_size=len(set(small_text.read_text()))))
    assert result.peak_tflops == 989
    expected = result.tokens_per_s * flops_per_token(model.get_num_params(), vars(config)) / 989e12
    assert result.mfu == pytest.approx(expected)
    assert set(result.sample_tokens_per_s) == {"with KV cache", "without KV cache"}
    text = " ".join(out.getvalue().split())
    assert "MFU" in text and "val <= 3.3" in text and f"at iteration {result.reached_at[0]}:" in text
