"""Pilot tests of the Checkpoints screen: the table, a corrupt checkpoint, delete, rename, open, chat."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch
from pilot_helpers import another_writer, notices, wait_for, workers_done
from textual.widgets import DataTable, Input, Label, Static

from core.common import disk, paths
from core.common.formatting import human_size
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.chat import ChatScreen
from nanogpt_tui.screens import checkpoints as checkpoints_screen
from nanogpt_tui.screens.checkpoints import CheckpointsScreen, ConfirmModal, TextModal
from nanogpt_tui.widgets.checkpoint_details import CheckpointDetails
from nanogpt_tui.widgets.checkpoint_table import COLUMNS
from nanogpt_tui.widgets.loss_plot import LossPlot


def copy_run(run: Path, to: Path) -> Path:
    """Another run folder with the same checkpoints (cheaper than training a second model)."""
    shutil.copytree(run, to)
    return to




def select(screen, path: Path) -> None:
    """Put the table's cursor on the row of checkpoint `path`."""
    table = screen.query_one("#ckpt-table", DataTable)
    table.move_cursor(row=table.get_row_index(str(path)))


def table_rows(app: NanoGPTApp) -> dict[str, list[str]]:
    table = app.screen.query_one("#ckpt-table", DataTable)
    return {str(key.value): [str(cell) for cell in table.get_row(key)] for key in table.rows}


@pytest.fixture
def corrupt_run() -> Path:
    run = paths.runs_dir() / "broken"
    run.mkdir(parents=True)
    (run / "ckpt.pt").write_bytes(os.urandom(2048))
    return run


async def open_checkpoints(app: NanoGPTApp, pilot) -> CheckpointsScreen:
    await pilot.press("f4")
    await wait_for(pilot, lambda: isinstance(app.screen, CheckpointsScreen) and app.screen.summaries)
    return app.screen


async def ask_to_delete(app: NanoGPTApp, pilot) -> ConfirmModal:
    """Press d and wait for the question (asked once a worker has sized the run folder)."""
    await pilot.press("d")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
    return app.screen


