"""Regenerate screenshots/*.svg: every screen in a realistic state, from a real (short) training run.

    python scripts/screenshots.py [--iters 2000]

Works in a temporary home folder (so the screens show `~/...`, not this machine's paths): prepares Tiny
Shakespeare (a copy of ../shared/data/tinyshakespeare.txt when it is there, else the download), trains nanoGPT's CPU recipe for --iters iterations headless, then drives the
app with Textual's Pilot and saves one SVG per screen. Takes a few minutes on a laptop CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from core.common import paths

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "screenshots"
LOCAL_SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
SIZE = (150, 46)


def prepare_and_train(iters: int) -> Path:
    """A char-level Shakespeare dataset and a run trained on it; returns the run folder."""
    from core.runs.events import Failed
    from core.settings.presets import from_preset
    from core.training.trainer import Trainer
    from data.prepare import prepare

    source = "shakespeare"
    if LOCAL_SHAKESPEARE.is_file():
        source = str(shutil.copy(LOCAL_SHAKESPEARE, Path.home() / LOCAL_SHAKESPEARE.name))
    prepare(source, tokenizer="char", name="shakespeare-char")
    prepare(source, tokenizer="gpt2", name="shakespeare-gpt2")
    config = from_preset(
        "cpu", dataset="shakespeare-char", run_name="shakespeare-cpu", max_iters=iters, lr_decay_iters=iters,
        eval_interval=max(1, iters // 10), warmup_iters=min(100, iters // 10), device="cpu",
    )
    events: list = []
    print(f"training {iters} iterations…")
    Trainer(config, events.append).run()
    failed = [e for e in events if isinstance(e, Failed)]
    if failed:
        raise SystemExit(f"training failed: {failed[0].message}")
    return events[0].run_dir


async def wait_until(pilot, condition, timeout: float = 60.0) -> None:
    """Let the app run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the screen did not reach the expected state")
        await pilot.pause(0.1)


async def take(iters: int) -> None:
    from textual.widgets import DataTable, Input, Static

    from nanogpt_tui.app import NanoGPTApp

    run_dir = prepare_and_train(iters)
    app = NanoGPTApp()
    async with app.run_test(size=SIZE) as pilot:

        async def shot(name: str) -> None:
            await pilot.pause(0.5)
            app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
            print(f"saved screenshots/{name}.svg")

        # Data: the prepared datasets, the first selected with its stats and preview.
        await pilot.press("f2")
        table = app.screen.query_one("#data-table", DataTable)
        await wait_until(pilot, lambda: table.row_count >= 2)
        table.focus()
        await pilot.press("down", "up")
        await app.workers.wait_for_complete()
        await shot("data")

        # Tokens: the sample text under GPT-2 and the character vocabulary.
        await pilot.press("f6")
        await pilot.pause(1.0)
        await app.workers.wait_for_complete()
        await shot("tokens")

        # Checkpoints: the run selected, with its loss curve and a sample.
        await pilot.press("f4")
        ckpt_table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: ckpt_table.row_count >= 1)
        ckpt_table.focus()
        await pilot.press("down", "up")
        sample = app.screen.query_one("#ckpt-sample", Static)
        await wait_until(pilot, lambda: str(sample.render()).strip() != "")
        await app.workers.wait_for_complete()
        await shot("checkpoints")

        # Chat: a reply streamed from the trained model, coloured by probability.
        await app.open_chat(run_dir / "ckpt.pt")
        await wait_until(pilot, lambda: app.screen.engine is not None)
        prompt = app.screen.query_one("#chat-prompt", Input)
        prompt.focus()
        await pilot.press(*"ROMEO:")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.screen.generating)
        await pilot.press("ctrl+t")
        await shot("chat")

        # Model: one head's attention on a line of Shakespeare, a token in the middle selected.
        await shoot_model(app, pilot, shot, run_dir / "ckpt.pt")

        # Train: the run resumed for more iterations, caught while training.
        await app.resume_training(run_dir / "ckpt.pt")
        screen = app.screen
        await wait_until(pilot, lambda: screen.state == "idle" and screen.query("#cfg-max_iters"))
        max_iters = screen.query_one("#cfg-max_iters", Input)
        await wait_until(pilot, lambda: screen.form.resume is not None and screen.form.resume.config is not None)  # the run's own settings are in
        await pilot.pause(0.3)
        max_iters.value = str(iters * 3)
        await pilot.pause(0.3)
        await pilot.press("ctrl+r")
        try:
            await wait_until(pilot, lambda: app.trainer is not None, 60)
        except TimeoutError:
            raise SystemExit(f"training did not start: {screen.form.problems or screen.state}") from None
        await pilot.press("ctrl+n")  # a sample into the Samples panel
        await wait_until(pilot, lambda: app.trainer is None or app.trainer.iter_num >= iters + 60, 180)
        await shot("train")
        await pilot.press("ctrl+b")
        await app.workers.wait_for_complete()


MODEL_TEXT = "ROMEO: But soft, what light through yonder window breaks?"


async def shoot_model(app, pilot, shot, checkpoint: Path) -> None:
    """The Model screen's Attention tab: layer 1, head 1, on MODEL_TEXT, the cursor a few tokens back."""
    from textual.widgets import TabbedContent

    from nanogpt_tui.screens.model import ModelScreen

    await pilot.press("f7")
    screen = app.screen
    assert isinstance(screen, ModelScreen)
    await wait_until(pilot, lambda: screen.model is not None)
    if screen.source != str(checkpoint):
        screen.choose(str(checkpoint))
        await wait_until(pilot, lambda: screen.model is not None)
    screen.query_one("#model-text").value = MODEL_TEXT
    screen.analyse()
    await wait_until(pilot, lambda: screen.tokens is not None and screen.tokens.total == len(MODEL_TEXT))
    screen.query_one(TabbedContent).active = "tab-attention"
    await pilot.press("right_square_bracket", "full_stop", *["up"] * 6)
    await app.workers.wait_for_complete()
    await shot("model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2000, help="training iterations before the screenshots")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nanogpt-screenshots-") as folder:
        # A fresh user: the data dir is the platform's default under this home, shown as ~/...
        os.environ["HOME"] = folder
        for name in (paths.HOME_ENV, "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
            os.environ.pop(name, None)
        asyncio.run(take(args.iters))


if __name__ == "__main__":
    main()
