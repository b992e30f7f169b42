"""Bad files crash nothing: broken datasets and checkpoints are listed with their reasons, refused with one
clear line by the CLI, and never send a run outside runs/ (issue 8, items 5-8 and 10).

Each test damages real files the way a user or a failing disk would: copies, hand edits, truncation,
random bytes, a text file in a checkpoint's place.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pilot_helpers import wait_for
from textual.widgets import DataTable, Select

from core.common import paths
from core.dataset.format import DatasetError, DatasetInfo, list_datasets, load_dataset
from core.dataset.token_check import check_token_ids
from core.runs.events import Failed, Started
from core.runs.listing import list_checkpoints
from core.settings.presets import from_preset
from core.training.trainer import Trainer
from nanogpt_tui import listings
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.cli import main
from nanogpt_tui.screens.chat import ChatScreen
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.screens.train import TrainScreen


def copy_dataset(info: DatasetInfo, name: str, edit: Callable[[dict[str, Any]], None] | None = None,
                 raw: str | None = None) -> Path:
    """A copy of a dataset folder, its dataset.json edited by hand (or replaced by `raw`)."""
    folder = paths.datasets_dir() / name
    shutil.copytree(info.path, folder)
    if raw is not None:
        (folder / "dataset.json").write_text(raw)
    elif edit is not None:
        data = json.loads((folder / "dataset.json").read_text())
        edit(data)
        (folder / "dataset.json").write_text(json.dumps(data))
    return folder


def bad_datasets(info: DatasetInfo) -> dict[str, str]:
    """Broken copies of `info` in the data dir, each with a piece of the reason it must be listed with."""
    copy_dataset(info, "copied")  # fine: a dataset of its own, named by its folder
    copy_dataset(info, "text-count", lambda d: d.update(train_tokens="abc"))
    copy_dataset(info, "nested", raw="[" * 100_000 + "]" * 100_000)
    copy_dataset(info, "float-vocab", lambda d: d.update(vocab_size=1.5))
    copy_dataset(info, "bad name")
    return {
        "text-count": "train_tokens = 'abc', not a whole number",
        "nested": "nested too deeply",
        "float-vocab": "vocab_size = 1.5, not a whole number",
        "bad name": "bad dataset name 'bad name'",
    }


def test_every_bad_dataset_is_a_row_with_its_reason(char_dataset: DatasetInfo) -> None:
    reasons = bad_datasets(char_dataset)
    for listing in (list_datasets(), listings.datasets()[1]):
        good = {item.name: item for item in listing if isinstance(item, DatasetInfo)}
        broken = {folder.name: error for folder, error in (item for item in listing if isinstance(item, tuple))}
        # Keyed by folder: the copy is a dataset of its own, though its dataset.json names the original.
        assert set(good) == {char_dataset.name, "copied"}
        assert good["copied"].path == paths.datasets_dir() / "copied"
        assert set(broken) == set(reasons)
        for name, reason in reasons.items():
            assert reason in broken[name]


def test_a_name_inside_dataset_json_never_leads_outside_runs(char_dataset: DatasetInfo, tmp_path: Path) -> None:
    outside = tmp_path / "escaped"
    copy_dataset(char_dataset, "escape", lambda d: d.update(name=f"../../../{outside}"))
    assert load_dataset("escape").name == "escape"
    events: list[Any] = []
    config = from_preset("tiny", dataset="escape", max_iters=1, eval_interval=1, eval_iters=1, warmup_iters=0,
                         lr_decay_iters=1, device="cpu")
    Trainer(config, events.append).run()
    started = next(e for e in events if isinstance(e, Started))
    assert started.run_dir.parent == paths.runs_dir() and started.run_dir.name.startswith("escape-")
    assert not list(tmp_path.glob("escaped*"))


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "/abs", "a/b", "a b", "-x", 5, None])
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(paths.BadName):
        paths.check_name(name)
    if isinstance(name, str) and name:
        with pytest.raises(paths.BadName):
            paths.run_dir(name)


def damage(run: Path, name: str, mutate: Callable[[dict[str, Any]], None] | None = None, raw: bytes | None = None) -> Path:
    """A run folder holding a damaged copy of `run`'s ckpt.pt."""
    folder = paths.runs_dir() / name
    folder.mkdir()
    if raw is not None:
        (folder / "ckpt.pt").write_bytes(raw)
    else:
        ckpt = torch.load(run / "ckpt.pt", weights_only=True)
        mutate(ckpt)
        torch.save(ckpt, folder / "ckpt.pt")
    return folder


def shrink_first_attention(ckpt: dict[str, Any]) -> None:
    weight = ckpt["model"]["transformer.h.0.attn.c_attn.weight"]
    ckpt["model"]["transformer.h.0.attn.c_attn.weight"] = weight[:-1]


