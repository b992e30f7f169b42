"""`nanogpt-tui inspect`: anatomy, attention heatmap, logit lens, nearest tokens, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanogpt_tui.cli import main


def test_inspect_prints_tree_counts_and_memory(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--checkpoint", "tiny-run"]) == 0
    out = capsys.readouterr().out
    for expected in ("transformer", "c_attn", "weight 96×32", "lm_head", "tied: transformer.wte.weight",
                     "non-embedding", "12·L·d² estimate", "FLOPs/token, train", "float32", "bfloat16", "AdamW",
                     "(B, 2, 32, 32)"):
        assert expected in out, expected


def test_inspect_attention_lens_and_nearest(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "the quick fox"
    assert main(["inspect", "--checkpoint", str(tiny_run), "--attention", text, "--layer", "1", "--head", "1"]) == 0
    out = capsys.readouterr().out
    assert "layer 1, head 1" in out and "attends most to" in out
    assert "▶" not in out and "t h e · q u i c k" in out  # column labels, whitespace visible
    assert main(["inspect", "--checkpoint", "tiny-run", "--lens", text, "--position", "2"]) == 0
    out = capsys.readouterr().out
    assert "after 'e' (#2)" in out and "block 1" in out and "embeddings" in out
    assert main(["inspect", "--checkpoint", "tiny-run", "--nearest", "e", "-k", "3"]) == 0
    assert "Nearest to 'e'" in capsys.readouterr().out


def test_inspect_cuts_long_text(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--checkpoint", "tiny-run", "--attention", "the fox " * 10]) == 0
    assert "the block holds 32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--attention", "hi", "--layer", "2"], "layer 2 is out of range: this model has layers 0..1"),
        (["--attention", "hi", "--head", "-1"], "head -1 is out of range"),
        (["--attention", ""], "the text is empty"),
        (["--lens", "hi", "--position", "5"], "position 5 is out of range"),
    ],
)
def test_inspect_bad_input_is_one_clear_line(
    tiny_run: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["inspect", "--checkpoint", "tiny-run", *argv]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_inspect_unknown_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--checkpoint", "nope"]) == 1
    assert "no checkpoint called 'nope'" in capsys.readouterr().err


def test_inspect_a_nanogpt_out_dir_with_gpt2_vocabulary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A nanoGPT checkpoint (compiled-model prefixes, no tokenizer: GPT-2's) in its out_dir."""
    import torch

    from core.model.gpt import GPT, GPTConfig

    args = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 16, "bias": True, "vocab_size": 50304, "dropout": 0.0}
    model = GPT(GPTConfig(**args))
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    out_dir = tmp_path / "out-gpt2"
    out_dir.mkdir()
    torch.save({"model": state, "model_args": args, "iter_num": 0, "best_val_loss": 9.9, "config": {"dataset": "owt"}},
               out_dir / "ckpt.pt")
    assert main(["inspect", "--checkpoint", str(out_dir), "--lens", "Hello world, hello", "--position", "1"]) == 0
    out = capsys.readouterr().out
    assert "after '·world' (#1)" in out and "block 1" in out
    assert main(["inspect", "--checkpoint", str(out_dir), "--attention", "Hello world", "--head", "1"]) == 0
    assert "attends most to" in capsys.readouterr().out
    assert main(["inspect", "--checkpoint", str(out_dir), "--nearest", " the", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "Nearest to '·the' (id 262)" in out
    ids = [int(line.split("│")[2]) for line in out.splitlines() if line.count("│") == 4]
    assert len(ids) == 3 and all(i < 50257 for i in ids)  # padded head rows are no tokens


def test_inspect_of_a_fast_run_teaches_its_rotary_positions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The `fast` preset's model (rope, qk_norm) has no wpe: the forward pass names rotary and QK-norm instead."""
    import dataclasses

    from core.model.gpt import GPT, GPTConfig
    from core.runs.checkpoint import save_checkpoint
    from core.settings.presets import from_preset

    fast = from_preset("fast")
    config = GPTConfig.from_args({**dataclasses.asdict(fast), "vocab_size": 30})
    save_checkpoint(tmp_path / "fast" / "ckpt.pt", {
        "model": GPT(config).state_dict(), "model_args": dataclasses.asdict(config), "iter_num": 1,
        "best_val_loss": 3.0, "config": dataclasses.asdict(fast), "tokenizer": {"kind": "char", "chars": list("abcdefghijklmnopqrstuvwxyz .\n!")},
        "version": 1,
    })
    assert main(["inspect", "--checkpoint", str(tmp_path / "fast")]) == 0
    out = capsys.readouterr().out
    assert "wpe" not in out
    assert "rotary" in out and "QK-norm" in out and "x = tok + pos" not in out