async def test_run_shows_with_details_and_corrupt_one_with_error(tiny_run: Path, corrupt_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        rows = table_rows(app)
        ckpt = torch.load(tiny_run / "ckpt.pt", weights_only=True)
        good = dict(zip(COLUMNS, rows[str(tiny_run / "ckpt.pt")], strict=True))
        broken = dict(zip(COLUMNS, rows[str(corrupt_run / "ckpt.pt")], strict=True))
        assert [good[c] for c in ("name", "kind", "dataset", "tokenizer")] == ["tiny-run", "latest", "small-char", "char"]
        assert good["iters"] == str(ckpt["iter_num"])
        assert float(good["best val"]) == pytest.approx(float(ckpt["best_val_loss"]), abs=1e-4)
        assert rows[str(tiny_run / "best.pt")][COLUMNS.index("kind")] == "best"
        assert broken["kind"] == "corrupt" and "not a readable checkpoint" in broken["problem"] and good["problem"] == ""

        # The corrupt one shows its full error; chat refuses it with a message rather than a crash.
        select(screen, corrupt_run / "ckpt.pt")
        await pilot.pause()
        assert "corrupt" in str(screen.query_one("#ckpt-info", Static).render())
        await pilot.press("c")
        assert isinstance(app.screen, CheckpointsScreen)
        assert any("cannot be read" in (n.title or "") for n in notices(app))

        # The good one still works: settings, loss curve and a sample.
        select(screen, tiny_run / "ckpt.pt")
        sample = screen.query_one("#ckpt-sample", Static)
        await wait_for(pilot, lambda: str(sample.render()).startswith("sample ("))
        info = str(screen.query_one("#ckpt-info", Static).render())
        assert f"n_embd={ckpt['model_args']['n_embd']}" in info and f"max_iters={ckpt['iter_num']}" in info
        plot = screen.query_one("#ckpt-plot", LossPlot)
        assert [p.iter for p in plot.steps.points] == [row[0] for row in ckpt["history"]["steps"]]
        assert [p.y for p in plot.evals.points] == [row[2] for row in ckpt["history"]["evals"]]
        assert len(plot.steps.points) == ckpt["iter_num"] and len(plot.evals.points) >= 2
        assert len(str(sample.render()).split("\n", 1)[1]) > 0


async def test_delete_asks_then_removes_the_run(tiny_run: Path) -> None:
    other = copy_run(tiny_run, paths.runs_dir() / "other")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        select(screen, tiny_run / "ckpt.pt")
        await ask_to_delete(app, pilot)
        await pilot.press("n")  # no: nothing happens
        await pilot.pause()
        assert tiny_run.is_dir()
        await ask_to_delete(app, pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: str(tiny_run / "ckpt.pt") not in table_rows(app))
        assert not tiny_run.exists() and other.is_dir()
        assert sorted(table_rows(app)) == [str(other / "best.pt"), str(other / "ckpt.pt")]


def notified(app: NanoGPTApp) -> list[str]:
    return [f"{n.title}: {n.message}" if n.title else n.message for n in notices(app)]


def kind_of(app: NanoGPTApp, path: Path) -> str | None:
    row = table_rows(app).get(str(path))
    return row[COLUMNS.index("kind")] if row else None


async def test_a_big_run_is_sized_and_deleted_off_the_ui_thread_and_not_twice(tiny_run: Path, monkeypatch) -> None:
    big = tiny_run / "old" / "ckpt-0001.pt"
    big.parent.mkdir()
    with big.open("wb") as file:
        file.truncate(3 * 2**30)  # 3 GiB that take no room (sparse): the dialog counts the length
    files = [p for p in tiny_run.rglob("*") if p.is_file()]
    expected = f"{len(files)} files, {human_size(sum(p.stat().st_size for p in files))}"
    assert "GiB" in expected

    workers: list[str] = []  # the threads the slow work ran in
    real_size, real_rmtree = disk.folder_size, shutil.rmtree
    release = threading.Event()

    def sizing(folder):
        workers.append(threading.current_thread().name)
        return real_size(folder)

    def slow_rmtree(path, *args, **kwargs):
        real_rmtree(path, *args, **kwargs)
        if Path(path) == tiny_run:  # a slow disk: the files are gone, the call returns when the test says so
            workers.append(threading.current_thread().name)
            release.wait(30)  # (were this the UI thread, the screen would freeze until then)

    monkeypatch.setattr(disk, "folder_size", sizing)
    monkeypatch.setattr(shutil, "rmtree", slow_rmtree)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        select(screen, tiny_run / "ckpt.pt")
        question = str((await ask_to_delete(app, pilot)).query_one(".question", Label).render())
        assert "Delete run 'tiny-run'?" in question and f"({expected})" in question
        await pilot.press("y")
        # Under way: both of its rows say so, and a second delete (or any key on that run) is refused.
        await wait_for(pilot, lambda: kind_of(app, tiny_run / "ckpt.pt") == "latest · being deleted…")
        assert kind_of(app, tiny_run / "best.pt") == "best · being deleted…"
        # A listing meanwhile finds the run gone: its rows stay as they were, under the cursor, until it is done.
        await pilot.press("r")
        await wait_for(pilot, lambda: str(tiny_run / "best.pt") not in str(screen._signature))
        assert kind_of(app, tiny_run / "best.pt") == "best · being deleted…"
        assert screen.table.current_key == str(tiny_run / "ckpt.pt")
        await pilot.press("d")
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen
        assert sum("Run 'tiny-run' is being deleted" in text for text in notified(app)) == 2
        release.set()
        await wait_for(pilot, lambda: kind_of(app, tiny_run / "ckpt.pt") is None)
        assert not tiny_run.exists() and "Deleted run tiny-run" in notified(app)
    assert len(workers) == 2 and threading.main_thread().name not in workers


async def test_a_delete_that_fails_says_why_and_lists_what_is_left(tiny_run: Path, monkeypatch) -> None:
    def failing_rmtree(path, *args, **kwargs):
        # As a file that cannot be removed does (running as root, a real one cannot be made): part is gone.
        (Path(path) / "best.pt").unlink()
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(path) / "ckpt.pt"))

    monkeypatch.setattr(shutil, "rmtree", failing_rmtree)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        select(screen, tiny_run / "ckpt.pt")
        await ask_to_delete(app, pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: kind_of(app, tiny_run / "best.pt") is None)
        assert f"Deleting run tiny-run failed: [Errno 13] Permission denied: '{tiny_run / 'ckpt.pt'}'" in notified(app)
        assert kind_of(app, tiny_run / "ckpt.pt") == "latest"  # what is left, no longer under way
        await ask_to_delete(app, pilot)  # so it can be deleted again


