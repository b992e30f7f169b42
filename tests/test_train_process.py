"""TrainerProcess: the Trainer in a child process, as the app runs it; killed processes included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from pilot_helpers import WAIT, wait_until

from core.common import paths
from core.runs.checkpoint import load_checkpoint
from core.runs.events import CheckpointSaved, DeviceReading, Event, Failed, Finished, Paused, Sample, Started, Step, Unpaused
from core.settings.presets import from_preset
from core.settings.train_config import TrainConfig
from core.training.process import TrainerProcess
from core.training.trainer import Trainer


def tiny(dataset: str, **overrides: Any) -> TrainConfig:
    return from_preset("tiny", dataset=dataset, device="cpu", **{"max_iters": 30, "eval_interval": 10, **overrides})


def test_the_child_reports_what_the_trainer_in_process_reports(char_dataset: Any) -> None:
    here: list[Event] = []
    Trainer(tiny(char_dataset.name, run_name="here"), here.append).run()
    there: list[Event] = []
    process = TrainerProcess(tiny(char_dataset.name, run_name="there"), there.append)
    process.run()
    def kinds(events: list[Event]) -> list[type]:  # (device readings come by the clock, not by the step)
        return [type(e) for e in events if not isinstance(e, DeviceReading)]

    assert kinds(there) == kinds(here) and any(isinstance(e, DeviceReading) for e in there)
    # The same seed, settings and data: the same losses, bit for bit.
    assert [e.loss for e in there if isinstance(e, Step)] == [e.loss for e in here if isinstance(e, Step)]
    assert isinstance(there[0], Started) and there[0].run_dir == paths.runs_dir() / "there"
    assert isinstance(there[-1], Finished) and there[-1].reason == "completed"
    assert process.run_dir == there[0].run_dir and process.iter_num == 30
    assert load_checkpoint(process.run_dir / "ckpt.pt")["iter_num"] == 30
    assert process.returncode == 0  # ended as a finished run ends: no abort at exit while requests were read


def test_requests_reach_the_child(char_dataset: Any) -> None:
    events: list[Event] = []
    process: TrainerProcess

    def on_event(event: Event) -> None:
        events.append(event)
        # Requests from the thread that relays events, as the app's UI thread would send them.
        if isinstance(event, Step) and event.iter == 2:
            process.pause()
        elif isinstance(event, Paused):
            assert process.paused
            process.save_now()
            process.sample_now()
        elif isinstance(event, Sample):
            process.unpause()
        elif isinstance(event, Unpaused):
            process.stop()

    process = TrainerProcess(tiny(char_dataset.name, max_iters=100000, sample_tokens=5), on_event)
    process.run()
    kinds = [type(e) for e in events]
    assert kinds.index(Paused) < kinds.index(CheckpointSaved) < kinds.index(Sample) < kinds.index(Unpaused)
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped"
    assert not process.paused


def test_cancel_stops_the_child_with_a_checkpoint(char_dataset: Any) -> None:
    cancel = threading.Event()
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, Step) and event.iter == 3:
            cancel.set()

    process = TrainerProcess(tiny(char_dataset.name, max_iters=100000, eval_interval=100000), on_event, cancel=cancel)
    process.run()
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped"
    assert load_checkpoint(process.run_dir / "ckpt.pt")["iter_num"] == events[-1].iter >= 4


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no scheduling priorities here")
def test_the_child_trains_at_a_lower_priority_than_the_app(char_dataset: Any) -> None:
    from core.training.process import CHILD_NICENESS

    seen: list[int] = []
    process: TrainerProcess

    def on_event(event: Event) -> None:
        if isinstance(event, Step) and not seen:
            assert process.pid is not None
            seen.append(os.getpriority(os.PRIO_PROCESS, process.pid))
            process.stop()

    process = TrainerProcess(tiny(char_dataset.name, max_iters=100000), on_event)
    process.run()
    assert seen == [min(19, os.getpriority(os.PRIO_PROCESS, 0) + CHILD_NICENESS)]


def test_bad_settings_fail_in_the_child_with_the_trainers_message(char_dataset: Any) -> None:
    events: list[Event] = []
    TrainerProcess(tiny(char_dataset.name, n_embd=30, n_head=4), events.append).run()
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "n_embd (30) must be a multiple of n_head (4)" in events[0].message


def test_a_killed_child_is_reported_and_its_checkpoint_kept(char_dataset: Any) -> None:
    events: list[Event] = []
    process = TrainerProcess(tiny(char_dataset.name, max_iters=100000, eval_interval=5), events.append)
    thread = threading.Thread(target=process.run)
    thread.start()
    wait_until(lambda: any(isinstance(e, CheckpointSaved) for e in events) and process.pid is not None)
    os.kill(process.pid, signal.SIGKILL)
    thread.join(WAIT)
    assert not thread.is_alive()
    failed = events[-1]
    assert isinstance(failed, Failed) and "killed by signal 9" in failed.message
    assert str(process.run_dir) in failed.message
    assert load_checkpoint(process.run_dir / "ckpt.pt")["iter_num"] >= 5  # the last save is whole


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_the_child_saves_and_stops_when_its_parent_is_killed(char_dataset: Any, tmp_path: Path) -> None:
    """A real parent process (as the app would be) runs a TrainerProcess and is killed with SIGKILL."""
    ready = tmp_path / "ready"
    parent = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from core.settings.presets import from_preset
        from core.runs.events import Step
        from core.training.process import TrainerProcess

        def on_event(event):
            if isinstance(event, Step) and event.iter == 5:
                Path({str(ready)!r}).write_text(str(process.pid))

        config = from_preset("tiny", dataset={char_dataset.name!r}, device="cpu", run_name="orphan",
                             max_iters=100000, eval_interval=100000)
        process = TrainerProcess(config, on_event)
        process.run()
    """)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=root)
    try:
        wait_until(ready.exists)
        child_pid = int(ready.read_text())
        proc.kill()
        proc.wait(WAIT)
        checkpoint = paths.runs_dir() / "orphan" / "ckpt.pt"
        # The child reads EOF on its stdin, stops the trainer (which saves) and exits.
        wait_until(lambda: checkpoint.exists() and not _alive(child_pid))
        assert load_checkpoint(checkpoint)["iter_num"] > 5
    finally:
        proc.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its dead parent's reaper) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())
