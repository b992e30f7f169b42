"""A run's metrics out to TensorBoard (read back by TensorBoard's own reader) and CSV, and live to wandb."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from pilot_helpers import wait_until

from core.interop.tracking import TrackingError, export_metrics
from core.runs.events import Failed
from core.settings.presets import from_preset
from core.settings.train_config import TrainConfig
from core.training.trainer import Trainer
from nanogpt_tui.cli import main


def logged(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def test_csv_has_one_row_per_logged_step_and_per_eval(tiny_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", tiny_run.name, "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    assert "steps.csv" in capsys.readouterr().out
    with open(tmp_path / "csv" / "steps.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    steps = logged(tiny_run, "step")
    assert len(rows) == len(steps) == 12  # the tiny run logs every one of its 12 steps
    for row, step in zip(rows, steps, strict=True):
        assert int(row["iter"]) == step["iter"] and float(row["loss"]) == step["loss"]
        assert float(row["lr"]) == step["lr"] and float(row["tokens_per_sec"]) == step["tokens_per_sec"]
    with open(tmp_path / "csv" / "evals.csv", newline="", encoding="utf-8") as f:
        evals = list(csv.DictReader(f))
    assert [(int(r["iter"]), float(r["val_loss"])) for r in evals] == [(e["iter"], e["val_loss"]) for e in logged(tiny_run, "eval")]
    # Files already there stay unless asked.
    assert main(["export", tiny_run.name, "--format", "csv", "--out", str(tmp_path / "csv")]) == 1
    assert "already holds steps.csv, evals.csv: pass --overwrite" in " ".join(capsys.readouterr().err.split())
    assert main(["export", tiny_run.name, "--format", "csv", "--out", str(tmp_path / "csv"), "--overwrite"]) == 0


def test_tensorboard_export_is_read_back_by_tensorboards_reader(tiny_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    files = export_metrics(str(tiny_run), "tensorboard", out)
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents.")
    reader = EventAccumulator(str(out), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    steps, evals = logged(tiny_run, "step"), logged(tiny_run, "eval")
    read = {tag: [(s.step, s.value) for s in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}
    assert set(read) == {"train/loss", "train/lr", "train/tokens_per_sec", "train/grad_norm", "val/loss", "eval/train_loss"}
    assert [i for i, _ in read["train/loss"]] == [s["iter"] for s in steps]
    for key, tag in (("loss", "train/loss"), ("lr", "train/lr"), ("tokens_per_sec", "train/tokens_per_sec")):
        assert [v for _, v in read[tag]] == pytest.approx([s[key] for s in steps], rel=1e-6)  # stored as float32
    assert read["val/loss"] == [(e["iter"], pytest.approx(e["val_loss"], rel=1e-6)) for e in evals]
    text = reader.Tensors("settings/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| n_layer | 2 |" in text and "| dataset | small-char |" in text
    # Exported again with --overwrite: still one event file, so TensorBoard shows each point once.
    assert len(export_metrics(tiny_run.name, "tensorboard", out, overwrite=True)) == 1
    assert len(list(out.iterdir())) == 1


def test_bad_exports_are_clear_errors(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrackingError, match="'nope' is not a run folder"):
        export_metrics("nope", "csv", tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrackingError, match="is a file: export into a folder"):
        export_metrics(tiny_run.name, "csv", tmp_path / "file")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as when it is not installed
    with pytest.raises(TrackingError, match=r"needs the tensorboard package: pip install tensorboard"):
        export_metrics(tiny_run.name, "tensorboard", tmp_path / "tb")


def test_wandb_settings_are_checked_with_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = dict(TrainConfig(dataset="d", wandb_project="a/b").problems())
    assert "wandb_project must be 1 to 128 characters" in problems["wandb_project"]
    monkeypatch.setitem(sys.modules, "wandb", None)  # as when it is not installed
    problems = dict(TrainConfig(dataset="d", wandb_log=True).problems())
    assert problems["wandb_log"] == "wandb_log needs the wandb package: pip install wandb (or pip install 'nanogpt-tui[wandb]')"
    assert "wandb_log" not in dict(TrainConfig(dataset="d").problems())


def test_wandb_logs_a_run_offline_without_an_account(char_dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    events: list = []
    config = from_preset("tiny", dataset=char_dataset.name, run_name="tracked", max_iters=6, eval_interval=3,
                         eval_iters=1, warmup_iters=1, device="cpu", wandb_log=True, wandb_project="tests")
    Trainer(config, events.append).run()
    assert not [e for e in events if isinstance(e, Failed)]
    run_dir = events[0].run_dir
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))  # the log `wandb sync` uploads
    # The run's log holds each record's values as JSON text (wandb's history items): every step's loss and
    # every eval's val loss were logged, under the names TensorBoard's export uses too.
    # (wandb's own process may still be writing its last records when finish() returns: wait for them.)
    log = next(offline[0].glob("*.wandb"))
    values = [repr(s["loss"]) for s in logged(run_dir, "step")] + [repr(e["val_loss"]) for e in logged(run_dir, "eval")]
    wait_until(lambda: all(v.encode() in log.read_bytes() for v in values))
    assert b"train/loss" in log.read_bytes() and b"val/loss" in log.read_bytes()