async def test_a_run_taken_by_a_trainer_while_the_question_is_open_is_kept(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        select(screen, tiny_run / "ckpt.pt")
        await ask_to_delete(app, pilot)
        with another_writer(tiny_run) as holder:  # `nanogpt-tui train --resume` in another terminal, say
            await pilot.press("y")
            await pilot.pause()
            assert f"Run 'tiny-run' is being trained by process {holder.pid}: stop it first (w watches and stops it)" \
                in notified(app)
            assert app.screen is screen and "being" not in str(kind_of(app, tiny_run / "ckpt.pt"))  # nothing under way
            assert (tiny_run / "ckpt.pt").is_file() and (tiny_run / "best.pt").is_file()


async def test_rename_moves_the_run_folder(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await open_checkpoints(app, pilot)
        await pilot.press("n")
        assert isinstance(app.screen, TextModal)
        await pilot.press("ctrl+u", *"fresh", "enter")
        renamed = paths.runs_dir() / "fresh"
        await wait_for(pilot, lambda: str(renamed / "ckpt.pt") in table_rows(app))
        assert not tiny_run.exists() and (renamed / "ckpt.pt").is_file()


async def test_open_nanogpt_out_dir(tmp_path: Path, tiny_run: Path) -> None:
    # An out_dir as nanoGPT writes it: ckpt.pt with only nanoGPT's keys, outside the data folder.
    out_dir = tmp_path / "nanogpt" / "out"
    out_dir.mkdir(parents=True)
    ckpt = torch.load(tiny_run / "ckpt.pt", weights_only=True)
    nanogpt_keys = ("model", "optimizer", "model_args", "iter_num", "best_val_loss", "config")
    torch.save({key: ckpt[key] for key in nanogpt_keys}, out_dir / "ckpt.pt")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("o")
        assert isinstance(app.screen, TextModal)
        await pilot.press(*"/no/such/dir", "enter")  # refused in the dialog, which stays open
        assert isinstance(app.screen, TextModal) and "does not exist" in str(app.screen.query_one(".error").visual)
        app.screen.query_one("#answer", Input).value = str(out_dir)
        await pilot.press("enter")
        key = str((out_dir / "ckpt.pt").resolve())
        await wait_for(pilot, lambda: key in table_rows(app))
        row = table_rows(app)[key]
        assert row[0] == "out" and row[1] == "nanogpt" and row[COLUMNS.index("iters")] == str(ckpt["iter_num"])
        # Delete only forgets an opened checkpoint: the user's files stay.
        await pilot.press("d")
        await wait_for(pilot, lambda: key not in table_rows(app))
        assert (out_dir / "ckpt.pt").is_file()


async def test_chat_action_opens_chat_with_the_checkpoint(tiny_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        select(screen, tiny_run / "ckpt.pt")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)
        await wait_for(pilot, lambda: app.screen.checkpoint == tiny_run / "ckpt.pt" and app.screen.engine is not None)


async def test_a_run_in_training_is_not_deleted(tiny_run: Path) -> None:
    from core.settings.train_config import TrainConfig
    from core.training.process import TrainerProcess

    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await open_checkpoints(app, pilot)
        app.trainer = TrainerProcess(TrainConfig(), lambda event: None)
        app.trainer.run_dir = tiny_run  # what a running trainer holds once it has started
        await pilot.press("d")
        assert isinstance(app.screen, CheckpointsScreen) and tiny_run.is_dir()
        assert any("is training now" in str(n.message) for n in notices(app))
        app.trainer = None


async def test_a_run_another_process_trains_is_neither_renamed_nor_deleted(tiny_run: Path) -> None:
    with another_writer(tiny_run) as holder:
        app = NanoGPTApp()
        async with app.run_test(size=(140, 44)) as pilot:
            screen = await open_checkpoints(app, pilot)
            kind = COLUMNS.index("kind")
            assert table_rows(app)[str(tiny_run / "ckpt.pt")][kind] == "latest · training"  # the table says so
            select(screen, tiny_run / "ckpt.pt")
            for key in ("n", "d"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, CheckpointsScreen) and tiny_run.is_dir()  # no dialog opened
            told = [str(n.message) for n in notices(app)]
            assert sum(f"being trained by process {holder.pid}" in message for message in told) == 2
            holder.kill()
            holder.wait()
            await pilot.press("r")  # refresh: the lock died with its process
            await wait_for(pilot, lambda: table_rows(app)[str(tiny_run / "ckpt.pt")][kind] == "latest")


async def test_the_table_follows_a_run_saved_and_finished_meanwhile_without_a_refresh(tiny_run: Path) -> None:
    from core.runs.checkpoint import load_checkpoint, save_checkpoint

    latest = tiny_run / "ckpt.pt"
    with another_writer(tiny_run) as holder:  # a trainer in another terminal
        app = NanoGPTApp()
        async with app.run_test(size=(140, 44)) as pilot:
            await open_checkpoints(app, pilot)
            kind, iters = COLUMNS.index("kind"), COLUMNS.index("iters")
            assert table_rows(app)[str(latest)][kind] == "latest · training"
            # It saves a later checkpoint, then finishes: the screen, left open, shows both by itself.
            ckpt = load_checkpoint(latest)
            ckpt["iter_num"] += 5
            save_checkpoint(latest, ckpt)
            await wait_for(pilot, lambda: table_rows(app)[str(latest)][iters] == f"{ckpt['iter_num']:,}")
            holder.kill()
            holder.wait()
            await wait_for(pilot, lambda: table_rows(app)[str(latest)][kind] == "latest")
            assert isinstance(app.screen, CheckpointsScreen)  # never left, never refreshed by hand


async def test_arrowing_through_rows_reads_only_the_row_the_cursor_rests_on(
    tiny_run: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rest longer than the screen's own: on a busy machine (the suite's workers on 2 cores) one key
    # press can take longer than 0.15 s, which is a rest.
    monkeypatch.setattr(checkpoints_screen, "DEBOUNCE_S", 1.0)
    copy_run(tiny_run, paths.runs_dir() / "tiny-copy")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        table = screen.query_one("#ckpt-table", DataTable)
        table.focus()
        await wait_for(pilot, lambda: "sample (seed" in str(screen.query_one("#ckpt-sample", Static).visual))
        started: list[Path] = []
        details = screen.query_one(CheckpointDetails)
        load = details.load_details

        def spy(path: Path):
            started.append(path)
            return load(path)

        details.load_details = spy  # type: ignore[method-assign]
        await pilot.press("down", "down", "down", "up")
        keys = list(screen.summaries)
        await wait_for(pilot, lambda: started)
        await workers_done(app)
        await pilot.pause()
        assert started == [Path(keys[2])] and details.showing(Path(keys[2]))


def test_details_show_the_recipe_knobs_and_whether_nanogpt_can_load_it() -> None:
    from nanogpt_tui.widgets.checkpoint_details import describe_config

    plain = {"model_args": {"n_layer": 4, "bias": False}, "config": {"dataset": "d"}, "dataset": {"name": "d"}}
    assert "nanoGPT: can load" in describe_config(plain)  # an old checkpoint without the knobs
    knobbed = {"model_args": {"n_layer": 4, "rope": True, "rmsnorm": False, "qk_norm": True, "relu2": False,
                              "untie_head": False},
               "config": {"dataset": "d", "rope": True, "qk_norm": True, "muon": True}, "dataset": {"name": "d"}}
    text = describe_config(knobbed)
    assert "rope=True" in text and "qk_norm=True" in text and "muon=True" in text
    assert "nanoGPT: cannot load this checkpoint (it uses rope, qk_norm)" in text


async def test_a_run_whose_trainer_died_before_its_first_save_says_so_once_listed_again(nanogpt_home: Path) -> None:
    run = nanogpt_home / "runs" / "early"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"type": "step", "iter": 0}\n')
    with another_writer(run) as holder:  # a trainer before its first save
        app = NanoGPTApp()
        async with app.run_test(size=(140, 44)) as pilot:
            await open_checkpoints(app, pilot)
            info = app.screen.query_one("#ckpt-info", Static)
            await wait_for(pilot, lambda: f"process {holder.pid} is training it" in str(info.render()))
            holder.kill()  # SIGKILL: its lock goes, its lock file stays as it was
            holder.wait()
            await pilot.press("r")
            await wait_for(pilot, lambda: "training stopped before its first save" in str(info.render()))
            assert kind_of(app, run / "ckpt.pt") == "no checkpoint"
