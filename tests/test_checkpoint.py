"""Checkpoints: atomic save, safe load, nanoGPT import, lookup and listing."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from core.common import paths
from core.model.gpt import GPT, GPTConfig
from core.runs import checkpoint
from core.runs import listing as checkpoint_list
from core.runs.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.tokens.tokenizers import CharTokenizer

CHARS = list("\n abcdefgh")
MODEL_ARGS = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, bias=False, vocab_size=len(CHARS), dropout=0.0)


def make_ckpt(seed: int = 0) -> dict[str, Any]:
    """A small checkpoint in our format, made without the trainer."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**MODEL_ARGS))
    return {
        "model": model.state_dict(),
        "optimizer": model.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu").state_dict(),
        "model_args": dict(MODEL_ARGS),
        "iter_num": 7,
        "best_val_loss": 1.5,
        "config": {"dataset": "letters"},
        "tokenizer": {"kind": "char", "chars": CHARS},
        "dataset": {"name": "letters"},
        "history": {"steps": [[0, 2.3, 64, 0.1]], "evals": [[0, 2.3, 2.4]]},
        "rng": {"torch": torch.get_rng_state(), "batch": torch.Generator().manual_seed(1).get_state(), "batch_used": 3},
        "scaler": None,
        "version": checkpoint.VERSION,
    }


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_round_trip(tmp_path: Path) -> None:
    ckpt = make_ckpt()
    path = tmp_path / "run" / "ckpt.pt"
    save_checkpoint(path, ckpt)
    loaded = load_checkpoint(path)
    assert same_weights(loaded["model"], ckpt["model"])
    assert loaded["tokenizer"] == ckpt["tokenizer"] and loaded["history"] == ckpt["history"]
    assert torch.equal(loaded["rng"]["batch"], ckpt["rng"]["batch"]) and loaded["rng"]["batch_used"] == 3
    assert os.listdir(path.parent) == ["ckpt.pt"]  # no temp file left behind


@pytest.mark.parametrize(("rng", "message"), [
    ({"batch_used": -1}, r"its rng batch_used is -1 \(a int\), not a whole number"),
    ({"batch_used": "3"}, r"its rng batch_used is '3' \(a str\), not a whole number"),
    ({"batch": [1, 2]}, "its rng holds something other than generator states"),
])
def test_an_rng_entry_of_the_wrong_kind_is_refused(tmp_path: Path, rng: dict[str, Any], message: str) -> None:
    ckpt = make_ckpt()
    ckpt["rng"] |= rng
    save_checkpoint(tmp_path / "ckpt.pt", ckpt)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "ckpt.pt")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, make_ckpt())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    path.write_bytes(os.urandom(5000))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_not_a_gpt_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a GPT checkpoint"):
        load_checkpoint(path)


