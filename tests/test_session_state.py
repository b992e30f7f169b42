"""What the app remembers between launches (nanogpt_tui.session_state): the file read defensively, and the
app opening where a user would continue: the last screen, the last dataset, an interrupted run offered."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pilot_helpers import notices, wait_for
from textual.widgets import Input, Select

from data.prepare import prepare
from nanogpt_tui.app import NanoGPTApp
from nanogpt_tui.screens.data import DataScreen
from nanogpt_tui.screens.train import TrainScreen
from nanogpt_tui.session_state import SessionState, read_state, state_path, write_state
from nanogpt_tui.widgets.dialogs import ChoiceModal


def test_the_state_file_round_trips_and_a_bad_one_gives_the_defaults_and_one_notice(tmp_path: Path) -> None:
    assert read_state() == (SessionState(), None)  # none yet: the defaults, nothing to say
    write_state(SessionState(dataset="beta-char", screen="chat", interrupted="/runs/r1"))
    assert read_state() == (SessionState("beta-char", "chat", "/runs/r1"), None)
    assert [p.name for p in state_path().parent.iterdir()] == [state_path().name]  # no temporary file left

    path = state_path()
    path.write_text(json.dumps({"dataset": ["not", "a", "name"], "screen": "train", "interrupted": 3}))
    assert read_state() == (SessionState(screen="train"), None)  # a field of the wrong type is dropped alone
    for content, said in ((b"{not json", "not valid JSON"), (b"[1, 2]", "holds a JSON array, not a JSON object"),
                          (b"[" * 100_000 + b"]" * 100_000, "more than the 64.0 KiB"), (b"\xff\xfe", "not UTF-8"),
                          (b"[" * 100 + b"]" * 100, "nested too deeply")):
        path.write_bytes(content)
        state, problem = read_state()
        assert state == SessionState() and problem is not None and said in problem, (content[:10], problem)
    path.unlink()
    os.mkfifo(path)  # would block a plain read forever
    state, problem = read_state()
    assert state == SessionState() and problem is not None and "not a regular file" in problem


async def test_the_app_opens_on_train_with_the_dataset_last_trained_on(small_text: Path) -> None:
    for name in ("alpha-char", "beta-char"):
        prepare(str(small_text), tokenizer="char", name=name, block_size=8)
    write_state(SessionState(dataset="beta-char"))  # no screen remembered
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, TrainScreen)  # a dataset exists: on to training
        await wait_for(pilot, lambda: screen.query_one("#dataset", Select).value == "beta-char")
        await pilot.press("f6")  # the screen shown at quit is where the next launch opens
        await pilot.press("ctrl+q")
    assert read_state()[0].screen == "tokens"


async def test_no_dataset_opens_on_data_and_a_bad_state_file_is_said_once() -> None:
    state_path().write_text("{oops")
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, DataScreen)
        await wait_for(pilot, lambda: any("Starting afresh" == n.title for n in notices(app)))
        assert sum("session.json" in str(n.message) for n in notices(app)) == 1


async def test_a_run_ctrl_q_interrupted_is_offered_for_resuming_at_the_next_launch(char_dataset) -> None:
    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        await wait_for(pilot, lambda: screen.state == "idle" and bool(screen.query("#device")))
        settings = {"n_layer": "1", "n_embd": "16", "block_size": "16", "batch_size": "4", "eval_interval": "1000",
                    "max_iters": "100000"}
        for name, text in settings.items():
            screen.query_one(f"#cfg-{name}", Input).value = text
        screen.query_one("#run_name", Input).value = "long-one"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.state == "running", 120)
        await pilot.press("ctrl+q")  # stops the run, which saves its checkpoint, then quits
    run = char_dataset.path.parents[1] / "runs" / "long-one"
    assert (run / "ckpt.pt").is_file()
    assert read_state()[0] == SessionState(dataset=char_dataset.name, screen="train", interrupted=str(run))

    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert "'long-one' was training when the app quit" in app.screen.question
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        await wait_for(pilot, lambda: screen.resume_path == run / "ckpt.pt")
    assert read_state()[0].interrupted is None  # offered once

    app = NanoGPTApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, ChoiceModal)

