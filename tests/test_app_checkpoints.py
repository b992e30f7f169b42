"""Pilot tests of the Checkpoints screen: the table, a corrupt checkpoint, delete, rename, open, chat."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from core import paths
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.chat import ChatScreen
from nanogpt_tui.screens.checkpoints import CheckpointsScreen, ConfirmModal, TextModal
from nanogpt_tui.widgets.loss_plot import LossPlot


def make_run(name: str, text: str, iters: int = 7, root: Path | None = None) -> Path:
    """A run folder with a tiny (untrained) char model's ckpt.pt, the shape the trainer writes."""
    from core.checkpoint import save_checkpoint
    from core.model import GPT, GPTConfig
    from core.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.from_text(text)
    args = dict(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=tokenizer.vocab_size, dropout=0.0, bias=True)
    model = GPT(GPTConfig(**args))
    run = (root or paths.runs_dir()) / name
    save_checkpoint(
        run / "ckpt.pt",
        {
            "model": model.state_dict(), "optimizer": {}, "model_args": args, "iter_num": iters,
            "best_val_loss": 2.5, "config": {"learning_rate": 1e-3, "max_iters": iters},
            "tokenizer": tokenizer.to_dict(), "dataset": {"name": "small"},
            "history": {"steps": [[i, 4.0 - 0.1 * i, 100 * i, 0.1 * i] for i in range(iters)], "evals": [[iters - 1, 3.4, 2.5]]},
            "rng": None, "scaler": None, "version": 1,
        },
    )
    return run


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    """Let workers and the UI run until `condition()` holds (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the screen"
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)


def table_rows(app: NanoGPTApp) -> dict[str, list[str]]:
    table = app.screen.query_one("#ckpt-table", DataTable)
    return {str(key.value): [str(cell) for cell in table.get_row(key)] for key in table.rows}


@pytest.fixture
def good_run(small_text: Path) -> Path:
    return make_run("good", small_text.read_text(encoding="utf-8"))


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


async def test_run_shows_with_details_and_corrupt_one_with_error(good_run: Path, corrupt_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        rows = table_rows(app)
        good, broken = rows[str(good_run / "ckpt.pt")], rows[str(corrupt_run / "ckpt.pt")]
        assert good[0] == "good" and good[5] == "7" and good[2] == "small" and good[3] == "char"
        assert broken[1] == "corrupt" and "not a readable checkpoint" in broken[2]

        # The corrupt one shows its full error; chat refuses it with a message rather than a crash.
        table = screen.query_one("#ckpt-table", DataTable)
        table.move_cursor(row=table.get_row_index(str(corrupt_run / "ckpt.pt")))
        await pilot.pause()
        assert "corrupt" in str(screen.query_one("#ckpt-info", Static).render())
        await pilot.press("c")
        assert isinstance(app.screen, CheckpointsScreen)
        assert any("cannot be read" in (n.title or "") for n in app._notifications)

        # The good one still works: settings, loss curve and a sample.
        table.move_cursor(row=table.get_row_index(str(good_run / "ckpt.pt")))
        sample = screen.query_one("#ckpt-sample", Static)
        await wait_for(pilot, lambda: str(sample.render()).startswith("sample ("))
        info = str(screen.query_one("#ckpt-info", Static).render())
        assert "n_embd=16" in info and "learning_rate=0.001" in info
        plot = screen.query_one("#ckpt-plot", LossPlot)
        assert [p.iter for p in plot.steps.points] == list(range(7)) and len(plot.evals.points) == 1
        assert len(str(sample.render()).split("\n", 1)[1]) > 0


async def test_delete_asks_then_removes_the_run(good_run: Path, small_text: Path) -> None:
    other = make_run("other", small_text.read_text(encoding="utf-8"), iters=3)
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_checkpoints(app, pilot)
        table = screen.query_one("#ckpt-table", DataTable)
        table.move_cursor(row=table.get_row_index(str(good_run / "ckpt.pt")))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")  # no: nothing happens
        await pilot.pause()
        assert good_run.is_dir()
        await pilot.press("d")
        await pilot.press("y")
        await wait_for(pilot, lambda: str(good_run / "ckpt.pt") not in table_rows(app))
        assert not good_run.exists() and other.is_dir()
        assert list(table_rows(app)) == [str(other / "ckpt.pt")]


async def test_rename_moves_the_run_folder(good_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await open_checkpoints(app, pilot)
        await pilot.press("n")
        assert isinstance(app.screen, TextModal)
        await pilot.press("ctrl+u", *"fresh", "enter")
        renamed = paths.runs_dir() / "fresh"
        await wait_for(pilot, lambda: str(renamed / "ckpt.pt") in table_rows(app))
        assert not good_run.exists() and (renamed / "ckpt.pt").is_file()


async def test_open_nanogpt_out_dir(tmp_path: Path, small_text: Path) -> None:
    out_dir = make_run("out", small_text.read_text(encoding="utf-8"), root=tmp_path / "nanogpt")
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("o")
        await pilot.press(*str(out_dir), "enter")
        key = str((out_dir / "ckpt.pt").resolve())
        await wait_for(pilot, lambda: key in table_rows(app))
        assert table_rows(app)[key][0] == "out"


async def test_chat_action_opens_chat_with_the_checkpoint(good_run: Path) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(140, 44)) as pilot:
        await open_checkpoints(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)
        await wait_for(pilot, lambda: app.screen.checkpoint == good_run / "ckpt.pt" and app.screen.model is not None)