class RunsCode:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt.pt"
    ckpt = make_ckpt()
    ckpt["config"] = {"dataset": RunsCode(marker)}
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="refused to load .*could run code"):
        load_checkpoint(path)
    assert not marker.exists()
    # the file really would have run the command: a plain unpickle proves it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_failed_save_leaves_the_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ckpt.pt"
    first = make_ckpt(seed=1)
    save_checkpoint(path, first)
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj: Any, file: Any) -> None:
        real_save(obj, file)
        file.seek(0)
        file.truncate(100)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(CheckpointError, match="could not save .*No space left"):
        save_checkpoint(path, make_ckpt(seed=2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert same_weights(load_checkpoint(path)["model"], first["model"])
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def nanogpt_ckpt() -> tuple[dict[str, Any], GPT]:
    """A checkpoint as nanoGPT's train.py writes it after torch.compile."""
    torch.manual_seed(3)
    model = GPT(GPTConfig(**MODEL_ARGS))
    state = {f"_orig_mod.{k}": v.clone() for k, v in model.state_dict().items()}
    ckpt = {
        "model": state,
        "optimizer": {},
        "model_args": dict(MODEL_ARGS),
        "iter_num": 250,
        "best_val_loss": torch.tensor(1.25),
        "config": {"dataset": "shakespeare_char", "out_dir": "out-shakespeare-char", "compile": True},
    }
    return ckpt, model


def write_meta(folder: Path) -> Path:
    folder.mkdir(parents=True)
    meta = {"vocab_size": len(CHARS), "itos": dict(enumerate(CHARS)), "stoi": {c: i for i, c in enumerate(CHARS)}}
    path = folder / "meta.pkl"
    path.write_bytes(pickle.dumps(meta))
    return path


def test_nanogpt_checkpoint_with_meta_beside_its_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, original = nanogpt_ckpt()
    out_dir = tmp_path / "out-shakespeare-char"
    out_dir.mkdir()
    torch.save(ckpt, out_dir / "ckpt.pt")
    write_meta(tmp_path / "data" / "shakespeare_char")
    monkeypatch.chdir(tmp_path)

    path = checkpoint.resolve_checkpoint(str(out_dir))
    assert path == out_dir / "ckpt.pt"
    model, tokenizer, loaded = checkpoint.load_model(path)
    assert isinstance(tokenizer, CharTokenizer) and tokenizer.chars == CHARS
    assert loaded["iter_num"] == 250 and loaded["best_val_loss"] == pytest.approx(1.25)
    assert loaded["version"] == 0
    assert not model.training
    idx = torch.tensor([[1, 2, 3, 4]])
    original.eval()
    assert torch.equal(model(idx)[0], original(idx)[0])


def test_nanogpt_checkpoint_meta_given_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no data/ folder here
    ckpt, _ = nanogpt_ckpt()
    path = tmp_path / "ckpt.pt"
    torch.save(ckpt, path)
    assert load_checkpoint(path)["tokenizer"] == {"kind": "tiktoken", "name": "gpt2"}
    meta = write_meta(tmp_path / "elsewhere")
    assert load_checkpoint(path, meta=str(meta))["tokenizer"] == {"kind": "char", "chars": CHARS}
    with pytest.raises(CheckpointError, match="meta file .* does not exist"):
        load_checkpoint(path, meta=str(tmp_path / "missing.pkl"))


def test_resolve_checkpoint(tmp_path: Path) -> None:
    run = paths.runs_dir() / "my-run"
    save_checkpoint(run / "ckpt.pt", make_ckpt())
    assert checkpoint.resolve_checkpoint("my-run") == run / "ckpt.pt"
    assert checkpoint.resolve_checkpoint(str(run / "ckpt.pt")) == run / "ckpt.pt"
    assert checkpoint.resolve_checkpoint(str(run)) == run / "ckpt.pt"
    assert checkpoint.resolve_checkpoint(run) == run / "ckpt.pt"
    with pytest.raises(CheckpointError, match="no checkpoint called 'other'; tried:") as error:
        checkpoint.resolve_checkpoint("other")
    assert str(paths.runs_dir() / "other" / "ckpt.pt") in str(error.value)


def test_list_checkpoints_survives_a_corrupt_file() -> None:
    runs = paths.runs_dir()
    good = make_ckpt()
    save_checkpoint(runs / "a" / "ckpt.pt", good)
    save_checkpoint(runs / "a" / "best.pt", good)
    (runs / "b").mkdir()
    (runs / "b" / "ckpt.pt").write_bytes(b"not a checkpoint at all")
    (runs / "empty").mkdir()
    # torch files with a GPT checkpoint's keys but the wrong kinds of values in them
    (runs / "c").mkdir()
    torch.save({"model": [1, 2], "model_args": {}}, runs / "c" / "ckpt.pt")
    torch.save({"model": {"w": 1}, "model_args": {}}, runs / "c" / "best.pt")

    summaries = {(s.name, s.kind): s for s in checkpoint_list.list_checkpoints()}
    assert set(summaries) == {("a", "latest"), ("a", "best"), ("b", "latest"), ("c", "latest"), ("c", "best")}
    bad = summaries[("b", "latest")]
    assert bad.error and "is a text file, not a PyTorch checkpoint" in bad.error
    assert "'model' is a list, not a dict" in summaries[("c", "latest")].error
    assert "weight 'w' is not a tensor" in summaries[("c", "best")].error
    latest = summaries[("a", "latest")]
    assert latest.error is None
    assert (latest.dataset, latest.tokenizer, latest.iter_num, latest.best_val_loss) == ("letters", "char", 7, 1.5)
    assert latest.n_params == GPT(GPTConfig(**MODEL_ARGS)).get_num_params()
    assert latest.size_bytes == (runs / "a" / "ckpt.pt").stat().st_size
    assert checkpoint_list.list_checkpoints(runs / "nowhere") == []


def test_load_model_rejects_weights_that_do_not_fit(tmp_path: Path) -> None:
    ckpt = make_ckpt()
    ckpt["model_args"]["n_embd"] = 32
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, ckpt)
    # The message names the first weight that differs and both shapes (torch's own stops at a header line).
    wte = rf"weight transformer\.wte\.weight has shape \({len(CHARS)}, 16\), but its model_args need \({len(CHARS)}, 32\)"
    with pytest.raises(CheckpointError, match=wte):
        checkpoint.load_model(path)


def test_a_summary_keeps_the_settings_small_whatever_the_file_holds() -> None:
    ckpt = make_ckpt()
    ckpt["config"] = {
        "dataset": "letters", "learning_rate": 1e-3, "run_name": None, "compile": False,
        "out_dir": "x" * 100_000,  # a long text is cut
        "betas": list(range(100_000)),  # not a setting's kind of value: left out
        **{f"extra_{i}": i for i in range(10_000)},  # far more settings than any config has
    }
    path = paths.runs_dir() / "a" / "ckpt.pt"
    save_checkpoint(path, ckpt)
    summary = checkpoint_list.summarize(path, "latest")
    assert summary.error is None
    settings = summary.config
    assert {k: settings[k] for k in ("dataset", "learning_rate", "run_name", "compile")} == {
        "dataset": "letters", "learning_rate": 1e-3, "run_name": None, "compile": False}
    assert settings["out_dir"].startswith("xxx") and len(settings["out_dir"]) == checkpoint_list.TEXT_LIMIT
    assert "betas" not in settings and len(settings) == checkpoint_list.SETTINGS_LIMIT
    assert len(pickle.dumps(summary)) < 20_000


def test_a_nanogpt_out_dir_copied_anywhere_samples_with_the_meta_beside_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nanogpt_tui.cli import main

    ckpt, _ = nanogpt_ckpt()
    out_dir = tmp_path / "copied" / "out-shakespeare-char"
    write_meta(out_dir)  # as our nanoGPT export writes it
    torch.save(ckpt, out_dir / "ckpt.pt")
    elsewhere = tmp_path / "elsewhere"  # no data/shakespeare_char here, nor beside the out_dir
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["sample", "--checkpoint", str(out_dir), "--max-new-tokens", "40", "--seed", "1", "--device", "cpu"]
    assert main(args) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert len(text) >= 30 and set(text) <= set(CHARS)  # the character vocabulary, not GPT-2's BPE

    # Without it, the model is taken for GPT-2's (nanoGPT's rule) and the error says how to pass the vocabulary.
    (out_dir / "meta.pkl").unlink()
    assert main(args) == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "the tokenizer has 50257 tokens but the model only 10" in error
    assert "put that file beside ckpt.pt, or pass it with --meta FILE" in error


def test_train_resumes_a_nanogpt_char_checkpoint_with_its_meta(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.interop.gpt2_weights import export_checkpoint
    from nanogpt_tui.cli import main

    out_dir = tmp_path / "out"
    export_checkpoint(tiny_run.name, "nanogpt", out_dir)
    raw = torch.load(out_dir / "ckpt.pt", weights_only=True)
    del raw["tokenizer"]  # as nanoGPT's train.py saves it after a resume: the vocabulary is only in meta.pkl
    torch.save(raw, out_dir / "ckpt.pt")
    meta = tmp_path / "kept" / "meta.pkl"
    meta.parent.mkdir()
    (out_dir / "meta.pkl").rename(meta)
    resume = ["train", "--resume", str(out_dir), "--dataset", "small-char", "--name", "again", "--device", "cpu",
              "--set", f"max_iters={raw['iter_num'] + 2}"]

    assert main(resume) == 1  # taken for GPT-2's BPE: the message says how to give the vocabulary
    assert "pass it with --meta FILE" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--dataset", "small-char", "--meta", str(meta)]) == 1
    assert "use it with --resume" in " ".join(capsys.readouterr().err.split())
    assert main([*resume, "--meta", str(meta)]) == 0
    assert f"Finished (completed) at iteration {raw['iter_num'] + 2}" in capsys.readouterr().out
    assert load_checkpoint(paths.runs_dir() / "again" / "ckpt.pt")["tokenizer"]["kind"] == "char"
