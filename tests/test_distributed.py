"""Distributed training on torchrun (core.training.distributed): two gloo processes on the CPU.

The end-to-end tests start real torchrun jobs of `nanogpt-tui train` (a few seconds each, tiny model).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pilot_helpers import wait_until

from core.dataset.batches import get_batch
from core.runs.checkpoint import load_checkpoint, load_model
from core.runs.events import Failed
from core.settings.presets import from_preset
from core.settings.train_config import ConfigError, TrainConfig
from core.training.distributed import Distributed, DistributedError, from_env
from core.training.evaluation import evaluate
from core.training.trainer import Trainer
from nanogpt_tui.cli import main
from nanogpt_tui.cli.train import first_cause

REPO = Path(__file__).resolve().parents[1]
# The same run for both sides of the comparison; only the batch split differs.
# eval_iters 3: the 2 ranks share out 3 eval batches unevenly.
SETTINGS = dict(max_iters=8, eval_interval=4, eval_iters=3, warmup_iters=2, lr_decay_iters=8, log_interval=1,
                dropout=0.0, device="cpu")


def test_from_env_reads_torchrun_variables() -> None:
    assert from_env({}) == Distributed()
    place = from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"})
    assert (place.rank, place.local_rank, place.world_size, place.local_world_size) == (3, 1, 4, 2)
    assert place.enabled and not place.is_main
    with pytest.raises(DistributedError, match="torchrun"):
        from_env({"RANK": "0"})
    with pytest.raises(DistributedError, match="RANK 2"):
        from_env({"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})


def test_gradient_accumulation_must_split_evenly() -> None:
    assert TrainConfig(dataset="d", gradient_accumulation_steps=4).problems(world_size=2) == []
    problems = dict(TrainConfig(dataset="d", gradient_accumulation_steps=3).problems(world_size=2))
    assert "multiple of the number of processes (2)" in problems["gradient_accumulation_steps"]
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        TrainConfig(dataset="d", gradient_accumulation_steps=1).validate(world_size=4)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "small-char", "--set", "gradient_accumulation_steps=3"], "gradient_accumulation_steps (3) must be a multiple"),
    (["--dataset", "nope", "--set", "gradient_accumulation_steps=2"], "no dataset called 'nope'"),
    (["--dataset", "small-char", "--set", "gradient_accumulation_steps=2", "--device", "mps"], "cannot be used by a torchrun job"),
])
def test_nproc_says_once_what_every_process_would_refuse(char_dataset, args: list[str], message: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--nproc", "2", *args]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error:") and message in err and err.count(message) == 1


def test_ranks_rows_make_up_the_single_process_batch() -> None:
    data = torch.arange(1000).numpy()
    whole_x, whole_y = get_batch(data, 8, 6, torch.Generator().manual_seed(5), torch.device("cpu"))
    for rank in range(3):
        x, y = get_batch(data, 8, 2, torch.Generator().manual_seed(5), torch.device("cpu"), rank, 3)
        assert torch.equal(x, whole_x[rank::3]) and torch.equal(y, whole_y[rank::3])


def torchrun(base: Path, *train_args: str, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    """A torchrun job of `nanogpt-tui train` where rank R has the data dir base/rankR, so what each wrote shows."""
    command = ("NANOGPT_TUI_HOME=\"$BASE/rank$RANK\" exec \"$PYTHON\" -m nanogpt_tui.cli train \"$@\"")
    env = {**os.environ, "BASE": str(base), "PYTHON": sys.executable}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "--no-python",
         "sh", "-c", command, "sh", *train_args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )


def curve(run_dir: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float, float]]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [(r["iter"], r["loss"]) for r in records if r["type"] == "step"]
    evals = [(r["iter"], r["train_loss"], r["val_loss"]) for r in records if r["type"] == "eval"]
    return steps, evals


def test_two_ranks_train_as_one_process_with_twice_the_batch_and_evaluate_as_one_process(char_dataset, tmp_path: Path) -> None:
    # One process, batch 8, two micro-batches an iteration.
    events: list = []
    Trainer(from_preset("tiny", dataset=char_dataset.name, run_name="single", batch_size=8,
                        gradient_accumulation_steps=2, **SETTINGS), events.append).run()
    assert not [e for e in events if isinstance(e, Failed)]
    single = curve(events[0].run_dir)

    # Two ranks of batch 4, four micro-batches an iteration (two each, gradients averaged after the second):
    # the same 2 x 8 rows. Trained to iteration 4, then resumed to 8.
    settings = [f"--set={k}={v}" for k, v in SETTINGS.items() if k != "max_iters"]
    args = ["--dataset", str(char_dataset.path), "--preset", "tiny", "--name", "ddp", "--set", "batch_size=4",
            "--set", "gradient_accumulation_steps=4", *settings]
    first = torchrun(tmp_path, *args, "--set", "max_iters=4")
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "rank0" / "runs" / "ddp"
    at_4 = tmp_path / "ckpt4.pt"
    shutil.copy(run_dir / "ckpt.pt", at_4)
    second = torchrun(tmp_path, "--resume", str(run_dir / "ckpt.pt"), "--set", "max_iters=8")
    assert second.returncode == 0, second.stderr
    assert "Resuming ddp" in second.stdout and "Finished (completed) at iteration 8" in second.stdout

    steps, evals = curve(run_dir)
    assert [i for i, _ in steps] == [i for i, _ in single[0]] == list(range(8))  # one record per step: rank 0's
    assert [e[0] for e in evals] == [e[0] for e in single[1]] == [0, 4, 8]
    for (_, ddp_loss), (_, one_loss) in zip(steps, single[0], strict=True):
        assert ddp_loss == pytest.approx(one_loss, rel=1e-5)
    assert steps[-1][1] < steps[0][1]  # it learned
    # The 2 ranks' evals (batch 4 each, the 3 batches shared out) are what 1 process measures on the
    # same weights with the same settings: eval does not depend on the number of processes.
    for iteration, path in ((4, at_4), (8, run_dir / "ckpt.pt")):
        model, _, ckpt = load_model(path)
        assert ckpt["iter_num"] == iteration
        one = evaluate(model, char_dataset, torch.device("cpu"), batch_size=4, eval_iters=SETTINGS["eval_iters"],
                       seed=ckpt["config"]["seed"] + 1)
        ddp = next(e for e in evals if e[0] == iteration)
        assert ddp[1] == pytest.approx(one["train"], abs=1e-5) and ddp[2] == pytest.approx(one["val"], abs=1e-5)
    ckpt = load_checkpoint(run_dir / "ckpt.pt")
    assert ckpt["iter_num"] == 8 and ckpt["config"]["gradient_accumulation_steps"] == 4
    # Rank 1 read the same files but wrote nothing.
    assert [p for p in (tmp_path / "rank1").rglob("*") if p.is_file()] == []
    assert first.stdout.count("saved latest checkpoint") == 1  # iteration 4 (the end: already saved)


def children_with_rank(parent: int, rank: int) -> list[int]:
    """The processes started by `parent` whose environment says RANK=rank (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                if f"RANK={rank}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def test_the_rank_killed_by_a_signal_is_named_as_the_cause() -> None:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    # Rank 1 was killed; rank 0 then exited with status 1, seen by torchrun in the same second.
    failures = {0: ProcessFailure(0, 100, 1, "<N/A>"), 1: ProcessFailure(1, 101, -signal.SIGKILL, "<N/A>")}
    failures[1].timestamp = failures[0].timestamp
    assert first_cause(ChildFailedError("train", failures))[0] == 1
    # With no signal among them, the earliest failure.
    failures = {0: ProcessFailure(0, 100, 1, "<N/A>"), 1: ProcessFailure(1, 101, 2, "<N/A>")}
    failures[1].timestamp = failures[0].timestamp - 1
    assert first_cause(ChildFailedError("train", failures))[0] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank's process in /proc")
def test_a_killed_rank_ends_the_run_with_a_clear_message(char_dataset, nanogpt_home: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "nanogpt_tui.cli", "train", "--nproc", "2", "--dataset", char_dataset.name,
         "--preset", "tiny", "--name", "doomed", "--set", "max_iters=1000000", "--set", "eval_interval=5",
         "--set", "eval_iters=1", "--set", "gradient_accumulation_steps=2", "--device", "cpu"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        saved = nanogpt_home / "runs" / "doomed" / "ckpt.pt"
        wait_until(saved.exists, launcher)
        rank1 = children_with_rank(launcher.pid, 1)
        assert len(rank1) == 1
        os.kill(rank1[0], signal.SIGKILL)
        out, err = launcher.communicate(timeout=120)  # ends by itself: no rank waits forever for the dead one
    finally:
        launcher.kill()
    assert launcher.returncode == 1
    err = " ".join(err.split())  # (rich wraps long lines)
    assert "error: distributed training failed: rank 1" in err and "killed by SIGKILL" in err
    assert load_checkpoint(saved)["iter_num"] >= 5  # what was saved before is kept


def test_a_stop_signal_to_nproc_stops_every_rank_which_saves_then_it_ends_by_that_signal(char_dataset, nanogpt_home: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "nanogpt_tui.cli", "train", "--nproc", "2", "--dataset", char_dataset.name,
         "--preset", "tiny", "--name", "stopped", "--set", "max_iters=1000000", "--set", "eval_interval=1000000",
         "--set", "gradient_accumulation_steps=2", "--device", "cpu"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    run_dir = nanogpt_home / "runs" / "stopped"
    try:
        metrics = run_dir / "metrics.jsonl"
        wait_until(lambda: metrics.is_file() and metrics.read_text().count('"step"') >= 5, launcher)
        launcher.send_signal(signal.SIGTERM)  # `kill`, as a cluster's scheduler does
        out, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode == -signal.SIGTERM, err  # a shell shows 143
    assert "Finished (stopped)" in out and "Stopped by signal SIGTERM" in err
    steps, _ = curve(run_dir)
    assert load_checkpoint(run_dir / "ckpt.pt")["iter_num"] == steps[-1][0] + 1  # every logged step is in it
