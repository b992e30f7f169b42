"""Export: a run as nanoGPT's ckpt.pt or a Hugging Face GPT-2 folder, loaded back; the CLI; the Checkpoints key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pilot_helpers import notices, wait_for
from textual.widgets import Input, RadioButton, Static

from core.dataset.format import read_meta
from core.interop.gpt2_weights import ExportExists, export_checkpoint, init_from, load_hf_gpt2
from core.model.gpt import GPT, GPTConfig
from core.runs.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from core.settings.train_config import TrainConfig
from core.tokens.tokenizers import GPT2_SPEC
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.cli import main
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.widgets.export_dialog import ExportModal

NANOGPT_MODEL_ARGS = {"n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout"}


def logits(model: torch.nn.Module, vocab_size: int, block_size: int) -> torch.Tensor:
    idx = torch.randint(0, vocab_size, (2, block_size), generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        return model(idx, idx)[0]


def run_model(run: Path) -> tuple[torch.nn.Module, dict]:
    model, _, ckpt = load_model(run / "ckpt.pt")
    return model, ckpt


def test_nanogpt_export_loads_back_with_equal_logits(tiny_run: Path, tmp_path: Path) -> None:
    model, ckpt = run_model(tiny_run)
    exported = export_checkpoint(tiny_run.name, "nanogpt", tmp_path / "out")
    assert sorted(p.name for p in exported.files) == ["ckpt.pt", "meta.pkl"] and "meta.pkl" in exported.note

    raw = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=True)  # nanoGPT's sample.py loads it so
    assert set(raw["model_args"]) == NANOGPT_MODEL_ARGS  # nanoGPT's GPTConfig takes no other keys
    assert raw["iter_num"] == ckpt["iter_num"] and raw["best_val_loss"] == ckpt["best_val_loss"]
    assert raw["config"]["dataset"] == "small-char" and "version" not in raw
    assert raw["optimizer"]["param_groups"][0]["weight_decay"] > 0  # AdamW's groups: train.py can resume
    # nanoGPT's model (same names) takes the state dict strictly.
    GPT(GPTConfig(**raw["model_args"])).load_state_dict(raw["model"])
    meta = read_meta(tmp_path / "out" / "meta.pkl")
    assert "".join(meta["itos"][i] for i in range(meta["vocab_size"])) == "".join(ckpt["tokenizer"]["chars"])

    back, tokenizer, loaded = load_model(tmp_path / "out" / "ckpt.pt")
    assert loaded["version"] == 0 and tokenizer.to_dict() == ckpt["tokenizer"]
    V, T = ckpt["model_args"]["vocab_size"], ckpt["model_args"]["block_size"]
    torch.testing.assert_close(logits(back, V, T), logits(model, V, T), rtol=0, atol=0)


def test_hf_export_loads_back_through_init_from(tiny_run: Path, tmp_path: Path) -> None:
    model, ckpt = run_model(tiny_run)
    assert not ckpt["model_args"]["bias"]  # the tiny preset has no biases: the export adds zero ones
    exported = export_checkpoint(tiny_run / "ckpt.pt", "hf", tmp_path / "hf")
    assert sorted(p.name for p in exported.files) == ["config.json", "meta.pkl", "model.safetensors", "tokenizer.json",
                                                      "tokenizer_config.json"]
    assert "tokenizer.json" in exported.note
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    args = ckpt["model_args"]
    assert config["model_type"] == "gpt2" and config["tie_word_embeddings"]
    assert (config["n_positions"], config["vocab_size"], config["n_embd"]) == (args["block_size"], args["vocab_size"], args["n_embd"])

    V, T = args["vocab_size"], args["block_size"]
    torch.testing.assert_close(logits(load_hf_gpt2(tmp_path / "hf"), V, T), logits(model, V, T), rtol=1e-5, atol=1e-5)
    # --init-from takes it for the char dataset whose vocabulary its meta.pkl holds.
    again, config_after = init_from(TrainConfig(dataset="small-char", init_from=str(tmp_path / "hf"), block_size=T),
                                    ckpt["tokenizer"], V)
    assert config_after.n_embd == args["n_embd"] and config_after.bias
    torch.testing.assert_close(logits(again, V, T), logits(model, V, T), rtol=1e-5, atol=1e-5)
    # Not for GPT-2 BPE text: its ids are not this vocabulary's.
    with pytest.raises(CheckpointError, match="character vocabulary of its meta.pkl, but dataset 'x' uses gpt2"):
        init_from(TrainConfig(dataset="x", init_from=str(tmp_path / "hf"), block_size=T), GPT2_SPEC, 50257)


def test_hf_export_runs_in_transformers(tiny_run: Path, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    model, ckpt = run_model(tiny_run)
    export_checkpoint(tiny_run.name, "hf", tmp_path / "hf")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    V, T = ckpt["model_args"]["vocab_size"], ckpt["model_args"]["block_size"]
    idx = torch.randint(0, V, (2, T), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = theirs(idx).logits
    torch.testing.assert_close(logits(model, V, T), expected, rtol=1e-5, atol=1e-5)


def test_refusals(tiny_run: Path, tmp_path: Path) -> None:
    # A recipe knob nanoGPT and GPT-2 lack: refused, naming it.
    ckpt = load_checkpoint(tiny_run / "ckpt.pt")
    ckpt["model_args"]["rope"] = True
    del ckpt["model"]["transformer.wpe.weight"]  # rotary positions: no position table
    save_checkpoint(tmp_path / "rope.pt", ckpt)
    for fmt in ("nanogpt", "hf"):
        with pytest.raises(CheckpointError, match="it uses rope"):
            export_checkpoint(tmp_path / "rope.pt", fmt, tmp_path / "never")
    assert not (tmp_path / "never").exists()

    # Existing files are kept unless overwrite is asked for.
    out = tmp_path / "out"
    export_checkpoint(tiny_run.name, "nanogpt", out)
    before = (out / "ckpt.pt").stat().st_mtime_ns
    with pytest.raises(ExportExists, match="already holds ckpt.pt, meta.pkl"):
        export_checkpoint(tiny_run.name, "nanogpt", out)
    assert (out / "ckpt.pt").stat().st_mtime_ns == before
    export_checkpoint(tiny_run.name, "nanogpt", out, overwrite=True)
    with pytest.raises(CheckpointError, match="is a file"):
        export_checkpoint(tiny_run.name, "hf", out / "ckpt.pt")


async def test_the_export_dialog_offers_only_the_formats_a_run_can_take(tiny_run: Path, tmp_path: Path) -> None:
    # A run using RoPE: no format takes it, so there is no dialog that could only fail, but the reason.
    ckpt = load_checkpoint(tiny_run / "ckpt.pt")
    ckpt["model_args"]["rope"] = True
    del ckpt["model"]["transformer.wpe.weight"]
    rope_run = tiny_run.with_name("rope-run")
    rope_run.mkdir()
    save_checkpoint(rope_run / "ckpt.pt", ckpt)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        await wait_for(pilot, lambda: isinstance(screen, CheckpointsScreen) and len(screen.summaries) >= 3)
        await wait_for(pilot, lambda: screen.selected_readable() is not None)
        while screen.selected_readable().name != "rope-run":
            await pilot.press("down")
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ExportModal)
        assert any("rope-run cannot be exported: it uses rope" in str(n.message) for n in notices(app))

    # A dialog for a run one format refuses (as a future format may) offers the others and says why.
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        dialog = ExportModal("Export rope-run as:", tmp_path, {"hf": "it uses rope"})
        app.push_screen(dialog)
        await wait_for(pilot, lambda: app.screen is dialog and bool(dialog.query("#export-folder")))
        await pilot.pause()
        assert [button.name for button in dialog.query(RadioButton)] == ["nanogpt"]
        assert "Not offered: Hugging Face GPT-2: it uses rope" in str(dialog.query_one("#export-refused", Static).content)
        assert dialog.selected_format() == "nanogpt"


def test_cli_export(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["export", tiny_run.name, "--format", "hf", "--out", str(out)]) == 0
    assert "model.safetensors" in capsys.readouterr().out and (out / "config.json").is_file()
    assert main(["export", tiny_run.name, "--format", "hf", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", tiny_run.name, "--format", "hf", "--out", str(out), "--overwrite"]) == 0
    assert main(["export", "no-such-run", "--format", "nanogpt", "--out", str(out)]) == 1
    assert "error:" in capsys.readouterr().err


async def test_checkpoints_screen_exports(tiny_run: Path, short_tmp_path: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and app.screen.summaries)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        assert app.screen.focused is app.screen.query_one("#export-folder", Input)  # Enter would export now
        await pilot.press("shift+tab", "down", "enter")  # the second format: Hugging Face
        await pilot.press("tab")
        assert app.screen.focused is app.screen.query_one("#export-folder", Input)
        await pilot.press(*str(short_tmp_path / "from-app"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.title == "Exported" for n in notices(app)))
        note = next(n for n in notices(app) if n.title == "Exported")
        assert "model.safetensors, config.json, tokenizer.json, tokenizer_config.json, meta.pkl" in note.message
        assert (short_tmp_path / "from-app" / "model.safetensors").is_file()

        # Again into the same folder: refused with what to do, the files are left alone.
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        await pilot.press("shift+tab", "down", "enter", "tab", *str(short_tmp_path / "from-app"), "enter")
        await wait_for(pilot, lambda: any(n.title == "Export refused" for n in notices(app)))
        refused = next(n for n in notices(app) if n.title == "Export refused")
        assert "already holds" in refused.message and "Overwrite" in refused.message

        # Opened and Enter at once: the first format into the default folder, as the dialog shows it.
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportModal))
        default = Path(app.screen.query_one("#export-folder", Input).value)
        await pilot.press("enter")
        await wait_for(pilot, lambda: (default / "ckpt.pt").is_file())
