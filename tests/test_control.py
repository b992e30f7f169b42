"""Watching and steering a run from outside its process: metrics.jsonl read as it grows (core.runs.watch),
requests through control.json (core.runs.control) to a real `nanogpt-tui train` subprocess."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pilot_helpers import WAIT, train_cli, wait_until

from core.common import paths
from core.runs import control, metrics
from core.runs.control import Ack, Session
from core.runs.events import CheckpointSaved, Eval, Failed, Finished, Paused, Sample, Started, Step, Unpaused
from core.runs.watch import MetricsTail, Reset, RunWatcher, WatchError, resolve_run, run_activity


def test_tail_reads_growth_waits_for_partial_lines_and_restarts_after_truncation(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == ([], False)  # no file yet
    with open(path, "w") as file:
        file.write('{"a": 1}\n{"a": 2}\n{"a": ')  # the last line is being written
    assert tail.read() == ([{"a": 1}, {"a": 2}], False)
    assert tail.read() == ([], False)
    with open(path, "a") as file:
        file.write('3}\nnot json\n[1]\n{"a": 4}\n')  # a broken line and a non-record are skipped
    assert tail.read() == ([{"a": 3}, {"a": 4}], False)
    # Truncated and rewritten in place (shorter): read again from the start.
    path.write_text('{"b": 1}\n')
    assert tail.read() == ([{"b": 1}], True)
    # Replaced by another file (a resume's trim): a new inode, even when longer.
    replacement = tmp_path / "new.jsonl"
    replacement.write_text('{"c": 1}\n{"c": 2}\n{"c": 3}\n')
    os.replace(replacement, path)
    assert tail.read() == ([{"c": 1}, {"c": 2}, {"c": 3}], True)


def test_tail_reads_a_long_file_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(1000)))
    tail = MetricsTail(path)
    seen: list[int] = []
    reads = 0
    while True:
        records, _ = tail.read(limit=1000)
        seen += [r["i"] for r in records]
        reads += 1
        if not tail.more:
            break
    assert seen == list(range(1000)) and reads >= path.stat().st_size // 1000


def test_every_recorded_event_reads_back_as_itself(tmp_path: Path) -> None:
    events = [
        Step(3, 2.5, 1e-3, math.inf, 1234.5, 12.0, 768, 4.25),
        Eval(4, 2.4, 2.6, 2.6, 0.5),
        Sample(4, "ROMEO:\nhi"),
        CheckpointSaved(4, Path("/elsewhere/run/ckpt.pt"), "latest"),
        Paused(5), Unpaused(5), Finished(6, "stopped"),
        Failed(6, "diverged", "nan", details="Traceback ..."),
    ]
    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as file:
        for event in events:
            metrics.record_event(file, event)
        metrics.write_record(file, {"type": "step", "iter": "three"})  # malformed: no event
    watcher = RunWatcher(tmp_path)
    back = watcher.poll()
    assert len(back) == len(events)
    step = back[0]
    assert isinstance(step, Step) and math.isnan(step.grad_norm)  # inf is written as null
    assert back[1:3] == events[1:3] and back[4:7] == events[4:7]
    assert back[3] == CheckpointSaved(4, tmp_path / "ckpt.pt", "latest")  # the watcher's view of the folder
    assert back[7] == Failed(6, "diverged", "nan")  # the traceback stays in the trainer's log
    # Rewritten shorter (a resume trimmed it): what was read is to be forgotten, then the file is read again.
    with open(path, "w") as file:
        metrics.record_event(file, events[1])
    assert watcher.poll() == [Reset(), events[1]]


def test_resolve_run_takes_a_name_or_a_folder(tmp_path: Path) -> None:
    run = paths.runs_dir() / "some-run"
    run.mkdir(parents=True)
    with pytest.raises(WatchError, match="no metrics.jsonl"):
        resolve_run("some-run")
    (run / metrics.METRICS_FILE).write_text("")
    assert resolve_run("some-run") == run
    assert resolve_run(str(run)) == run
    assert resolve_run(str(run / metrics.METRICS_FILE)) == run
    with pytest.raises(WatchError):
        resolve_run(str(tmp_path / "nowhere"))


def test_send_refuses_unknown_requests_and_unwritable_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown request"):
        control.send(tmp_path, "explode")
    with pytest.raises(control.ControlError, match="cannot write"):
        control.send(tmp_path / "missing", control.Request.PAUSE)


class Follower:
    """Collects a run's events with a RunWatcher, as the Watch screen's worker does."""

    def __init__(self, run_dir: Path) -> None:
        self.watcher = RunWatcher(run_dir)
        self.events: list[Any] = []
        self.seen = 0  # events before this one have been looked at by `until`

    def until(self, condition: Any, process: subprocess.Popen[bytes]) -> Any:
        """The next event (after the last one `until` returned) that satisfies `condition`, polling for more."""
        found: list[Any] = []

        def seen() -> bool:
            while True:  # all the file holds now, read in chunks
                for i in range(self.seen, len(self.events)):
                    if condition(self.events[i]):
                        self.seen = i + 1
                        found.append(self.events[i])
                        return True
                new = self.watcher.poll()
                self.events += new
                if not new and not self.watcher.tail.more:
                    return False

        wait_until(seen, process)
        return found[0]

    def ack(self, request_id: str, process: subprocess.Popen[bytes]) -> Ack:
        return self.until(lambda e: isinstance(e, Ack) and e.id == request_id, process)


def test_a_cli_run_is_steered_through_its_control_file(char_dataset: Any) -> None:
    run_dir = paths.runs_dir() / "steered"
    run_dir.mkdir(parents=True)
    # A request left from an earlier session must not reach this one.
    stale = control.send(run_dir, control.Request.STOP)
    process = train_cli(char_dataset.name, "--name", "steered", "--set", "max_iters=100000", "--set", "eval_interval=100000",
                          "--set", "eval_iters=2", "--set", "log_interval=5", "--set", "sample_tokens=20")
    try:
        follow = Follower(run_dir)
        session = follow.until(lambda e: isinstance(e, Session), process)
        assert session.pid == process.pid
        started = follow.until(lambda e: isinstance(e, Started), process)
        assert started.max_iters == 100000 and started.config.dataset == char_dataset.name
        follow.until(lambda e: isinstance(e, Step) and e.iter >= 10, process)  # the stale stop was ignored
        assert run_activity(run_dir, session).live is True

        paused = follow.ack(control.send(run_dir, control.Request.PAUSE), process)
        pause = follow.until(lambda e: isinstance(e, Paused), process)
        assert paused.error is None and pause.iter >= paused.iter
        # While paused: save and sample at the paused iteration, and no step in between.
        follow.ack(control.send(run_dir, control.Request.SAVE_NOW), process)
        saved = follow.until(lambda e: isinstance(e, CheckpointSaved), process)
        follow.ack(control.send(run_dir, control.Request.SAMPLE_NOW), process)
        sample = follow.until(lambda e: isinstance(e, Sample), process)
        assert saved.iter == sample.iter == pause.iter and saved.path == run_dir / "ckpt.pt"
        import torch

        assert torch.load(saved.path, weights_only=True)["iter_num"] == pause.iter
        assert sample.text
        assert not [e for e in follow.events if isinstance(e, Step) and e.iter >= pause.iter]

        # A request the trainer does not know is refused, not obeyed.
        (run_dir / control.CONTROL_FILE).write_text(json.dumps({"requests": [{"id": "odd", "request": "explode"}]}))
        assert follow.ack("odd", process).error == "unknown request 'explode'"

        follow.ack(control.send(run_dir, control.Request.UNPAUSE), process)
        follow.until(lambda e: isinstance(e, Unpaused), process)
        follow.until(lambda e: isinstance(e, Step) and e.iter > pause.iter, process)

        follow.ack(control.send(run_dir, control.Request.STOP), process)
        finished = follow.until(lambda e: isinstance(e, Finished), process)
        assert process.wait(WAIT) == 0
        assert finished.reason == "stopped"
        assert torch.load(run_dir / "ckpt.pt", weights_only=True)["iter_num"] == finished.iter
        assert not any(isinstance(e, Ack) and e.id == stale for e in follow.events)
        assert run_activity(run_dir, session).live is False  # its process has ended
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_run_whose_lock_is_held_is_live_however_old_its_metrics(tmp_path: Path) -> None:
    from core.common.folder_lock import FolderLock
    from core.runs.watch import run_activity
    run = tmp_path / "quiet"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    hour_ago = time.time() - 3600
    os.utime(run / "metrics.jsonl", (hour_ago, hour_ago))  # e.g. a long eval, or a slow first step
    assert run_activity(run).live is False
    lock = FolderLock(run)
    lock.acquire()
    try:
        assert run_activity(run).live is True
    finally:
        lock.release()
    assert run_activity(run).live is False


def test_control_json_is_readable_by_a_trainer_of_another_user(tmp_path: Path) -> None:
    # A run on a shared folder, steered from another account: the file must not keep mkstemp's 0600.
    control.send(tmp_path, control.Request.PAUSE)
    assert stat.S_IMODE((tmp_path / control.CONTROL_FILE).stat().st_mode) == 0o644
