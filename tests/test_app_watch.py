"""Pilot tests of the Watch screen: a run that a real `nanogpt-tui train` subprocess writes, followed and
steered from the app; quitting the app leaves that run training."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pilot_helpers import WAIT, notices, train_cli, wait_for, wait_until
from textual.widgets import DataTable, Input, RichLog, Static

from core.common import paths
from core.runs import watch as run_watch
from core.runs.checkpoint import load_checkpoint
from core.runs.metrics import METRICS_FILE
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.screens.train_messages import Phase
from nanogpt_tui.screens.watch import WatchScreen
from nanogpt_tui.widgets.dialogs import TextModal


@pytest.fixture
def training(char_dataset: Any) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A long run trained by another process, once it has a checkpoint (so the Checkpoints screen lists it)."""
    process = train_cli(char_dataset.name, "--name", "elsewhere", "--set", "max_iters=100000", "--set", "eval_interval=5",
                          "--set", "eval_iters=1", "--set", "log_interval=1")
    run_dir = paths.runs_dir() / "elsewhere"
    try:
        wait_until((run_dir / "ckpt.pt").is_file, process)
        yield process, run_dir
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def status(app: NanoGPTApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


def iteration(app: NanoGPTApp) -> int:
    found = re.search(r"at iteration (\d+)", status(app))
    return int(found.group(1)) if found else -1


async def watch_from_checkpoints(app: NanoGPTApp, pilot: Any, run_dir: Path) -> WatchScreen:
    await pilot.press("f4")
    key = str(run_dir / "ckpt.pt")
    await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and key in app.screen.summaries, WAIT)
    table = app.screen.query_one("#ckpt-table", DataTable)
    table.move_cursor(row=table.get_row_index(key))
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen))
    return app.screen


async def test_watch_a_run_trained_elsewhere_then_pause_and_stop_it(training: Any) -> None:
    process, run_dir = training
    app = NanoGPTApp()
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await watch_from_checkpoints(app, pilot, run_dir)
        await wait_for(pilot, lambda: f"pid {process.pid}" in status(app) and iteration(app) > 0, WAIT)
        first = iteration(app)
        await wait_for(pilot, lambda: iteration(app) > first, WAIT)  # live: the count goes on
        # The trainer's device readings come through metrics.jsonl too (its RSS: it trains on the CPU).
        assert re.fullmatch(r"[\d.]+ [KMG]iB", screen.monitor.figures["memory"])
        assert re.fullmatch(r"[\d.]+ [KMG]iB", screen.monitor.figures["peak memory"])

        await pilot.press("p")
        await wait_for(pilot, lambda: status(app).startswith("Paused at iteration"), WAIT)
        paused_at = iteration(app)
        events = screen.query_one("#log", RichLog)
        assert any("the trainer took pause" in line.text for line in events.lines)
        assert any(f"started by pid {process.pid} on " in line.text for line in events.lines)  # who trains it
        assert screen.check_action("send", ("unpause",)) and not screen.check_action("send", ("pause",))

        await pilot.press("s")
        assert process.wait(WAIT) == 0  # the trainer stopped, saving its checkpoint
        await wait_for(pilot, lambda: status(app).startswith("Finished"), WAIT)
        assert iteration(app) == paused_at
        assert not screen.check_action("send", ("stop",))  # nothing left to steer

        await pilot.press("escape")
        assert isinstance(app.screen, CheckpointsScreen)


async def test_quitting_the_app_leaves_a_watched_run_training(training: Any) -> None:
    process, run_dir = training
    app = NanoGPTApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await watch_from_checkpoints(app, pilot, run_dir)
        await wait_for(pilot, lambda: iteration(app) > 0, WAIT)
        await pilot.press("ctrl+q")
    assert process.poll() is None
    size = (run_dir / METRICS_FILE).stat().st_size
    wait_until(lambda: (run_dir / METRICS_FILE).stat().st_size > size, process)  # still training: records keep coming


async def test_a_trainer_killed_mid_run_shows_as_interrupted_with_nothing_to_steer(training: Any) -> None:
    process, run_dir = training
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await watch_from_checkpoints(app, pilot, run_dir)
        await wait_for(pilot, lambda: status(app).startswith("Training at iteration") and iteration(app) > 0, WAIT)
        assert screen.state is Phase.RUNNING
        process.kill()
        process.wait()
        await wait_for(pilot, lambda: status(app).startswith("The trainer ended without finishing"), WAIT)
        assert screen.state is Phase.INTERRUPTED and screen.query_one("#status").has_class("state-interrupted")
        for key in ("p", "s"):
            await pilot.press(key)
        await pilot.pause()
        assert not any("asking the trainer" in line.text for line in screen.query_one("#log", RichLog).lines)


async def test_a_folder_without_metrics_cannot_be_watched(tiny_run: Path) -> None:
    (tiny_run / METRICS_FILE).unlink()  # as in a nanoGPT out_dir: nothing records its progress
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and app.screen.summaries)
        await pilot.press("w")
        await wait_for(pilot, lambda: any(n.title == "Cannot watch this run" for n in notices(app)))
        assert isinstance(app.screen, CheckpointsScreen)
        assert any("no metrics.jsonl" in n.message for n in notices(app))


async def test_the_palette_offers_the_run_written_last_found_off_the_ui_thread(tiny_run: Path, monkeypatch) -> None:
    older = shutil.copytree(tiny_run, paths.runs_dir() / "older")
    an_hour_ago = time.time() - 3600
    os.utime(older / METRICS_FILE, (an_hour_ago, an_hour_ago))
    scanned_in: list[str] = []  # the threads that scanned the runs
    real_latest = run_watch.latest_run

    def latest_run():
        scanned_in.append(threading.current_thread().name)
        return real_latest()

    monkeypatch.setattr(run_watch, "latest_run", latest_run)
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query("CommandInput"))
        await pilot.press(*"Watch a run")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextModal))
        assert app.screen.query_one("#answer", Input).value == tiny_run.name
        assert len(scanned_in) == 1 and scanned_in[0] != threading.main_thread().name

        # The run has finished: the screen says so and offers no key to steer it.
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen))
        screen = app.screen
        trained = load_checkpoint(tiny_run / "ckpt.pt")["iter_num"]
        await wait_for(pilot, lambda: status(app).startswith(f"Finished at iteration {trained}"))
        assert screen.state is Phase.FINISHED
        for key in ("p", "s", "u"):
            await pilot.press(key)
        await pilot.pause()
        assert not any("asking the trainer" in line.text for line in screen.query_one("#log", RichLog).lines)
