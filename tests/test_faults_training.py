"""Nothing lost while training: real signals and kills on real training processes, one writer per run,
a renamed run resumed in place, leftovers cleaned, a run too big for memory refused before allocating;
hostile files in a run folder never stop, hang or slow a run, and quitting the app never waits on a
blocked worker (issue 20)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from pilot_helpers import ROOT, WAIT, train_cli, wait_until
from safetensors.torch import save_file

from core.common import folder_lock, paths
from core.common.formatting import human_size
from core.runs import control
from core.runs.checkpoint import load_checkpoint
from core.runs.events import Event, Failed, Finished
from core.runs.listing import list_checkpoints
from core.settings import memory as train_memory
from core.settings.presets import from_preset
from core.training.process import TrainerProcess
from core.training.trainer import Trainer
from nanogpt_tui import listings
from nanogpt_tui.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks")

ENDLESS = ["--set", "max_iters=1000000", "--set", "eval_interval=1000000"]  # no eval saves: a stop must


def logged_steps(run_dir: Path) -> list[int]:
    """The iterations metrics.jsonl holds step records of (a line being written is skipped)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    steps = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "step":
            steps.append(record["iter"])
    return steps


# -- signals save the latest checkpoint -------------------------------------------------------------


@pytest.mark.parametrize("signum, times, gap", [(signal.SIGTERM, 1, 0), (signal.SIGHUP, 1, 0), (signal.SIGINT, 5, 0.02),
                                              (signal.SIGINT, None, 0.001)],
                         ids=["SIGTERM", "SIGHUP", "five-ctrl-c", "ctrl-c-until-it-ends"])
def test_a_stop_signal_saves_the_latest_checkpoint_then_ends_by_it(char_dataset: Any, signum: int, times: int | None,
                                                                   gap: float) -> None:
    run_dir = paths.runs_dir() / "sig"
    process = train_cli(char_dataset.name, "--name", "sig", *ENDLESS)
    wait_until(lambda: len(logged_steps(run_dir)) >= 5, process)
    # Quick Ctrl-Cs: the first stops, the others only wait for the save; the longest series goes on past the
    # save, while the outcome is printed and the process ends (a signal then must not cut that short).
    # (times None: Ctrl-Cs until the process has ended, however slow the machine)
    sent, deadline = 0, time.monotonic() + WAIT
    while (sent < times) if times else process.poll() is None:
        assert time.monotonic() < deadline, "the process did not end"
        process.send_signal(signum)  # (nothing once the process has ended)
        sent += 1
        time.sleep(gap)  # the pace of a user's Ctrl-Cs: part of what is tested, not a wait
    output = process.communicate(timeout=WAIT)[0].decode()
    assert process.returncode == -signum, output  # a shell shows 128 + signum: 143, 129, 130
    ckpt = load_checkpoint(run_dir / "ckpt.pt")
    assert ckpt["iter_num"] == max(logged_steps(run_dir)) + 1 >= 5, output  # every step logged is in it
    assert "Finished (stopped)" in output and "Traceback" not in output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_the_apps_training_process_saves_on_a_stop_signal(char_dataset: Any, signum: int) -> None:
    config = from_preset("tiny", dataset=char_dataset.name, device="cpu", run_name="app", max_iters=10**6, eval_interval=10**6)
    events: list[Event] = []
    process = TrainerProcess(config, events.append)
    worker = threading.Thread(target=process.run)
    worker.start()
    try:
        wait_until(lambda: process.iter_num >= 5)
        os.kill(process.pid, signum)
        worker.join(WAIT)
        assert not worker.is_alive(), "the training process kept going"
    finally:
        process.stop()
        worker.join(WAIT)
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped", events[-1]
    assert load_checkpoint(paths.runs_dir() / "app" / "ckpt.pt")["iter_num"] == process.iter_num


