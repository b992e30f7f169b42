"""`bench speedrun` in smoke form: tiny models, a loose target, few iterations; and the CLI's text lookup."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from core.common import paths
from nanogpt_tui import cli
from nanogpt_tui.bench.speedrun import speedrun
from nanogpt_tui.cli.bench import shakespeare_text

TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, warmup_iters=2, lr_decay_iters=0)


def test_speedrun_stops_each_run_at_the_target(small_text: Path, nanogpt_home: Path) -> None:
    out = io.StringIO()
    results = speedrun(small_text, presets=("cpu", "fast"), target=3.9, eval_every=5, eval_batches=2,
                       eval_batch_size=4, cap=40, sample_tokens=30, console=Console(file=out, width=200), **TINY)
    for name in ("cpu", "fast"):
        r = results[name]
        assert r.failure is None and r.reached, r
        assert r.val_loss <= 3.9 and r.iters < 40
        assert r.evals[-1] == (r.iters, r.val_loss) and all(v > 3.9 for _, v in r.evals[:-1])  # stopped at the crossing
        assert 0 < r.eval_seconds < r.seconds and r.iter_ms > 0
        assert len(r.sample) > 0
    text = out.getvalue()
    assert "time ratio" in text and "fast: sample at val" in text and "cpu: sample at val" in text
    assert not (nanogpt_home / "runs").exists()  # a throwaway data dir


def test_speedrun_says_not_reached(small_text: Path) -> None:
    out = io.StringIO()
    results = speedrun(small_text, presets=("fast",), target=0.5, eval_every=5, eval_batches=1, eval_batch_size=4,
                       cap=10, sample_tokens=0, console=Console(file=out, width=200), **TINY)
    assert not results["fast"].reached and results["fast"].iters == 10
    assert "not reached" in out.getvalue()


def test_cli_speedrun_without_the_text_says_what_to_do(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert shakespeare_text("some.txt") == Path("some.txt")
    assert cli.main(["bench", "speedrun", "--text", "no-such-file.txt"]) == 1
    assert "nanogpt-tui prepare shakespeare" in " ".join(capsys.readouterr().err.split())  # rich wraps lines
    with monkeypatch.context() as patch:
        patch.setattr(cli.bench, "shakespeare_text", lambda given: None)
        assert cli.main(["bench", "speedrun"]) == 1
        assert "Tiny Shakespeare not found." in capsys.readouterr().err
    cached = paths.cache_dir() / "tinyshakespeare.txt"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text("x")
    monkeypatch.setattr(cli.bench, "SHARED_DATA", cached.parent / "no-shared-copy")  # as on a user's machine
    assert shakespeare_text(None) == cached


@pytest.mark.parametrize("preset", ["cpu", "fast"])
def test_readme_gives_each_presets_parameter_count(preset: str) -> None:
    """README's sizes of the presets' models (on Tiny Shakespeare's 65 characters) are what core.model.gpt builds."""
    from core.model.gpt import GPT, GPTConfig
    from core.settings.presets import from_preset
    from core.settings.train_config import MODEL_KEYS
    from nanogpt_tui.bench.train import SHAKESPEARE_CHARS

    config = from_preset(preset)
    model = GPT(GPTConfig(**{key: getattr(config, key) for key in MODEL_KEYS}, vocab_size=len(SHAKESPEARE_CHARS)))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{model.get_num_params() / 1e6:.2f}M parameters" in readme


def test_speedrun_gives_fasts_training_time_against_its_goal(small_text: Path) -> None:
    out = io.StringIO()
    results = speedrun(small_text, presets=("fast",), target=3.9, eval_every=5, eval_batches=1, eval_batch_size=4,
                       cap=20, sample_tokens=0, console=Console(file=out, width=250), **TINY)
    r = results["fast"]
    assert r.train_seconds == pytest.approx(r.seconds - r.eval_seconds)
    text = out.getvalue()
    assert f"{r.train_seconds:.1f} s of training" in text
    assert "(goal: training time to the target <= 7 s)" in text