def test_corrupt_checkpoints_are_one_clear_line_everywhere(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = (tiny_run / "ckpt.pt").read_bytes()
    shape = tuple(torch.load(tiny_run / "ckpt.pt", weights_only=True)["model"]["transformer.h.0.attn.c_attn.weight"].shape)
    variants = {  # run name -> a piece of the message it must give
        "best-text": (damage(tiny_run, "best-text", lambda c: c.update(best_val_loss="abc")), "best_val_loss is 'abc'"),
        "iter-text": (damage(tiny_run, "iter-text", lambda c: c.update(iter_num="abc")), "iter_num is 'abc'"),
        "lr-text": (damage(tiny_run, "lr-text", lambda c: c["config"].update(learning_rate="abc")), "learning_rate is 'abc'"),
        "layers-text": (damage(tiny_run, "layers-text", lambda c: c["model_args"].update(n_layer="two")), "n_layer is 'two'"),
        "history": (damage(tiny_run, "history", lambda c: c.update(history={"steps": 3, "evals": []})), "history's steps"),
        "shape": (damage(tiny_run, "shape", shrink_first_attention),
                  f"transformer.h.0.attn.c_attn.weight has shape {(shape[0] - 1, shape[1])}, but its model_args need {shape}"),
        "text": (damage(tiny_run, "text", raw=b"hello, I am not a model\n" * 20), "is a text file, not a PyTorch checkpoint"),
        "empty": (damage(tiny_run, "empty", raw=b""), "is empty"),
        "truncated": (damage(tiny_run, "truncated", raw=whole[: len(whole) // 2]), "corrupt or truncated"),
        "random": (damage(tiny_run, "random", raw=os.urandom(4096)), "not a readable checkpoint"),
    }
    summaries = {s.name: s for s in list_checkpoints() if s.kind == "latest"}
    assert summaries[tiny_run.name].error is None
    for name, (_, reason) in variants.items():
        assert reason in (summaries[name].error or ""), name
    assert main(["checkpoints"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # (rich wraps lines at 80 columns here)
    for name, (_, reason) in variants.items():
        assert f"unreadable {name} (latest): ckpt.pt " in out and reason in out, name
    for name, (_, reason) in variants.items():
        for argv in (["sample", "--checkpoint", name, "--max-new-tokens", "3"],
                     ["eval", "--checkpoint", name, "--eval-iters", "1"],
                     ["train", "--resume", name]):
            assert main(argv) == 1, (name, argv)
            err = capsys.readouterr().err
            assert err.startswith("error:") and reason in " ".join(err.split()), (name, argv, err)
            assert "Traceback" not in err


def test_ids_beyond_the_vocabulary_are_refused_when_the_dataset_opens(char_dataset: DatasetInfo) -> None:
    ids = np.fromfile(char_dataset.path / "train.bin", dtype=np.uint16)
    ids[len(ids) // 2] = char_dataset.vocab_size + 7
    ids.tofile(char_dataset.path / "train.bin")
    message = f"train.bin holds token id {char_dataset.vocab_size + 7}, outside the vocabulary of {char_dataset.vocab_size}"
    with pytest.raises(DatasetError, match=message):
        check_token_ids(load_dataset(char_dataset.name))
    events: list[Any] = []
    config = from_preset("tiny", dataset=char_dataset.name, max_iters=100, device="cpu")
    Trainer(config, events.append).run()
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].iter == 0 and message in failed[0].message


def test_eval_finds_the_folder_a_run_trained_on_or_says_how(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An older checkpoint recorded the name inside dataset.json (a copy's says the original's): eval
    # falls back to the folder the run was trained from.
    ckpt = torch.load(tiny_run / "ckpt.pt", weights_only=True)
    ckpt["dataset"]["name"] = "the-original"
    torch.save(ckpt, tiny_run / "ckpt.pt")
    assert main(["eval", "--checkpoint", tiny_run.name, "--eval-iters", "1", "--batch-size", "2"]) == 0
    assert f"on {ckpt['config']['dataset']}:" in capsys.readouterr().out
    # Renamed since: neither name finds it, and the message says how to name it.
    os.rename(paths.datasets_dir() / ckpt["config"]["dataset"], paths.datasets_dir() / "renamed")
    assert main(["eval", "--checkpoint", tiny_run.name, "--eval-iters", "1"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot find the dataset this checkpoint was trained on" in err and "--dataset" in err
    assert main(["eval", "--checkpoint", tiny_run.name, "--eval-iters", "1", "--batch-size", "2", "--dataset", "renamed"]) == 0


async def test_the_app_starts_over_bad_datasets_and_runs(tiny_run: Path, char_dataset: DatasetInfo) -> None:
    reasons = bad_datasets(char_dataset)
    damage(tiny_run, "text", raw=b"not a model\n" * 10)
    damage(tiny_run, "iter-text", lambda c: c.update(iter_num="abc"))
    listings.clear()
    app = NanoGPTApp()
    async with app.run_test(size=(160, 44)) as pilot:
        await pilot.press("f2")  # it opens on Train (datasets exist), which lists them too: on to Data
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.datasets)
        table = app.screen.query_one("#data-table", DataTable)
        assert table.row_count == len(reasons) + 2
        rows = {str(key.value): [str(cell) for cell in table.get_row(key)] for key in table.rows}
        column = {str(c.label): i for i, c in enumerate(table.columns.values())}  # Problem comes after Name
        assert rows["copied"][column["Tokenizer"]] == "char"
        for name, reason in reasons.items():
            assert rows[name][column["Tokenizer"]] == "broken" and reason[:20] in rows[name][column["Problem"]], rows[name]

        await pilot.press("f3")  # the Train screen offers the datasets that load, and only those
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.datasets)
        assert set(app.screen.datasets) == {char_dataset.name, "copied"}
        assert app.screen.query_one("#dataset", Select).value in app.screen.datasets

        await pilot.press("f4")  # every run is a row; the broken ones say why
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and len(app.screen.summaries) == 4)
        ckpt_table = app.screen.query_one("#ckpt-table", DataTable)
        cells = {str(key.value): [str(cell) for cell in ckpt_table.get_row(key)] for key in ckpt_table.rows}
        assert "text file" in cells[str(paths.runs_dir() / "text" / "ckpt.pt")][-1]
        assert "iter_num is 'abc'" in cells[str(paths.runs_dir() / "iter-text" / "ckpt.pt")][-1]

        await pilot.press("f5")  # Chat opens the newest readable checkpoint: the broken ones are newer
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen.checkpoint is not None)
        assert app.screen.checkpoint.parent == tiny_run