# -- one writer per run -----------------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_holders_pid(char_dataset: Any) -> None:
    run_dir = paths.runs_dir() / "live"
    first = train_cli(char_dataset.name, "--name", "live", "--set", "max_iters=1000000", "--set", "eval_interval=3")
    wait_until(lambda: (run_dir / "ckpt.pt").is_file(), first)
    assert folder_lock.holder(run_dir) == first.pid
    # Two more writers at once: a new run of the same name, and a resume of the live run.
    others = [train_cli(char_dataset.name, "--name", "live"), train_cli(char_dataset.name, "--resume", "live")]
    for other in others:
        output = " ".join(other.communicate(timeout=WAIT)[0].decode().split())  # as one line, however rich wrapped it
        assert other.returncode == 1, output
        assert f"run 'live' is in use: process {first.pid} is training it" in output
    assert first.poll() is None  # the first one trains on, untouched
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=WAIT)
    assert load_checkpoint(run_dir / "ckpt.pt")["iter_num"] == max(logged_steps(run_dir)) + 1
    assert folder_lock.holder(run_dir) is None


def test_a_run_lock_dies_with_its_process(tmp_path: Path) -> None:
    holder_code = f"from core.common.folder_lock import FolderLock; lock = FolderLock({str(tmp_path)!r}); lock.acquire(); print('ready', flush=True); input()"
    process = subprocess.Popen([sys.executable, "-c", holder_code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    assert folder_lock.in_use(tmp_path) and folder_lock.holder(tmp_path) == process.pid
    with pytest.raises(folder_lock.RunInUse, match=f"process {process.pid}"):
        folder_lock.FolderLock(tmp_path).acquire()
    process.kill()
    process.wait()
    assert folder_lock.holder(tmp_path) is None
    with folder_lock.FolderLock(tmp_path):
        assert folder_lock.holder(tmp_path) == os.getpid()


# -- kill -9 --------------------------------------------------------------------------------------


def test_kill_9_at_random_points_leaves_every_checkpoint_loadable(char_dataset: Any) -> None:
    rng = random.Random(8)
    run_dir = paths.runs_dir() / "k9"
    saved = 0
    for round_ in range(3):
        args = ("--name", "k9") if round_ == 0 else ("--resume", "k9")
        process = train_cli(char_dataset.name, *args, "--set", "max_iters=1000000", "--set", "eval_interval=2",
                            "--set", "eval_iters=1")
        target = len(logged_steps(run_dir)) + rng.randint(2, 8)
        wait_until(lambda t=target: len(logged_steps(run_dir)) >= t, process)
        time.sleep(rng.uniform(0, 0.2))  # a random point in the training to kill it at: part of what is tested
        process.kill()
        process.communicate(timeout=WAIT)
        for name in ("ckpt.pt", "best.pt"):
            if (run_dir / name).is_file():
                ckpt = load_checkpoint(run_dir / name)  # raises if the kill left a broken file
                assert ckpt["iter_num"] >= (saved if name == "ckpt.pt" else 0)
        saved = load_checkpoint(run_dir / "ckpt.pt")["iter_num"]
    assert [p.name for p in paths.runs_dir().iterdir()] == ["k9"]  # every resume wrote into the same folder
    assert all(not s.error for s in list_checkpoints())
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


# -- leftovers ------------------------------------------------------------------------------------


def test_leftovers_of_dead_writers_are_cleaned_and_a_run_without_checkpoint_listed(nanogpt_home: Path) -> None:
    runs = paths.runs_dir()
    for name in ("dead", "live"):
        (runs / name).mkdir()
        (runs / name / ".ckpt.pt.k3j4.tmp").write_bytes(b"half a checkpoint")
        (runs / name / "metrics.jsonl").write_text('{"type": "step", "iter": 0}\n')
    with folder_lock.FolderLock(runs / "live"):  # as a live trainer holds it (this process: the same lock)
        (runs / "live" / ".ckpt.pt.k3j4.tmp").write_bytes(b"being written")
        summaries = {s.name: s for s in list_checkpoints()}
        assert not (runs / "dead" / ".ckpt.pt.k3j4.tmp").exists()
        assert (runs / "live" / ".ckpt.pt.k3j4.tmp").exists()  # its owner is alive
        assert summaries["live"].kind == "none" and f"process {os.getpid()} is training it" in str(summaries["live"].error)
    assert summaries["dead"].kind == "none" and "train --name dead" in str(summaries["dead"].error)
    listings.checkpoint_files()  # the app's listing cleans too, now that no one owns the run
    assert not (runs / "live" / ".ckpt.pt.k3j4.tmp").exists()
    assert ("none" in {kind for _, kind in listings.checkpoint_files()})


def test_a_killed_prepare_leaves_nothing_the_next_one_keeps(
    small_text: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data.prepare import prepare

    spools = tmp_path / "tmp"
    spools.mkdir()
    env = {**os.environ, "TMPDIR": str(spools)}
    argv = [sys.executable, "-m", "nanogpt_tui.cli", "prepare", "-", "--name", "piped"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert process.stdin is not None
    process.stdin.write(small_text.read_bytes())  # the pipe stays open: it spools, waiting for more
    process.stdin.flush()
    wait_until(lambda: any(p.name.startswith("nanogpt-tui-stdin-") for p in spools.iterdir()), process)
    process.kill()
    process.wait()
    datasets = paths.datasets_dir()
    (datasets / ".gone.0f3a.tmp").mkdir()  # a staging folder of a killed preparation
    (datasets / ".busy.9c1e.tmp").mkdir()  # one a live preparation holds
    (datasets / ".young.51bd.tmp").mkdir()  # one made a moment ago, maybe not locked yet
    (datasets / ".kept.abcdefgh.old" / "data").mkdir(parents=True)  # a dataset moved aside, never replaced
    past = time.time() - 2 * folder_lock.ABANDON_AGE_S
    for folder in [*spools.iterdir(), *(datasets / name for name in (".gone.0f3a.tmp", ".busy.9c1e.tmp", ".kept.abcdefgh.old"))]:
        os.utime(folder, (past, past))
    monkeypatch.setattr("tempfile.tempdir", str(spools))
    with folder_lock.FolderLock(datasets / ".busy.9c1e.tmp"):
        os.utime(datasets / ".busy.9c1e.tmp", (past, past))
        prepare(str(small_text), name="next", block_size=8)
    assert list(spools.iterdir()) == []
    assert sorted(p.name for p in datasets.iterdir()) == [".busy.9c1e.tmp", ".young.51bd.tmp", "kept", "next"]


# -- a renamed run --------------------------------------------------------------------------------


def test_resuming_a_renamed_run_writes_into_its_folder(char_dataset: Any) -> None:
    runs = paths.runs_dir()
    args = ["train", "--dataset", char_dataset.name, "--preset", "tiny", "--device", "cpu", "--name", "orig",
            "--set", "max_iters=4", "--set", "eval_interval=2", "--set", "eval_iters=1"]
    assert main(args) == 0
    (runs / "orig").rename(runs / "renamed")
    assert main(["train", "--resume", "renamed", "--set", "max_iters=6"]) == 0
    assert not (runs / "orig").exists()
    assert load_checkpoint(runs / "renamed" / "ckpt.pt")["iter_num"] == 6
    assert sorted(p.name for p in runs.iterdir()) == ["renamed"]


# -- sizes, ranges and a full disk ------------------------------------------------------------------


def test_a_run_too_big_for_memory_is_refused_before_allocating(char_dataset: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was built")

    monkeypatch.setattr("core.training.setup.GPT", no_model)
    config = from_preset("cpu", dataset=char_dataset.name, device="cpu", n_embd=8192, n_layer=48, run_name="huge")
    events: list[Event] = []
    Trainer(config, events.append).run()
    assert isinstance(events[-1], Failed), events[-1]
    needed = human_size(train_memory.estimate(config, char_dataset.vocab_size).total)
    assert events[-1].message.startswith(f"this run needs ~{needed} on cpu (weights ")
    assert re.search(r"\), [0-9.]+ [GMK]iB available: .* or set force=true to try anyway$", events[-1].message)
    assert not (paths.runs_dir() / "huge").exists()


def test_force_trains_what_the_estimate_refuses(char_dataset: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.training.setup.available_system_memory", lambda: 1000)  # a machine with 1 kB free
    config = from_preset("tiny", dataset=char_dataset.name, device="cpu", max_iters=2, eval_interval=2, eval_iters=1)
    refused: list[Event] = []
    Trainer(config, refused.append).run()
    assert isinstance(refused[-1], Failed) and f"{human_size(1000)} available" in refused[-1].message
    forced: list[Event] = []
    Trainer(dataclasses.replace(config, force=True), forced.append).run()
    assert isinstance(forced[-1], Finished), forced[-1]


def test_a_block_size_that_cannot_fit_is_refused_up_front(
    small_text: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 7's bug 12: block_size=100000 on a text whose splits are both longer (Tiny Shakespeare) hung."""
    big = tmp_path / "big.txt"
    big.write_text(small_text.read_text() * 60)  # 1.2 MB: 120,000 val tokens
    assert main(["prepare", str(big), "--name", "big-char"]) == 0
    monkeypatch.setattr("core.training.setup.available_system_memory", lambda: 16 * 10**9)  # a 16 GB machine
    assert main(["train", "--dataset", "big-char", "--device", "cpu", "--set", "block_size=100000"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "this run needs ~" in err and f"{human_size(16 * 10**9)} available" in err
    assert list(paths.runs_dir().iterdir()) == []  # no run folder with only metrics.jsonl


@pytest.mark.parametrize("setting, message", [
    ("seed=1e30", "seed must be at most"),
    ("max_iters=1e30", "max_iters must be at most 1,000,000,000"),
    ("block_size=100000", "the train split has"),
])
def test_out_of_range_settings_are_one_clear_error(
    char_dataset: Any, capsys: pytest.CaptureFixture[str], setting: str, message: str
) -> None:
    assert main(["train", "--dataset", char_dataset.name, "--device", "cpu", "--set", setting]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(paths.runs_dir().iterdir()) == []  # no run folder left behind


def test_a_full_disk_while_saving_says_so_and_keeps_the_checkpoint(tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import io

    from core.runs.checkpoint import CheckpointError, save_checkpoint

    class FullDisk(io.RawIOBase):
        """A file whose disk fills after `room` bytes: the write call fails with ENOSPC, as write(2) does."""

        def __init__(self, fd: int, room: int) -> None:
            self.file, self.room = real_fdopen(fd, "wb", buffering=0), room

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
            return self.file.write(data)

        def close(self) -> None:
            self.file.close()
            super().close()

    path = tiny_run / "ckpt.pt"
    before = path.read_bytes()
    ckpt = load_checkpoint(path)
    real_fdopen = os.fdopen
    monkeypatch.setattr("core.runs.checkpoint.os.fdopen", lambda fd, mode: io.BufferedWriter(FullDisk(fd, 4096)))
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(path, ckpt)
    assert str(caught.value).startswith(f"no space left on device: could not save checkpoint ckpt.pt in {tiny_run} (")
    assert " free)" in str(caught.value)
    assert path.read_bytes() == before
    assert not [p for p in tiny_run.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_while_preparing_is_one_clear_error(
    char_dataset: Any, small_text: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("core.dataset.format.DatasetWriter.append", full)
    assert main(["prepare", str(small_text), "--name", "full"]) == 1
    err = capsys.readouterr().err
    assert "error: no space left on device: could not write dataset 'full' in" in err and "Traceback" not in err
    assert sorted(p.name for p in paths.datasets_dir().iterdir()) == [char_dataset.name]  # no staging left
    assert (paths.datasets_dir() / char_dataset.name / "train.bin").is_file()



def test_an_app_crash_exits_non_zero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from nanogpt_tui.app import NanoGPTApp

    class Crashing(NanoGPTApp):
        CSS_PATH = Path(sys.modules[NanoGPTApp.__module__].__file__).parent / NanoGPTApp.CSS_PATH

        def on_mount(self) -> None:
            raise RuntimeError("a bug")

        def run(self, **kwargs: Any) -> Any:
            return super().run(headless=True)

    monkeypatch.setattr("nanogpt_tui.app.NanoGPTApp", Crashing)
    assert main([]) == 1
    assert "a bug" in capsys.readouterr().err + capsys.readouterr().out


def test_a_writer_waiting_on_a_lock_whose_folder_is_removed_locks_the_new_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder_lock, "ACQUIRE_TRIES", 2000)  # the waiting one waits long enough on a busy machine
    run_dir = tmp_path / "new-run"
    first = folder_lock.FolderLock(run_dir)
    first.acquire()  # a trainer that made the folder, then fails its setup
    second = folder_lock.FolderLock(run_dir)
    refused = threading.Event()  # set once the second one has opened the old lock file and found it held
    read_pid = folder_lock._read_pid  # (what acquire does at each refused try)
    monkeypatch.setattr(folder_lock, "_read_pid", lambda file: refused.set() or read_pid(file))
    waiting = threading.Thread(target=second.acquire)  # another trainer of the same name, already waiting
    waiting.start()
    wait_until(refused.is_set)
    first.remove_folder()
    waiting.join(WAIT)
    # It holds the lock on the file that is there now, so a third writer is refused.
    assert folder_lock.holder(run_dir) == os.getpid()
    monkeypatch.setattr(folder_lock, "ACQUIRE_TRIES", 1)  # (refused at once, not after the long wait above)
    with pytest.raises(folder_lock.RunInUse):
        folder_lock.FolderLock(run_dir).acquire()
    second.release()


# -- hostile files in a run folder (issue 20): nothing there can stop, hang or slow a run ----------------------


class Output:
    """A process's output, read as it comes by a thread of its own (so a test can wait for a line)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.text = ""
        self.stream = process.stdout
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.stream is not None
        while chunk := self.stream.read1(4096):  # type: ignore[attr-defined]
            self.text += chunk.decode("utf-8", "replace")


def acks(run_dir: Path, request_id: str) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if '"ack"' in line and f'"{request_id}"' in line)


def test_hostile_control_files_never_stop_hang_or_slow_a_run(char_dataset: Any, tmp_path: Path) -> None:
    """Issue 20's reproductions 2-4 and 11 against a real `nanogpt-tui train`: control.json nested 60,000
    deep (RecursionError ended the run), a link to a FIFO (the trainer blocked, and a stop never
    finished), a FIFO, a link to /dev/zero (memory without bound), one id 500 times (as many acks)."""
    run_dir = paths.runs_dir() / "steered"
    process = train_cli(char_dataset.name, "--name", "steered", *ENDLESS)
    output = Output(process)
    try:
        wait_until(lambda: len(logged_steps(run_dir)) >= 3, process)
        path = run_dir / "control.json"
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        variants = [("deep", "nested too deeply"), ("fifo-link", "is a symbolic link"), ("fifo", "is a FIFO"),
                    ("zero-link", "is a symbolic link")]  # (each warning differs from the one before)
        for kind, warning in variants:
            seen = output.text.count(warning)
            if os.path.lexists(path):
                path.unlink()
            if kind == "deep":
                path.write_text("[" * 60_000)
            elif kind == "fifo":
                os.mkfifo(path)
            else:
                path.symlink_to(fifo if kind == "fifo-link" else Path("/dev/zero"))
            wait_until(lambda w=warning, n=seen: output.text.count(w) > n, process)  # the trainer looked at it
            steps = len(logged_steps(run_dir))
            wait_until(lambda n=steps: len(logged_steps(run_dir)) > n + 2, process)  # and trains on
        path.unlink()
        path.write_text(json.dumps({"requests": [{"id": "same", "request": "sample_now"}] * 500}))
        wait_until(lambda: acks(run_dir, "same") >= 1, process)
        request_id = control.send(run_dir, control.Request.SAVE_NOW)  # a controller's request after all that
        wait_until(lambda: acks(run_dir, request_id) == 1, process)
        assert acks(run_dir, "same") == 1
        process.send_signal(signal.SIGTERM)
        process.wait(WAIT)
        output.thread.join(WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGTERM, output.text[-3000:]
    assert "Finished (stopped)" in output.text and "Traceback" not in output.text
    assert load_checkpoint(run_dir / "ckpt.pt")["iter_num"] == max(logged_steps(run_dir)) + 1


def test_a_nested_metrics_line_does_not_stop_a_resume(tiny_run: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Reproduction 5: a 60 kB line nested 60,000 deep (under the line limit) failed every `train --resume`."""
    with open(tiny_run / "metrics.jsonl", "a") as file:
        file.write("[" * 60_000 + "\n")
    with caplog.at_level(logging.WARNING, logger="core.runs.metrics"):
        assert main(["train", "--resume", tiny_run.name, "--set", "max_iters=14"]) == 0
    assert "holds JSON nested too deeply" in caplog.text and "skipped" in caplog.text
    assert load_checkpoint(tiny_run / "ckpt.pt")["iter_num"] == 14
    assert "[[[" not in (tiny_run / "metrics.jsonl").read_text()


def gpt2_folder(folder: Path, **shape: int) -> Path:
    """A GPT-2 folder whose config.json says `shape` (its weights file holds one small tensor: nothing may read it)."""
    folder.mkdir()
    config = {"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 8, "vocab_size": 50257, "n_positions": 64}
    (folder / "config.json").write_text(json.dumps({**config, **shape}))
    save_file({"wte.weight": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    return folder


def test_init_from_checks_the_folders_shape_and_memory_before_building(char_dataset: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproduction 6: `n_layer: 100000` in config.json grew past 6 GiB in 40 s: the memory check ran on the
    preset's shape, and the model was built before its weights' shapes were compared."""
    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was built")

    monkeypatch.setattr("core.training.setup.GPT", no_model)
    monkeypatch.setattr("core.interop.gpt2_weights.GPT", no_model)
    monkeypatch.setattr("core.training.setup.available_system_memory", lambda: 16 * 10**9)  # a 16 GB machine
    settings = dict(dataset=char_dataset.name, device="cpu", block_size=32)
    cases = {
        "deep": ({"n_layer": 100_000}, "too large to build here: n_layer 100,000 (at most 4,096)"),
        "big": ({"n_layer": 48, "n_head": 32, "n_embd": 8192}, "this run needs ~"),
    }
    for name, (shape, message) in cases.items():
        folder = gpt2_folder(tmp_path / name, **shape)
        events: list[Event] = []
        Trainer(from_preset("tiny", init_from=str(folder), run_name=name, **settings), events.append).run()
        assert isinstance(events[-1], Failed) and message in events[-1].message, events[-1]
        assert not (paths.runs_dir() / name).exists()
    # The estimate is the folder's model's: 48 layers of 8192, GPT-2's vocabulary.
    config = from_preset("tiny", **settings)
    config = dataclasses.replace(config, n_layer=48, n_head=32, n_embd=8192, bias=True)
    assert f"~{human_size(train_memory.estimate(config, 50257).total)} on cpu" in events[-1].message


QUIT_WITH_A_BLOCKED_WORKER = """
import asyncio, sys, threading
from nanogpt_tui.app import NanoGPTApp

started = threading.Event()

def block() -> None:
    started.set()
    open(sys.argv[1], "rb")  # a FIFO no one writes to: blocked in the kernel, deaf to cancellation

async def main() -> None:
    app = NanoGPTApp()
    async with app.run_test() as pilot:
        app.run_worker(block, thread=True, group="blocked")
        await asyncio.to_thread(started.wait)
        await pilot.press("ctrl+q")
    print("quit", flush=True)

asyncio.run(main())  # (then asyncio and Python wait for the executor's threads, as at the end of `nanogpt-tui`)
"""


def test_quitting_never_waits_for_a_worker_blocked_in_the_kernel(tmp_path: Path) -> None:
    """Reproduction 8: after a worker blocked on a FIFO (Watch on a FIFO metrics.jsonl, Chat on a FIFO
    chat.json), ctrl+q blanked the screen and the process stayed until SIGTERM."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, "-c", QUIT_WITH_A_BLOCKED_WORKER, str(fifo)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = process.communicate(timeout=WAIT)[0].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0].decode()
        pytest.fail(f"the app never ended: {output[-2000:]}")
    assert process.returncode == 0 and "quit" in output, output[-2000:]
