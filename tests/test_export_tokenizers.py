"""Every export carries its tokenizer: tokenizer.json encodes as this program does, transformers' pipeline
generates what `sample --temperature 0` does, and what an export cannot carry is said before it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.common import paths
from core.interop.gpt2_weights import export_checkpoint
from core.interop.hf_tokenizer import TOKENIZER_JSON, tokenizer_files
from core.runs.checkpoint import load_checkpoint, save_checkpoint
from core.tokens.bpe_train import learn_bpe
from core.tokens.tokenizers import CharTokenizer, get_tokenizer
from nanogpt_tui.cli import main

TRICKY = ("Hello  world\n\n\nx.\nY   \n  indented don't we'll DON'T 12345 678 émoji 🎉🚀 中文没有空格的句子。 "
          "tab\there \r\nwindows\r\n!!! ?? trailing   \na\n b <|endoftext|> \u00a0nbsp\u2003em end.  \n\n  ")
TWO_STEPS = ["--preset", "tiny", "--device", "cpu", "--set", "max_iters=2", "--set", "eval_interval=2",
             "--set", "eval_iters=1", "--set", "warmup_iters=1", "--set", "lr_decay_iters=2"]


def test_tokenizer_json_encodes_and_decodes_as_we_do(small_text: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    pytest.importorskip("rustbpe")
    text = small_text.read_text(encoding="utf-8") + TRICKY * 3
    kinds = {
        "gpt2": get_tokenizer("gpt2"),
        "learned gpt2 split": learn_bpe([text], 400, "gpt2"),
        "learned gpt4 split": learn_bpe([text], 400, "gpt4"),
    }
    for name, ours in kinds.items():
        theirs = tokenizers.Tokenizer.from_str(tokenizer_files(ours.to_dict(), 64)[TOKENIZER_JSON])
        ids = theirs.encode(text).ids
        assert ids == ours.encode(text, allow_special=True), name  # transformers splits out special tokens
        assert theirs.decode(ids, skip_special_tokens=False) == ours.decode(ids) == text, name
    chars = CharTokenizer.from_text(text)
    theirs = tokenizers.Tokenizer.from_str(tokenizer_files(chars.to_dict(), 64)[TOKENIZER_JSON])
    assert theirs.encode(text).ids == chars.encode(text)
    assert theirs.decode(chars.encode(text)) == text


def scramble_weights(run: str) -> None:
    """Random weights of a realistic size, so greedy text varies token to token (a barely trained model
    repeats one token, which would hide a wrong id)."""
    path = paths.runs_dir() / run / "ckpt.pt"
    ckpt = load_checkpoint(path)
    generator = torch.Generator().manual_seed(0)
    ckpt["model"] = {k: torch.randn(v.shape, generator=generator) * 0.3 for k, v in ckpt["model"].items()}
    save_checkpoint(path, ckpt)


@pytest.mark.parametrize(("tokenizer", "prompt"), [("gpt2", "The quick brown fox, émoji 🎉"), ("bpe", "The quick brown"),
                                                    ("char", "The quick")])
def test_transformers_pipeline_generates_what_sample_does(
    small_text: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tokenizer: str, prompt: str
) -> None:
    pytest.importorskip("transformers")
    if tokenizer == "bpe":
        pytest.importorskip("rustbpe")
    from transformers import pipeline

    extra = ["--vocab-size", "300"] if tokenizer == "bpe" else []
    assert main(["prepare", str(small_text), "--tokenizer", tokenizer, "--name", "d", "--block-size", "16", *extra]) == 0
    assert main(["train", "--dataset", "d", "--name", "r", *TWO_STEPS]) == 0
    scramble_weights("r")
    assert main(["export", "r", "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and config["clean_up_tokenization_spaces"] is False
    capsys.readouterr()
    assert main(["sample", "--checkpoint", "r", "--prompt", prompt, "--temperature", "0", "--max-new-tokens", "12"]) == 0
    ours = capsys.readouterr().out.removesuffix("\n")

    generate = pipeline("text-generation", model=str(tmp_path / "hf"))
    theirs = generate(prompt, max_new_tokens=12, do_sample=False)[0]["generated_text"]
    assert len(set(ours[len(prompt):])) > 3  # varied text: every id counts
    assert theirs == ours


def test_what_an_export_cannot_carry_is_said_before_it_writes(small_text: Path, tmp_path: Path) -> None:
    pytest.importorskip("rustbpe")
    assert main(["prepare", str(small_text), "--tokenizer", "bpe", "--vocab-size", "300", "--name", "d",
                 "--block-size", "16"]) == 0
    assert main(["train", "--dataset", "d", "--name", "r", *TWO_STEPS]) == 0
    heard: list[tuple[str, bool]] = []
    out = tmp_path / "nanogpt"
    export_checkpoint("r", "nanogpt", out, warn=lambda text: heard.append((text, (out / "ckpt.pt").exists())))
    assert len(heard) == 1 and "sample.py cannot decode" in heard[0][0] and heard[0][1] is False
    assert (out / "ckpt.pt").is_file()
    heard.clear()
    export_checkpoint("r", "hf", tmp_path / "hf", warn=lambda text: heard.append((text, False)))
    assert heard == []  # the hf export carries the learned BPE as tokenizer.json


async def test_the_export_dialog_says_it_before_exporting(small_text: Path) -> None:
    pytest.importorskip("rustbpe")
    from pilot_helpers import wait_for
    from textual.widgets import Static

    from nanogpt_tui.app import NanoGPTApp
    from nanogpt_tui.screens.checkpoints import CheckpointsScreen
    from nanogpt_tui.widgets.export_dialog import ExportModal

    assert main(["prepare", str(small_text), "--tokenizer", "bpe", "--vocab-size", "300", "--name", "d",
                 "--block-size", "16"]) == 0
    assert main(["train", "--dataset", "d", "--name", "r", *TWO_STEPS]) == 0
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and app.screen.summaries)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        caveat = app.screen.query_one("#export-caveat", Static)
        assert "sample.py cannot decode" in str(caveat.render())  # nanoGPT, the first format
        await pilot.press("shift+tab", "down", "enter")  # Hugging Face: it carries the tokenizer
        await wait_for(pilot, lambda: str(caveat.render()).strip() == "")
        await pilot.press("escape")


def test_a_learned_bpe_export_is_a_folder_init_from_takes(small_text: Path, tmp_path: Path) -> None:
    pytest.importorskip("rustbpe")
    from core.runs.checkpoint import CheckpointError

    assert main(["prepare", str(small_text), "--tokenizer", "bpe", "--vocab-size", "300", "--name", "d",
                 "--block-size", "16"]) == 0
    assert main(["train", "--dataset", "d", "--name", "r", *TWO_STEPS]) == 0
    export_checkpoint("r", "hf", tmp_path / "hf")
    assert main(["train", "--dataset", "d", "--name", "again", *TWO_STEPS, "--init-from", str(tmp_path / "hf")]) == 0
    assert main(["prepare", str(small_text), "--tokenizer", "bpe", "--vocab-size", "290", "--name", "other",
                 "--block-size", "16"]) == 0
    from core.interop.gpt2_weights import init_from
    from core.settings.presets import from_preset

    config = from_preset("tiny", dataset="other", init_from=str(tmp_path / "hf"), device="cpu")
    other = load_checkpoint(paths.runs_dir() / "r" / "ckpt.pt")["tokenizer"] | {"ranks": []}
    with pytest.raises(CheckpointError, match="the BPE learned for it"):
        init_from(config, other, 290)
