"""Starting from GPT-2's weights: a Hugging Face GPT-2 folder, written here, loads (core.interop.gpt2_weights) and trains."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch.nn import functional as F

from core.dataset.format import open_split
from core.interop.gpt2_weights import export_checkpoint, load_hf_gpt2
from core.runs.checkpoint import CheckpointError, load_checkpoint, load_model
from core.runs.events import Eval, Failed, Finished, Started, Step
from core.settings.presets import from_preset
from core.settings.train_config import ConfigError, TrainConfig
from core.training.evaluation import estimate_loss
from core.training.trainer import Trainer

SHAPE = dict(n_layer=2, n_head=2, n_embd=16, n_positions=32)
GPT2_VOCAB = 50257


def write_hf_gpt2(folder: Path, vocab_size: int = 97, hub_names: bool = False, seed: int = 0,
                  **config: object) -> dict[str, torch.Tensor]:
    """A random GPT-2 in the Hugging Face layout: GPT2LMHeadModel's names, Conv1D weights stored (in, out).

    hub_names: as the hub's original gpt2 files: no `transformer.` prefix, and causal-mask buffers."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    L, C, P = SHAPE["n_layer"], SHAPE["n_embd"], SHAPE["n_positions"]

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.2

    tensors = {"wte.weight": rand(vocab_size, C), "wpe.weight": rand(P, C),
               "ln_f.weight": 1 + rand(C), "ln_f.bias": rand(C)}
    for i in range(L):
        h = f"h.{i}."
        tensors |= {
            h + "ln_1.weight": 1 + rand(C), h + "ln_1.bias": rand(C),
            h + "attn.c_attn.weight": rand(C, 3 * C), h + "attn.c_attn.bias": rand(3 * C),  # Conv1D: (in, out)
            h + "attn.c_proj.weight": rand(C, C), h + "attn.c_proj.bias": rand(C),
            h + "ln_2.weight": 1 + rand(C), h + "ln_2.bias": rand(C),
            h + "mlp.c_fc.weight": rand(C, 4 * C), h + "mlp.c_fc.bias": rand(4 * C),
            h + "mlp.c_proj.weight": rand(4 * C, C), h + "mlp.c_proj.bias": rand(C),
        }
    stored = dict(tensors)
    if hub_names:
        for i in range(L):
            stored[f"h.{i}.attn.bias"] = torch.ones(1, 1, P, P).tril()
            stored[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    else:
        stored = {f"transformer.{k}": v for k, v in stored.items()}
    save_file(stored, str(folder / "model.safetensors"))
    hf_config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab_size,
                 "n_ctx": P, "activation_function": "gelu", "layer_norm_epsilon": 1e-5, **SHAPE, **config}
    (folder / "config.json").write_text(json.dumps(hf_config))
    return tensors


