"""The lecture's ladder: each step's model (shapes, what its forward runs), its checkpoints loading where
runs load, exports refused, and a tiny ladder end to end through the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.model.arch import ARCHS, LADDER_ARCHS, arch_of
from core.model.gpt import GPT
from core.model.ladder import BigramLanguageModel, LadderConfig, LanguageModel, build
from core.runs.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from core.settings.train_config import TrainConfig
from core.training.ladder import DEFAULT_ITERS, LadderResults, ladder_plan, run_name

SHAPE = dict(block_size=16, vocab_size=30, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
# The modules each step's forward calls, in order (one of each kind: the heads of a layer look alike).
CALLED = {
    "bigram": ["token_embedding_table"],
    "head": ["token_embedding_table", "position_embedding_table", "sa_head", "lm_head"],
    "heads": ["token_embedding_table", "position_embedding_table", "sa_heads", "lm_head"],
    "ffwd": ["token_embedding_table", "position_embedding_table", "sa_heads", "ffwd", "lm_head"],
    "blocks": ["token_embedding_table", "position_embedding_table", "blocks", "lm_head"],
    "layernorm": ["token_embedding_table", "position_embedding_table", "blocks", "ln_f", "lm_head"],
}


def top_level_calls(model: torch.nn.Module, idx: torch.Tensor) -> list[str]:
    """The model's direct children in the order its forward calls them (forward hooks)."""
    calls: list[str] = []
    handles = [child.register_forward_pre_hook(lambda _m, _a, name=name: calls.append(name))
               for name, child in model.named_children()]
    try:
        model(idx)
    finally:
        for handle in handles:
            handle.remove()
    return calls


