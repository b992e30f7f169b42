"""Screens list datasets and checkpoints in workers, and a revisit with nothing changed reads nothing.

The listings are cached by the files' stats (`nanogpt_tui.listings`): these tests count the reads
a user's screen switches cause, and check that a change on disk is listed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pilot_helpers import wait_for
from textual.pilot import Pilot
from textual.widgets import DataTable, Select, SelectionList
from textual.worker import WorkerCancelled

from core.dataset import format as dataset_format
from core.runs import checkpoint
from core.runs import listing as checkpoint_list
from data.prepare import prepare
from nanogpt_tui import listings
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.checkpoints import CheckpointsScreen
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.screens.tokens import TokensScreen
from nanogpt_tui.screens.train import TrainScreen


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Patch `owner.name` to record each call's first argument (the list it returns)."""
    calls: list[Any] = []
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


async def settle(pilot: Pilot) -> None:
    """Let the screen's workers finish and their messages land (a worker a newer one replaced is done too)."""
    for worker in list(pilot.app.workers):
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()
    await pilot.pause()


def data_rows(app: NanoGPTApp) -> list[str]:
    table = app.screen.query_one("#data-table", DataTable)
    return [str(key.value) for key in table.rows]


def has_rows(app: NanoGPTApp, names: set[str]) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, DataScreen) and set(data_rows(app)) == names


async def test_data_screen_lists_in_a_worker_and_a_revisit_reads_nothing(
    char_dataset, small_text: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings.clear()
    reads = count_calls(monkeypatch, listings, "load_dataset")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")  # a dataset exists: the app opens on Train
        await wait_for(pilot, has_rows(app, {"small-char"}))
        await settle(pilot)
        assert reads == [dataset_format.paths.datasets_dir() / "small-char"]  # read once, by the listing worker
        table = app.screen.query_one("#data-table", DataTable)
        # Away and back, twice: nothing changed on disk, so nothing is read and the table is not rebuilt.
        for _ in range(2):
            await pilot.press("f3")
            await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
            await settle(pilot)
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, DataScreen))
            await settle(pilot)
        assert len(reads) == 1
        assert app.screen.query_one("#data-table", DataTable) is table and data_rows(app) == ["small-char"]

        # A dataset prepared elsewhere (the CLI, say) while another screen is shown: the folder changed.
        await pilot.press("f3")
        await settle(pilot)
        prepare(str(small_text), tokenizer="gpt2", name="small-gpt2", block_size=8)
        await pilot.press("f2")
        await wait_for(pilot, has_rows(app, {"small-char", "small-gpt2"}))
        # Only the new folder was read; the unchanged one came from the cache.
        assert [Path(p).name for p in reads] == ["small-char", "small-gpt2"]


async def test_train_screen_lists_datasets_in_a_worker(char_dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    listings.clear()
    reads = count_calls(monkeypatch, listings, "load_dataset")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen) and app.screen.form.datasets != {})
        screen = app.screen
        assert screen.query_one("#dataset", Select).value == "small-char"
        await settle(pilot)
        before = len(reads)
        await pilot.press("f2", "f3")
        await settle(pilot)
        assert len(reads) == before  # the Data and Train screens share the cached listing
        assert screen.query_one("#dataset", Select).value == "small-char"


async def test_checkpoints_revisit_reads_no_checkpoint_and_a_new_file_is_listed(
    tiny_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    listings.clear()
    summaries = count_calls(monkeypatch, checkpoint_list, "summarize")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, CheckpointsScreen)
        table = screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await settle(pilot)
        assert sorted(Path(p).name for p in summaries) == ["best.pt", "ckpt.pt"]
        # Through every other screen and back: the runs folder is unchanged, nothing is read again.
        await pilot.press("f2", "f3", "f5", "f6", "f4")
        await wait_for(pilot, lambda: app.screen is screen)
        await settle(pilot)
        assert len(summaries) == 2
        # Another run appears: only its files are read.
        shutil.copytree(tiny_run, tiny_run.parent / "copied-run")
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: table.row_count == 4)
        assert len(summaries) == 4 and all("copied-run" in str(p) for p in summaries[2:])


async def test_tokens_revisit_does_not_reread_the_checkpoint(tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listings.clear()
    loads = count_calls(monkeypatch, checkpoint, "load_checkpoint")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, TokensScreen)
        key = f"checkpoint:{tiny_run / 'ckpt.pt'}"
        choices = screen.query_one("#tokens-choices", SelectionList)
        await wait_for(pilot, lambda: any(choices.get_option_at_index(i).value == key for i in range(choices.option_count)))
        choices.select(key)  # the run's tokenizer as a panel: its checkpoint is read for it
        await wait_for(pilot, lambda: any(p.key == key and p.result is not None for p in screen.query("TokenPanel")))
        await settle(pilot)
        read = len(loads)
        assert read >= 1
        for _ in range(2):
            await pilot.press("f2")
            await settle(pilot)
            await pilot.press("f6")
            await wait_for(pilot, lambda: app.screen is screen)
            await settle(pilot)
        assert len(loads) == read  # shown again with the same files: no checkpoint is read
        assert key in choices.selected


def test_a_checkpoints_summary_is_the_listed_one_until_its_file_changes(tiny_run: Path) -> None:
    from core.runs.checkpoint import load_checkpoint, save_checkpoint

    listings.clear()
    _, listed = listings.checkpoints()
    path = tiny_run / "ckpt.pt"
    summary = next(s for s in listed if s.path == path)
    assert summary.config["run_name"] == "tiny-run"
    assert listings.checkpoint_summary(path) is summary  # the cached one: nothing read
    ckpt = load_checkpoint(path)
    ckpt["config"]["learning_rate"] = 0.5
    save_checkpoint(path, ckpt)  # saved over, as a training run does
    assert listings.checkpoint_summary(path).config["learning_rate"] == 0.5


def test_a_run_without_checkpoint_is_listed_as_stopped_once_its_killed_writer_is_gone(nanogpt_home: Path) -> None:
    from pilot_helpers import another_writer

    run = nanogpt_home / "runs" / "early"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"type": "step", "iter": 0}\n')
    listings.clear()
    with another_writer(run) as holder:  # a trainer before its first save
        [summary] = listings.checkpoints()[1]
        assert f"process {holder.pid} is training it" in str(summary.error)
    # Killed by SIGKILL: the OS dropped its lock, the lock file itself is as it was.
    [summary] = listings.checkpoints()[1]
    assert "training stopped before its first save" in str(summary.error)