def reference_logits(t: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
    """GPT-2's forward pass written straight from the Hugging Face tensors (Conv1D: x @ W + b)."""
    n_head, C = SHAPE["n_head"], SHAPE["n_embd"]
    B, T = idx.shape

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (C,), t[f"{name}.weight"], t[f"{name}.bias"], 1e-5)

    def conv1d(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ t[f"{name}.weight"] + t[f"{name}.bias"]

    x = t["wte.weight"][idx] + t["wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(SHAPE["n_layer"]):
        q, k, v = conv1d(ln(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn").split(C, dim=-1)
        q, k, v = (z.view(B, T, n_head, C // n_head).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1) / math.sqrt(C // n_head)).masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + conv1d(y, f"h.{i}.attn.c_proj")
        x = x + conv1d(F.gelu(conv1d(ln(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc")), f"h.{i}.mlp.c_proj")
    return ln(x, "ln_f") @ t["wte.weight"].T


def logits_of(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(idx, idx)[0]  # with targets: every position's logits


@pytest.mark.parametrize("hub_names", [False, True])
def test_hf_folder_loads_with_the_logits_of_its_tensors(tmp_path: Path, hub_names: bool) -> None:
    tensors = write_hf_gpt2(tmp_path / "gpt2", hub_names=hub_names)
    model = load_hf_gpt2(tmp_path / "gpt2")
    assert (model.config.n_layer, model.config.n_embd, model.config.block_size) == (2, 16, 32)
    assert model.config.bias and model.config.vocab_size == 97
    assert model.lm_head.weight is model.transformer.wte.weight  # tied, as GPT-2
    idx = torch.randint(0, 97, (2, 32), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(logits_of(model, idx), reference_logits(tensors, idx), rtol=1e-5, atol=1e-5)


def test_same_logits_as_transformers_gpt2(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    write_hf_gpt2(tmp_path / "gpt2")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2").eval()
    idx = torch.randint(0, 97, (2, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = theirs(idx).logits
    torch.testing.assert_close(logits_of(load_hf_gpt2(tmp_path / "gpt2"), idx), expected, rtol=1e-5, atol=1e-5)


def test_block_size_is_cropped(tmp_path: Path) -> None:
    tensors = write_hf_gpt2(tmp_path / "gpt2")
    model = load_hf_gpt2(tmp_path / "gpt2", block_size=8, dropout=0.1)
    assert model.config.block_size == 8 and model.config.dropout == 0.1
    torch.testing.assert_close(model.transformer.wpe.weight.detach(), tensors["wpe.weight"][:8])
    idx = torch.randint(0, 97, (1, 8), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(logits_of(model, idx), reference_logits(tensors, idx), rtol=1e-5, atol=1e-5)
    with pytest.raises(CheckpointError, match="block_size 64 exceeds the 32 positions"):
        load_hf_gpt2(tmp_path / "gpt2", block_size=64)


def test_missing_and_invalid_folders_say_what_is_wrong(tmp_path: Path, nanogpt_home: Path) -> None:
    # Nothing there: where to put which files (offline), or how to download them.
    with pytest.raises(CheckpointError) as missing:
        load_hf_gpt2("gpt2-medium")
    message = str(missing.value)
    assert "config.json and model.safetensors" in message and "huggingface.co/openai-community/gpt2-medium" in message
    assert str(nanogpt_home / "models" / "gpt2-medium") in message and "download-gpt2 gpt2-medium" in message

    folder = tmp_path / "half"
    write_hf_gpt2(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        load_hf_gpt2(folder)
    with pytest.raises(CheckpointError, match="takes a folder"):
        load_hf_gpt2(folder / "config.json")

    # A name finds HOME/models/NAME.
    write_hf_gpt2(nanogpt_home / "models" / "mine")
    assert load_hf_gpt2("mine").config.n_embd == 16

    corrupt = tmp_path / "corrupt"
    write_hf_gpt2(corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_hf_gpt2(corrupt)

    cases = {
        "llama": ({"model_type": "llama"}, "only GPT-2"),
        "wider": ({"n_embd": 32}, "does not match its config.json"),
        "relu": ({"activation_function": "relu"}, "activation_function 'relu'"),
        "no-layers": ({"n_layer": None}, "n_layer=None"),
        "eps": ({"layer_norm_epsilon": "tiny"}, "layer_norm_epsilon 'tiny'"),
    }
    for name, (change, expected) in cases.items():
        write_hf_gpt2(tmp_path / name, **change)
        with pytest.raises(CheckpointError, match=expected):
            load_hf_gpt2(tmp_path / name)
    (tmp_path / "llama" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        load_hf_gpt2(tmp_path / "llama")


def test_init_from_refuses_the_recipe_knobs() -> None:
    config = TrainConfig(dataset="x", init_from="gpt2", rope=True)
    assert [name for name, _ in config.problems()] == ["init_from"]
    with pytest.raises(ConfigError, match="turn off rope"):
        config.validate()


@pytest.fixture
def gpt2_dataset(small_text: Path):
    from data.prepare import prepare

    return prepare(str(small_text), tokenizer="gpt2", name="small-gpt2", block_size=16)


def train(config: TrainConfig, resume: Path | None = None) -> list:
    events: list = []
    Trainer(config, events.append, resume=resume).run()
    return events


def test_training_starts_from_the_folder_and_resumes(tmp_path: Path, gpt2_dataset, char_dataset) -> None:
    tensors = write_hf_gpt2(tmp_path / "gpt2", vocab_size=GPT2_VOCAB)
    settings = dict(dataset=gpt2_dataset.name, init_from=str(tmp_path / "gpt2"), block_size=16, batch_size=2,
                    gradient_accumulation_steps=2, eval_interval=2, eval_iters=2, device="cpu")
    straight = train(from_preset("finetune", **settings, max_iters=4, run_name="straight"))
    assert not [e for e in straight if isinstance(e, Failed)]
    started = next(e for e in straight if isinstance(e, Started))
    # The folder's shape (2 x 16, biases), not the preset's; positions cropped to block_size.
    assert (started.config.n_layer, started.config.n_embd, started.config.bias) == (2, 16, True)
    ckpt = load_checkpoint(started.run_dir / "ckpt.pt")
    assert ckpt["model_args"]["block_size"] == 16 and ckpt["config"]["init_from"] == str(tmp_path / "gpt2")
    # It started from the folder's weights: iteration 0's eval measured the folder's model (cropped).
    folder_model = load_hf_gpt2(tmp_path / "gpt2", block_size=16)
    data = {split: open_split(gpt2_dataset, split) for split in ("train", "val")}
    expected = estimate_loss(folder_model, data, 16, 2, 2, started.config.seed + 1, torch.device("cpu"))
    first = next(e for e in straight if isinstance(e, Eval))
    assert first.iter == 0 and first.val_loss == pytest.approx(expected["val"], rel=1e-5)
    assert ckpt["model"]["transformer.wpe.weight"].shape == (16, 16)
    assert not torch.equal(ckpt["model"]["transformer.wte.weight"], tensors["wte.weight"])  # and it trained

    # The fine-tuned run exports back to the layout it came from, with GPT-2's end-of-text token.
    exported = export_checkpoint(started.run_dir.name, "hf", tmp_path / "tuned")
    assert [p.name for p in exported.files] == ["model.safetensors", "config.json", "tokenizer.json",
                                                "tokenizer_config.json"] and "tokenizer.json" in exported.note
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["eos_token_id"] == GPT2_VOCAB - 1
    idx = torch.randint(0, GPT2_VOCAB, (1, 16), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(logits_of(load_hf_gpt2(tmp_path / "tuned"), idx),
                               logits_of(load_model(started.run_dir / "ckpt.pt")[0], idx), rtol=1e-5, atol=1e-5)

    # 2 iterations, then a resume to 4, continue the same curve.
    train(from_preset("finetune", **settings, max_iters=2, run_name="halves"))
    resumed = train(from_preset("finetune", **settings, max_iters=4), resume=started.run_dir.parent / "halves")
    assert not [e for e in resumed if isinstance(e, Failed)]
    losses = {e.iter: e.loss for e in straight if isinstance(e, Step)}
    after = {e.iter: e.loss for e in resumed if isinstance(e, Step)}
    assert set(after) == {2, 3} and all(after[i] == pytest.approx(losses[i], rel=1e-5) for i in after)

    # A char dataset cannot use GPT-2's embedding rows.
    wrong = train(from_preset("finetune", **{**settings, "dataset": char_dataset.name}, max_iters=2))
    failed = next(e for e in wrong if isinstance(e, Failed))
    assert "expects text tokenized with GPT-2's BPE" in failed.message and "--tokenizer gpt2" in failed.message
    assert isinstance(wrong[-1], Failed) and not any(isinstance(e, Finished) for e in wrong)


def test_download_without_huggingface_hub_says_where_to_put_the_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], nanogpt_home: Path
) -> None:
    from nanogpt_tui.cli import export, main

    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec",
                        lambda name, *a: None if name == "huggingface_hub" else real(name, *a))
    assert main(["download-gpt2", "gpt2-large"]) == 1
    err = capsys.readouterr().err.replace("\n", "")  # rich wraps long lines (keeping the spaces)
    assert "huggingface_hub is not installed" in err and str(nanogpt_home / "models" / "gpt2-large") in err
    assert "huggingface.co/openai-community/gpt2-large" in err and not (nanogpt_home / "models").exists()