@pytest.mark.parametrize("arch", LADDER_ARCHS)
def test_each_step_is_the_lectures_model(arch: str) -> None:
    torch.manual_seed(0)
    model = build({**SHAPE, "arch": arch})
    assert isinstance(model, BigramLanguageModel if arch == "bigram" else LanguageModel)
    idx = torch.randint(0, SHAPE["vocab_size"], (3, 10))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 10, SHAPE["vocab_size"])
    # Weights start small (std 0.02): every step begins at a uniform guess's loss, ln(V).
    assert loss.item() == pytest.approx(math.log(SHAPE["vocab_size"]), abs=0.05)
    last, none = model(idx)
    assert last.shape == (3, 1, SHAPE["vocab_size"]) and none is None
    assert torch.allclose(last[:, 0], logits[:, -1], atol=1e-6)
    assert top_level_calls(model, idx) == CALLED[arch]
    names = {name for name, _ in model.named_parameters()}
    if arch == "heads":
        assert {f"sa_heads.heads.{h}.query.weight" for h in range(SHAPE["n_head"])} <= names
        assert model.sa_heads.heads[0].key.weight.shape == (SHAPE["n_embd"] // SHAPE["n_head"], SHAPE["n_embd"])
    if arch in ("blocks", "layernorm"):
        assert sum(name.endswith("sa.proj.weight") for name in names) == SHAPE["n_layer"]
        has_norm = any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
        assert has_norm == (arch == "layernorm")


@pytest.mark.parametrize("arch", ["head", "layernorm"])
def test_a_step_never_looks_ahead(arch: str) -> None:
    """Changing a later token leaves the earlier positions' logits as they were (the tril mask)."""
    model = build({**SHAPE, "arch": arch}).eval()
    idx = torch.randint(0, SHAPE["vocab_size"], (1, 12))
    changed = idx.clone()
    changed[0, 8] = (idx[0, 8] + 1) % SHAPE["vocab_size"]
    with torch.no_grad():
        a, _ = model(idx, idx)
        b, _ = model(changed, changed)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_model_args_name_the_step_and_old_ones_are_gpts() -> None:
    assert arch_of({}) == "gpt" and isinstance(build({**SHAPE}), GPT)
    with pytest.raises(ValueError, match="does not know"):
        arch_of({"arch": "mamba"})
    with pytest.raises(ValueError, match="does not know"):
        arch_of({"arch": ["bigram"]})
    assert "arch" in LadderConfig.from_args({**SHAPE, "arch": "heads", "other": 1}).__dict__


def step_checkpoint(arch: str, tokenizer_chars: list[str]) -> dict:
    model = build({**SHAPE, "vocab_size": len(tokenizer_chars), "arch": arch})
    import dataclasses

    return {
        "model": model.state_dict(), "model_args": dataclasses.asdict(model.config), "optimizer": None,
        "iter_num": 3, "best_val_loss": 2.0, "config": {"arch": arch, "dataset": "x"},
        "tokenizer": {"kind": "char", "chars": tokenizer_chars}, "dataset": {"name": "x"},
        "history": {"steps": [], "evals": []}, "rng": None, "scaler": None, "version": 1,
    }


@pytest.mark.parametrize("arch", ["bigram", "ffwd", "layernorm"])
def test_a_steps_checkpoint_loads_samples_and_refuses_export(arch: str, tmp_path: Path) -> None:
    from core.inference.sampler import generate
    from core.interop.gpt2_weights import export_checkpoint
    from core.settings.sampling import SamplingConfig

    chars = list("abcdefghij klmnopqrstuvwxyz.\n")
    path = tmp_path / "run" / "ckpt.pt"
    save_checkpoint(path, step_checkpoint(arch, chars))
    model, tokenizer, ckpt = load_model(path)
    assert ckpt["model_args"]["arch"] == arch and type(model).__name__ in ("BigramLanguageModel", "LanguageModel")
    # Past the block the window jumps (no KV cache): the same text with and without "the cache".
    config = SamplingConfig(max_new_tokens=SHAPE["block_size"] + 10, seed=1)
    cached = "".join(p.text for p in generate(model, tokenizer, "ab", config))
    uncached = "".join(p.text for p in generate(model, tokenizer, "ab", config, use_cache=False))
    assert cached == uncached and len(cached) > 0
    with pytest.raises(CheckpointError, match=f"ladder's '{arch}' step"):
        export_checkpoint(str(path), "nanogpt", tmp_path / "out")


def test_a_checkpoint_naming_an_unknown_step_or_the_wrong_weights_is_refused(tmp_path: Path) -> None:
    chars = list("abcdefghij klmnopqrstuvwxyz.\n")
    ckpt = step_checkpoint("heads", chars)
    ckpt["model_args"]["arch"] = "mamba"
    save_checkpoint(tmp_path / "a.pt", ckpt)
    with pytest.raises(CheckpointError, match="'mamba', which this program does not know"):
        load_checkpoint(tmp_path / "a.pt")
    ckpt = step_checkpoint("heads", chars)
    ckpt["model_args"]["arch"] = "ffwd"  # the weights are a heads model's: ffwd's are missing
    save_checkpoint(tmp_path / "b.pt", ckpt)
    with pytest.raises(CheckpointError, match="lacks the weight ffwd"):
        load_checkpoint(tmp_path / "b.pt")


def test_recipe_knobs_are_for_the_gpt_only() -> None:
    problems = dict(TrainConfig(dataset="x", arch="heads", rope=True, muon=True).problems())
    assert "rope, muon apply to the GPT only" in problems["arch"]
    assert "arch must be one of" in dict(TrainConfig(dataset="x", arch="rnn").problems())["arch"]


def test_the_plan_shares_data_batch_block_iterations_and_seed() -> None:
    plan = ladder_plan("shakespeare-char", stamp="20260101-000000")
    assert [c.arch for c in plan] == list(ARCHS)
    assert [c.run_name for c in plan] == [run_name("20260101-000000", a) for a in ARCHS]
    assert plan[0].run_name == "ladder-20260101-000000-1-bigram" and plan[-1].run_name.endswith("-7-gpt")
    shared = ("dataset", "batch_size", "block_size", "max_iters", "seed", "eval_interval", "eval_iters",
              "n_layer", "n_head", "n_embd", "gradient_accumulation_steps")
    for key in shared:
        assert len({getattr(c, key) for c in plan}) == 1, key
    assert plan[0].max_iters == DEFAULT_ITERS
    assert all(not c.problems() for c in plan)
    assert plan[-1].rope and plan[-1].muon and not any(c.rope or c.muon for c in plan[:-1])


def test_a_tiny_ladder_end_to_end_through_the_cli(char_dataset, nanogpt_home: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from nanogpt_tui.cli import main

    tiny = ["--set", "eval_iters=2", "--set", "batch_size=4", "--set", "block_size=16", "--set", "warmup_iters=1"]
    assert main(["ladder", "--dataset", char_dataset.name, "--iters", "4", "--device", "cpu", *tiny]) == 0
    out = capsys.readouterr().out
    runs = sorted(p.name for p in (nanogpt_home / "runs").iterdir())
    assert len(runs) == len(ARCHS)
    assert [r.rsplit("-", 1)[1] for r in runs] == list(ARCHS)  # numbered in the lecture's order
    for name in runs:
        assert name in out
        _, _, ckpt = load_model(nanogpt_home / "runs" / name / "ckpt.pt")
        assert ckpt["iter_num"] == 4 and ckpt["config"]["arch"] == name.rsplit("-", 1)[1]
    # Every step's row has a val loss below a uniform guess's (ln V) and above 0.
    vals = [float(line.split("│")[4]) for line in out.splitlines() if line.count("│") > 6 and "ladder-" in line]
    assert len(vals) == len(ARCHS) and all(0 < v < math.log(char_dataset.vocab_size) + 0.1 for v in vals)
    assert "count-based bigram" in out


def test_results_follow_the_events() -> None:
    from core.runs.events import Eval, Failed, Finished, Started

    plan = ladder_plan("d", iters=10, stamp="s")
    results = LadderResults.of(plan)
    results.record(0, Started(Path("/r/a"), 100, "cpu", "float32", plan[0], 0, 10, False, math.inf, {}))
    results.record(0, Eval(10, 2.6, 2.5, 2.5))
    results.record(0, Finished(10, "completed"))
    results.record(1, Eval(10, 2.5, 2.4, 2.4))
    results.record(1, Failed(10, "boom", "error"))
    assert results.steps[0].status == "done" and results.steps[0].val_loss == 2.5
    assert results.steps[1].status == "failed" and results.change(1) == pytest.approx(-0.1)
    assert math.isnan(results.change(0)) and results.run_dirs == [Path("/r/a")]
