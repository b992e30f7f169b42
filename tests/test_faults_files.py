"""Bad files crash nothing: broken datasets and checkpoints are listed with their reasons, refused with one
clear line by the CLI, and never send a run outside runs/ (issue 8, items 5-8 and 10). Hostile files in a
shared folder (issue 20) are refused or skipped without hanging, eating memory or writing through a link,
and a full or read-only disk is one line with nothing half-written.

Each test damages real files the way a user, a failing disk or an attacker would: copies, hand edits,
truncation, random bytes, a text file in a checkpoint's place, real symbolic links, FIFOs, /dev/zero,
JSON nested 60,000 deep, a real tmpfs filled up or mounted read-only (skipped where it cannot be mounted).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pilot_helpers import ROOT, WAIT, notices, wait_for
from safetensors.torch import save_file
from textual.widgets import DataTable, Select

from core.common import folder_lock, paths
from core.common.disk import DiskWriteError, write_text_atomic
from core.common.safe_files import UnsafeFile
from core.dataset.format import (
    DatasetError,
    DatasetInfo,
    dataset_stats,
    list_datasets,
    load_dataset,
)
from core.dataset.token_check import check_token_ids
from core.interop.gpt2_weights import load_hf_gpt2
from core.runs import control, metrics
from core.runs.checkpoint import CheckpointError, save_checkpoint
from core.runs.events import Failed, Started, Step
from core.runs.listing import list_checkpoints
from core.runs.metrics import Skipped
from core.runs.watch import FileProblem, RunWatcher
from core.settings.presets import from_preset
from core.training.trainer import Trainer
from nanogpt_tui import chat_store, listings
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
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.form.datasets)
        assert set(app.screen.form.datasets) == {char_dataset.name, "copied"}
        assert app.screen.query_one("#dataset", Select).value in app.screen.form.datasets

        await pilot.press("f4")  # every run is a row; the broken ones say why
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and len(app.screen.summaries) == 4)
        ckpt_table = app.screen.query_one("#ckpt-table", DataTable)
        cells = {str(key.value): [str(cell) for cell in ckpt_table.get_row(key)] for key in ckpt_table.rows}
        assert "text file" in cells[str(paths.runs_dir() / "text" / "ckpt.pt")][-1]
        assert "iter_num is 'abc'" in cells[str(paths.runs_dir() / "iter-text" / "ckpt.pt")][-1]

        await pilot.press("f5")  # Chat opens the newest readable checkpoint: the broken ones are newer
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen.checkpoint is not None)
        assert app.screen.checkpoint.parent == tiny_run


# -- hostile files in shared folders (issue 20): links, FIFOs, devices, deep JSON, huge files ---------------


def squash(text: str) -> str:
    """`text` without any whitespace: rich wraps a long path anywhere, even inside a name."""
    return "".join(text.split())


def finishes(work: Callable[[], Any], timeout: float = WAIT) -> Any:
    """`work()`'s result, run in a thread of its own: a test fails, rather than hangs, when it blocks."""
    done: list[Any] = []

    def run() -> None:
        try:
            done.append(("ok", work()))
        except BaseException as error:  # handed to the test
            done.append(("error", error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert done, f"{work} blocked for {timeout} s"
    kind, value = done[0]
    if kind == "error":
        raise value
    return value


def hostile(path: Path, kind: str, outside: Path) -> None:
    """Put a hostile `kind` of file at `path`: "link" (to `outside`, a regular file), "fifo", "fifo-link",
    "zero-link" (to /dev/zero), "folder", "deep" (JSON nested 60,000 deep, under every size limit but
    control.json's) or "deep-small" (1,000 deep)."""
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()
    if kind == "link":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "fifo-link":
        fifo = outside.parent / f"fifo-{path.name}"
        if not fifo.exists():
            os.mkfifo(fifo)
        path.symlink_to(fifo)
    elif kind == "zero-link":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text("[" * (60_000 if kind == "deep" else 1000))


HOSTILE = ["link", "fifo", "fifo-link", "zero-link", "folder"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_lock_file_is_refused_in_one_line_and_nothing_outside_changes(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("DATA\n")
    run = tmp_path / "run"
    run.mkdir()
    hostile(run / ".lock", kind, victim)
    with pytest.raises(UnsafeFile) as refused:
        finishes(folder_lock.FolderLock(run).acquire)
    message = str(refused.value)
    assert message.startswith(f"{run / '.lock'} is ") and "remove it and try again" in message and "\n" not in message
    assert finishes(lambda: folder_lock.holder(run)) is None and finishes(lambda: folder_lock.in_use(run)) is False
    assert victim.read_text() == "DATA\n"


def test_a_lock_symlink_makes_train_resume_refuse_and_leaves_its_target(tiny_run: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20's first reproduction: `.lock -> ~/victim` emptied the victim."""
    victim = tmp_path / "victim"
    victim.write_text("DATA\n")
    (tiny_run / ".lock").unlink()
    (tiny_run / ".lock").symlink_to(victim)
    assert main(["train", "--resume", tiny_run.name, "--set", "max_iters=14"]) == 1
    err = capsys.readouterr().err
    assert squash(f"{tiny_run / '.lock'} is a symbolic link: refused") in squash(err) and "Traceback" not in err
    assert victim.read_text() == "DATA\n"


class Steered:
    """A Steerable that records the requests it is passed."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.paused = False

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name not in ("pause", "unpause", "stop", "save_now", "sample_now"):
            raise AttributeError(name)
        return lambda: self.calls.append(name)


def serve(run: Path, steered: Steered) -> tuple[control.RunControl, io.StringIO]:
    log = io.StringIO()
    return control.RunControl(steered, run, log), log  # type: ignore[arg-type]


def poll_now(runner: control.RunControl) -> None:
    """One poll that looks at the file whatever the time since the last (the trainer polls every POLL_S)."""
    runner._checked = 0.0
    runner.poll(7)


@pytest.mark.parametrize("kind", [*HOSTILE, "deep", "deep-small"])
def test_a_hostile_control_file_is_ignored_with_one_warning(tmp_path: Path, kind: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    run.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"requests": [{"id": "x", "request": "stop"}]}))
    steered = Steered()
    runner, log = serve(run, steered)
    with caplog.at_level(logging.WARNING, logger="core.runs.control"):
        hostile(run / "control.json", kind, outside)
        for _ in range(3):  # the same problem is warned about once
            os.utime(run / "control.json", follow_symlinks=False)  # (a change: the file is read again)
            finishes(lambda: poll_now(runner))
    assert steered.calls == [] and log.getvalue() == ""  # nothing served, nothing acknowledged
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.runs.control"]
    assert len(warnings) == 1 and str(run / "control.json") in warnings[0] and "ignored" in warnings[0], warnings
    if kind == "folder":  # a controller cannot replace a folder: it says so
        with pytest.raises(control.ControlError, match="control.json: Is a directory"):
            control.send(run, control.Request.SAVE_NOW)
        return
    # A controller replaces the hostile file (never writing through it), and the trainer serves it.
    request_id = finishes(lambda: control.send(run, control.Request.SAVE_NOW))
    finishes(lambda: poll_now(runner))
    assert steered.calls == ["save_now"] and json.loads(log.getvalue())["id"] == request_id
    assert json.loads(outside.read_text())["requests"][0]["id"] == "x"  # a link's target is untouched


def test_a_control_file_linked_to_dev_zero_costs_nothing(tmp_path: Path) -> None:
    """read_text() of /dev/zero grew without limit (3 GiB in 4 s): a child process with 1 GiB of address
    space shows that neither the trainer's side nor a controller's reads it."""
    code = (
        "import io, resource, sys\nfrom pathlib import Path\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from core.runs import control\n"
        "run = Path(sys.argv[1]); (run / 'control.json').symlink_to('/dev/zero')\n"
        "class T:\n    paused = False\n    def __getattr__(self, name): return lambda: None\n"
        "runner = control.RunControl(T(), run, io.StringIO()); runner._checked = 0; runner.poll(1)\n"
        "control.send(run, control.Request.PAUSE)\nprint('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=WAIT)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
    assert not (tmp_path / "control.json").is_symlink()  # replaced by the controller's request


def test_each_request_id_is_served_and_acknowledged_once(tmp_path: Path) -> None:
    steered = Steered()
    runner, log = serve(tmp_path, steered)
    same = [{"id": "same", "request": "save_now"}] * 500  # ~20 kB: under the size limit
    many = [{"id": f"id{i}", "request": ["a", "list"]} for i in range(100)]
    for requests in (same, same + many):
        (tmp_path / "control.json").write_text(json.dumps({"requests": requests}))
        poll_now(runner)
    acks = [json.loads(line) for line in log.getvalue().splitlines()]
    assert steered.calls == ["save_now"]
    assert [a["id"] for a in acks] == ["same"] + [f"id{i}" for i in range(100 - control.KEPT_REQUESTS, 100)]
    assert acks[-1]["error"] == "unknown request \"['a', 'list']\""


def metrics_lines(path: Path) -> list[str]:
    records = [{"type": "step", "iter": it, "loss": 2.0, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_sec": 100.0,
                "iter_ms": 10.0, "tokens_seen": 64 * it, "elapsed_s": 0.1 * it} for it in range(6)]
    lines = [json.dumps(r) for r in records]
    lines[2:2] = ["[" * 60_000 + "]" * 60_000]  # 120 kB: over the line limit
    lines[4:4] = ["[" * 30_000]  # 30 kB, under it: RecursionError
    lines[6:6] = [json.dumps({"type": "step", "iter": 1e400, "loss": 1, "tokens_seen": 1, "elapsed_s": 1, "lr": 1})]
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_a_bad_metrics_line_is_skipped_and_counted_by_resume_watch_and_curves(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = metrics_lines(path)
    skipped = Skipped()
    curves = metrics.read_curves(tmp_path, skipped)
    assert curves is not None and [row[0] for row in curves["steps"]] == list(range(6))
    assert skipped.lines == 2 and str(skipped).startswith("line 3: longer than")
    events = RunWatcher(tmp_path).poll()
    assert [e.iter for e in events if isinstance(e, Step)] == list(range(6))
    problem = next(e for e in events if isinstance(e, FileProblem))
    assert problem.message == f"{path} line 3: longer than {metrics.MAX_LINE} bytes, not a record: skipped, and 1 more line that is not a record"
    with caplog.at_level(logging.WARNING, logger="core.runs.metrics"):
        assert metrics.trim(tmp_path, 4, None).lines == 2  # a resume at iteration 4
    assert path.read_text().splitlines() == [lines[0], lines[1], lines[3], lines[5]]  # iterations 0-3
    assert f"{path} line 3: longer than" in caplog.text and "1 more line" in caplog.text


@pytest.mark.parametrize("kind", ["link", "fifo", "fifo-link", "zero-link"])
def test_a_hostile_metrics_file_is_refused_by_every_reader(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"type": "step", "iter": 0, "loss": 1.0}) + "\n")
    run = tmp_path / "run"
    run.mkdir()
    hostile(run / "metrics.jsonl", kind, outside)
    assert finishes(lambda: metrics.read_curves(run)) is None
    events = finishes(RunWatcher(run).poll)
    assert len(events) == 1 and isinstance(events[0], FileProblem) and "refused" in events[0].message
    finishes(lambda: metrics.trim(run, 0, None))  # a resume replaces it, never writes through it
    assert (run / "metrics.jsonl").is_file() and not (run / "metrics.jsonl").is_symlink()
    assert outside.read_text().count("step") == 1


def test_hostile_chat_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    settings = chat_store.settings_path()
    settings.write_text(json.dumps({"stop": ["x" * 2**21]}))  # 2 MB of stop string (the issue's: 100 MB)
    with pytest.raises(chat_store.StoreError, match=f"{settings} is 2.0 MiB, more than"):
        finishes(chat_store.read_settings)
    settings.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(chat_store.StoreError, match="nested too deeply"):
        finishes(chat_store.read_settings)
    hostile(settings, "fifo", tmp_path)
    with pytest.raises(chat_store.StoreError, match="FIFO"):
        finishes(chat_store.read_settings)
    sessions = paths.sessions_dir()
    (sessions / "deep.json").write_text('{"turns": ' + "[" * 5000 + "]" * 5000 + "}")
    os.mkfifo(sessions / "pipe.json")
    (sessions / "link.json").symlink_to(settings)
    listed = finishes(chat_store.list_sessions)
    errors = {s.path.name: s.error for s in listed}
    assert "nested too deeply" in errors["deep.json"] and "FIFO" in errors["pipe.json"]
    assert "symbolic link" in errors["link.json"]


def test_a_session_files_id_never_leads_outside_the_sessions_folder(tmp_path: Path) -> None:
    session = chat_store.Session("20261207-120000-abcd", None, "2026-12-07T12:00:00", [("Hi", [(1, "a", 0.5)])])
    path = chat_store.save_session(session, chat_store.new_version())
    data = json.loads(path.read_text())
    data["id"] = f"../../../{tmp_path.name}/escaped"
    path.write_text(json.dumps(data))
    reopened = chat_store.load_session(path)
    assert reopened.id == path.stem
    assert chat_store.save_session(reopened, chat_store.new_version()) == path
    assert not list(tmp_path.glob("escaped*")) and not list(tmp_path.parent.glob("escaped*"))


def test_a_hostile_dataset_folder_is_listed_with_its_reason(char_dataset: DatasetInfo, tmp_path: Path) -> None:
    outside = tmp_path / "info.json"
    outside.write_text((char_dataset.path / "dataset.json").read_text())
    for kind in ("link", "fifo", "zero-link", "folder"):
        folder = copy_dataset(char_dataset, f"hostile-{kind}")
        hostile(folder / "dataset.json", kind, outside)
    hostile(copy_dataset(char_dataset, "counts") / "token_counts.npy", "fifo", outside)
    broken = {folder.name: error for folder, error in (i for i in finishes(list_datasets) if isinstance(i, tuple))}
    assert set(broken) == {f"hostile-{kind}" for kind in ("link", "fifo", "zero-link", "folder")}
    assert "symbolic link" in broken["hostile-link"] and "FIFO" in broken["hostile-fifo"]
    with pytest.raises(DatasetError, match="token_counts.npy is a FIFO"):
        finishes(lambda: dataset_stats(load_dataset("counts")))


def test_export_into_an_empty_folder_name_is_refused(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", tiny_run.name, "--format", "nanogpt", "--out", ""]) == 1
    assert "no folder to export into" in capsys.readouterr().err
    assert not Path("ckpt.pt").exists()


# -- GPT-2 folders: config.json and weights checked before anything is built ---------------------------------


def hf_folder(folder: Path, config: dict[str, Any] | str, dtype: torch.dtype = torch.float32) -> Path:
    """A GPT-2 folder of 1 layer, 2 heads, 8 wide (or `config` as given), its weights in `dtype`."""
    folder.mkdir(parents=True)
    shape = {"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 8, "vocab_size": 11, "n_positions": 16}
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps({**shape, **config}))
    C = 8
    tensors = {"wte.weight": torch.zeros(11, C), "wpe.weight": torch.zeros(16, C), "ln_f.weight": torch.ones(C),
               "ln_f.bias": torch.zeros(C), "h.0.ln_1.weight": torch.ones(C), "h.0.ln_1.bias": torch.zeros(C),
               "h.0.attn.c_attn.weight": torch.zeros(C, 3 * C), "h.0.attn.c_attn.bias": torch.zeros(3 * C),
               "h.0.attn.c_proj.weight": torch.zeros(C, C), "h.0.attn.c_proj.bias": torch.zeros(C),
               "h.0.ln_2.weight": torch.ones(C), "h.0.ln_2.bias": torch.zeros(C),
               "h.0.mlp.c_fc.weight": torch.zeros(C, 4 * C), "h.0.mlp.c_fc.bias": torch.zeros(4 * C),
               "h.0.mlp.c_proj.weight": torch.zeros(4 * C, C), "h.0.mlp.c_proj.bias": torch.zeros(C)}
    tensors["h.0.attn.c_attn.weight"] = tensors["h.0.attn.c_attn.weight"].to(dtype)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("config, message", [
    ({"n_layer": 100_000}, "too large to build here: n_layer 100,000 (at most 4,096)"),
    ({"layer_norm_epsilon": math.nan}, "layer_norm_epsilon nan"),
    ({"n_embd": 2**21, "n_head": 1}, "n_embd 2,097,152 (at most 1,048,576)"),
    ("[" * 100_000 + "]" * 100_000, "config.json holds JSON nested too deeply"),
    ('{"n_layer": 1' + "0" * 5000 + "}", "config.json is not JSON this program can read"),
])
def test_a_hostile_gpt2_config_is_refused_naming_the_file(tmp_path: Path, config: Any, message: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.interop.gpt2_weights.GPT", no_model)
    folder = hf_folder(tmp_path / "hf", config)
    with pytest.raises(CheckpointError, match=re.escape(message)) as refused:
        load_hf_gpt2(folder)
    assert str(folder) in str(refused.value)


def no_model(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a model was built")


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float8_e4m3fn])
def test_gpt2_weights_that_are_not_floats_are_refused(tmp_path: Path, dtype: torch.dtype) -> None:
    folder = hf_folder(tmp_path / "hf", {}, dtype)
    with pytest.raises(CheckpointError, match="weight 'h.0.attn.c_attn.weight' is .*, not a float type"):
        load_hf_gpt2(folder)
    assert load_hf_gpt2(hf_folder(tmp_path / "ok", {}, torch.float16)).config.n_embd == 8


# -- full and read-only disks --------------------------------------------------------------------------------


@contextmanager
def small_disk(folder: Path, size: str = "256k", read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (read-only if asked); the test skips where it cannot mount one."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs (a full or read-only disk) needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Fill the disk holding `folder` to its last byte."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as file:
        while True:
            file.write(b"\0" * 4096)


WRITERS: dict[str, Callable[[Path], Any]] = {
    "checkpoint": lambda run: save_checkpoint(run / "ckpt.pt", {"model": torch.zeros(100_000)}),
    "control.json": lambda run: control.send(run, control.Request.PAUSE),
    "metrics trim": lambda run: metrics.trim(run, 10**6, None),
    "chat settings": lambda run: chat_store.write_settings({"temperature": 0.5}, chat_store.new_version()),
    "any file": lambda run: write_text_atomic(run / "notes.txt", "x" * 100_000),
}
ERRORS = (CheckpointError, control.ControlError, DiskWriteError)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_a_full_or_read_only_disk_is_one_line_and_leaves_the_old_file(tmp_path: Path, nanogpt_home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      writer: str, disk: str) -> None:
    home = tmp_path / "small"
    with small_disk(home):
        monkeypatch.setenv(paths.HOME_ENV, str(home))
        run = paths.runs_dir() / "run"
        run.mkdir()
        old = {name: f"old {name}\n" for name in ("ckpt.pt", "control.json", "notes.txt")}
        old["metrics.jsonl"] = json.dumps({"type": "step", "iter": 1}) + "\n"  # a record, kept by the trim
        for name, text in old.items():
            (run / name).write_text(text)
        paths.config_dir().joinpath("chat.json").write_text("old chat.json\n")
        old["chat.json"] = "old chat.json\n"
        if disk == "full":
            fill(home)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        with pytest.raises(ERRORS) as failed:
            WRITERS[writer](run)
        message = str(failed.value)
        expected = "no space left on device: could not " if disk == "full" else "read-only file system: could not "
        assert message.startswith(expected) and "\n" not in message, message
        if disk == "full":
            assert "free)" in message
        for folder in (run, paths.config_dir()):
            for path in folder.iterdir():
                assert not path.name.endswith(".tmp"), path  # nothing half-written
                if path.name in old:
                    assert path.read_text() == old[path.name]


def test_prepare_on_a_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], small_text: Path) -> None:
    """numpy's tofile lost the errno ("OSError: 1003854 requested and 765952 written"): a traceback."""
    big = tmp_path / "big.txt"
    big.write_text(small_text.read_text() * 20)  # 400 kB: 800 kB of ids, on a 512 kB disk
    with small_disk(tmp_path / "small", "512k") as home:
        monkeypatch.setenv(paths.HOME_ENV, str(home))
        assert main(["prepare", str(big), "--name", "big"]) == 1
        err = capsys.readouterr().err
        assert squash(f"error: no space left on device: could not write dataset 'big' in {home} (") in squash(err)
        assert "Traceback" not in err
        assert [p.name for p in paths.datasets_dir().iterdir()] == []  # no staging folder left


async def test_the_app_starts_on_a_read_only_home_and_says_what_it_cannot_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], small_text: Path,
) -> None:
    with small_disk(tmp_path / "ro", read_only=True) as home:
        monkeypatch.setenv(paths.HOME_ENV, str(home))
        app = NanoGPTApp()
        async with app.run_test(size=(140, 44)) as pilot:
            await wait_for(pilot, lambda: any(n.title == "Read-only data folder" for n in notices(app)))
            await wait_for(pilot, lambda: isinstance(app.screen, DataScreen) and app.screen.datasets is not None)
            await pilot.press("f4")
            await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen))
        message = next(str(n.message) for n in notices(app) if n.title == "Read-only data folder")
        assert "read-only file system" in message and "nothing can be prepared, trained" in message
        assert main(["prepare", str(small_text), "--name", "x"]) == 1
        err = capsys.readouterr().err
        assert squash(f"error: read-only file system: could not write dataset 'x' in {home}") in squash(err)
        assert "Traceback" not in err
