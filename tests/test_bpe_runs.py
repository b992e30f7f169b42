"""A run trained on a learned BPE: its checkpoint carries the tokenizer, so it works copied alone anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.common import paths
from core.runs.checkpoint import load_checkpoint, load_model
from core.tokens.bpe import BpeTokenizer
from nanogpt_tui.cli import main

pytest.importorskip("rustbpe")

TINY = ["--preset", "tiny", "--device", "cpu", "--set", "max_iters=6", "--set", "eval_interval=3",
        "--set", "eval_iters=2", "--set", "lr_decay_iters=6", "--set", "warmup_iters=1", "--set", "block_size=16"]


def test_a_checkpoint_copied_alone_samples_evals_and_inspects(
    small_text: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prepare", str(small_text), "--tokenizer", "bpe", "--vocab-size", "300", "--name", "b300",
                 "--block-size", "16"]) == 0
    assert main(["train", "--dataset", "b300", "--name", "brun", *TINY]) == 0
    spec = load_checkpoint(paths.runs_dir() / "brun" / "ckpt.pt")["tokenizer"]
    assert spec["kind"] == "bpe" and len(spec["ranks"]) == 299

    # Only the checkpoint, in another folder; the dataset and the run are gone.
    alone = tmp_path / "elsewhere" / "model.pt"
    alone.parent.mkdir()
    shutil.copy(paths.runs_dir() / "brun" / "ckpt.pt", alone)
    shutil.rmtree(paths.datasets_dir())
    shutil.rmtree(paths.runs_dir())
    _, tokenizer, _ = load_model(alone)
    assert isinstance(tokenizer, BpeTokenizer) and tokenizer.to_dict() == spec
    capsys.readouterr()

    assert main(["sample", "--checkpoint", str(alone), "--prompt", "The quick", "--max-new-tokens", "12",
                 "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The quick") and len(out) > len("The quick\n")

    assert main(["eval", "--checkpoint", str(alone), "--text", str(small_text), "--eval-iters", "2",
                 "--batch-size", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # (rich wraps long lines)
    assert "text loss" in out and "bits/byte" in out

    assert main(["eval", "--checkpoint", str(alone)]) == 1  # no dataset to be found: it says what to do
    assert "--text FILE" in capsys.readouterr().err

    assert main(["inspect", "--checkpoint", str(alone), "--nearest", "th"]) == 0
    assert "Nearest to 't'" in capsys.readouterr().out  # 'th' is two tokens of this small vocabulary
